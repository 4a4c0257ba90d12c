#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Smtp

/// Work that holds an SMTP session (a test email, a connection check): the handler
/// returns it inside its `Response` instead of running it, so that the FastCGI adapter
/// can hand it to the SMTP work pool and the request worker goes straight back to
/// answering GETs, saves and health checks. A stalled SMTP server then holds one pool
/// slot, never a request worker.
///
/// Everything that answers at once (validation, 409, 429, 503) happens before the work
/// is made, on the request worker; the work only runs the session, writes its audit
/// row through the repository it is given (the pool thread's own database connection)
/// and builds the final answer.
struct SmtpWork: Sendable {
    /// The pool place this work holds; given back when the work has answered.
    let slot: SmtpSlot
    /// Runs the session. `abort` hangs up when the client goes away; `progress`, when
    /// the client asked for a streamed answer (``ProgressStream``), hears each step.
    let run: @Sendable (_ repository: WorkRepository, _ abort: SessionAbort?, _ progress: WorkProgressSink?) -> Response

    init(slot: SmtpSlot, run: @escaping @Sendable (WorkRepository, SessionAbort?, WorkProgressSink?) -> Response) {
        self.slot = slot
        self.run = run
    }

    /// Work that reports no steps (token requests of the OAuth sign-in).
    init(slot: SmtpSlot, run: @escaping @Sendable (WorkRepository, SessionAbort?) -> Response) {
        self.init(slot: slot) { repository, abort, _ in run(repository, abort) }
    }
}

extension Response {
    /// A response whose answer is `work`'s; the status and body here are never sent.
    static func deferred(_ work: SmtpWork) -> Response {
        var response = Response(status: 202)
        response.work = work
        return response
    }

    /// Runs the deferred work here, on this thread, and gives its slot back: for plain
    /// CGI (one request per process) and unit tests. An immediate response is itself.
    /// Plain CGI never streams: its answer is the plain one, whatever the Accept header.
    func completed(using repository: @autoclosure () -> WorkRepository, abort: SessionAbort? = nil) -> Response {
        guard let work else { return self }
        defer { work.slot.release() }
        return work.run(repository(), abort, nil)
    }
}

/// How many SMTP sessions may run at once in this process.
protocol SmtpCapacity: Sendable {
    /// A slot, or nil when every one is taken (the caller answers 503 at once).
    func tryReserve() -> SmtpSlot?
    /// The number of slots.
    var capacity: Int { get }
}

/// A fixed number of slots, counted under a lock; shared by every worker thread.
final class SmtpSlots: SmtpCapacity, Sendable {
    private let inUse = Mutex(0)
    let capacity: Int

    /// - Parameter capacity: the configuration's `smtp_sessions`.
    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func tryReserve() -> SmtpSlot? {
        let reserved = inUse.withLock { inUse in
            guard inUse < capacity else { return false }
            inUse += 1
            return true
        }
        guard reserved else { return nil }
        return SmtpSlot { [self] in inUse.withLock { $0 -= 1 } }
    }

    /// Slots taken right now (for tests and logs).
    var taken: Int { inUse.withLock { $0 } }
}

/// One reserved place. `release()` may be called more than once (only the first
/// counts), and a slot that is dropped without it is given back too, so no path,
/// not even an unexpected error, loses a place for good.
final class SmtpSlot: Sendable {
    private let onRelease: Mutex<(@Sendable () -> Void)?>

    init(onRelease: @escaping @Sendable () -> Void) {
        self.onRelease = Mutex(onRelease)
    }

    deinit { release() }

    /// Gives the place back.
    func release() {
        let action = onRelease.withLock { onRelease in
            defer { onRelease = nil }
            return onRelease
        }
        action?()
    }
}
