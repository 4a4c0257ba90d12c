#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import ProcessIO
import Synchronization

/// Runs independent blocking jobs at once, one thread each, and waits for them until a
/// deadline; a job still running then is forgotten (each job is itself bounded, so its
/// thread ends soon after) and its slot answers nil.
enum Parallel {
    static func run<T: Sendable>(_ jobs: [@Sendable () -> T], until deadline: Date) -> [T?] {
        let results = Mutex<[Int: T]>([:])
        let group = DispatchGroup()
        for (index, job) in jobs.enumerated() {
            group.enter()
            startThread {
                let value = job()
                results.withLock { $0[index] = value }
                group.leave()
            }
        }
        _ = group.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow))
        let done = results.withLock { $0 }
        return jobs.indices.map { done[$0] }
    }
}
