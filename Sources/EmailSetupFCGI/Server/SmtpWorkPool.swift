import Foundation
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
final class SmtpWorkPool: @unchecked Sendable {
    // @unchecked: `jobs` and `stopping` are only touched under `condition`.
    private let condition = NSCondition()
    private var jobs: [(WorkRepository) -> Void] = []
    private var stopping = false
    private let group = DispatchGroup()
    private let logger: Logger

    /// Starts `threads` threads; each calls `makeRepository` once, on itself.
    init(threads: Int, logger: Logger, makeRepository: @escaping @Sendable () -> WorkRepository) {
        self.logger = logger
        for index in 0..<max(1, threads) {
            group.enter()
            let thread = Thread { [self] in
                let repository = makeRepository()
                while let job = next() { job(repository) }
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.name = "smtp-\(index)"
            thread.start()
        }
    }

    /// Queues `job`; a free thread runs it with its own repository.
    func submit(_ job: @escaping (WorkRepository) -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the running and queued jobs finish, then ends the threads (bounded wait).
    func finish(timeout: Double) {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        if group.wait(timeout: .now() + timeout) == .timedOut {
            logger.warning("SMTP sessions still running at shutdown", metadata: ["waited_s": "\(timeout)"])
        }
    }

    private func next() -> ((WorkRepository) -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && !stopping { condition.wait() }
        return jobs.isEmpty ? nil : jobs.removeFirst()
    }
}
