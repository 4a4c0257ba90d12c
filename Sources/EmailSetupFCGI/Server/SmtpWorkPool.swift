#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ProcessIO
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Logging

/// The threads that run SMTP sessions (test emails, checks) apart from the FastCGI
/// request workers, each with its own database connection for the audit row.
///
/// A job only reaches the pool holding an `SmtpSlot` of the same capacity as the
/// thread count, so the queue never holds more jobs than there are idle threads: a job
/// starts at once, and a full pool was already answered 503 by the request worker.
///
/// ```swift
/// let pool = SmtpWorkPool(threads: 4, logger: logger) { RepositoryFactory.make(runtime) }
/// pool.submit { repository in … }
/// ```
final class SmtpWorkPool: Sendable {
    /// A session to run with a pool thread's repository.
    typealias Job = @Sendable (WorkRepository) -> Void
    private let queue = Mutex<(jobs: [Job], stopping: Bool)>(([], false))
    /// Signalled once per job and once per thread at `finish`: a woken thread takes a
    /// job, or ends when there is none left and the pool is stopping.
    private let wake = DispatchSemaphore(value: 0)
    private let threadCount: Int
    private let group = DispatchGroup()
    private let logger: Logger

    /// Starts `threads` threads; each calls `makeRepository` once, on itself.
    init(threads: Int, logger: Logger, makeRepository: @escaping @Sendable () -> WorkRepository) {
        self.logger = logger
        threadCount = max(1, threads)
        for index in 0..<threadCount {
            group.enter()
            startThread { [self] in
                let repository = makeRepository()
                while let job = next() { job(repository) }
                group.leave()
            }
        }
    }

    /// Queues `job`; a free thread runs it with its own repository.
    func submit(_ job: @escaping Job) {
        queue.withLock { $0.jobs.append(job) }
        wake.signal()
    }

    /// Lets the running and queued jobs finish, then ends the threads (bounded wait).
    func finish(timeout: Double) {
        queue.withLock { $0.stopping = true }
        for _ in 0..<threadCount { wake.signal() }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            logger.warning("SMTP sessions still running at shutdown", metadata: ["waited_s": "\(timeout)"])
        }
    }

    private func next() -> Job? {
        while true {
            wake.wait()
            let (job, stopping): (Job?, Bool) = queue.withLock { queue in
                (queue.jobs.isEmpty ? nil : queue.jobs.removeFirst(), queue.stopping)
            }
            if let job { return job }
            if stopping { return nil }
        }
    }
}
