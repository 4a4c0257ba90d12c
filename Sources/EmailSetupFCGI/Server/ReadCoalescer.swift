import Foundation

/// Lets the worker threads of one process share a read, without ever answering a
/// caller from a read that started before the caller arrived.
///
/// Why: under load every worker thread was doing the same MariaDB read for every
/// GET. A time-based cache would cut that but break read-your-writes across
/// responder processes (a save through one responder must be seen by the next GET
/// through any responder). Sharing only a read that *starts after* a caller arrived
/// keeps every answer linearizable: the value was current at some moment between
/// the call and its return, exactly as if the caller had read alone. At most one
/// read is in flight per process, so under load the database sees roughly
/// workers-times fewer reads, and a lone caller pays only an uncontended lock.
///
/// How (single flight by generation): reads are numbered as they start. A caller
/// that finds no read in flight starts the next one itself. A caller that finds one
/// in flight cannot use it (it may predate a write the caller has seen), so it
/// waits for the *following* generation: it sleeps until that one completes, or,
/// when the running read completes and nobody has started the next, it starts it.
/// The read runs on the leading caller's thread with the leader's closure, so each
/// worker still uses only its own database connection. Errors are shared like
/// values: every waiter of that generation gets the leader's error, and the next
/// caller reads again. A waiter waits at most two reads (the one in flight and the
/// one it needs), each bounded by the database client's own timeouts.
///
/// ```swift
/// let reads = ReadCoalescer<SettingsSnapshot>()   // one per process
/// // on each worker thread, with that worker's own connection:
/// let snapshot = try reads.read { try store.loadSettings() }
/// ```
final class ReadCoalescer<Value>: @unchecked Sendable {
    // Everything below is guarded by `condition`'s lock.
    private let condition = NSCondition()
    /// The number of the newest read started.
    private var started = 0
    /// The number of the newest read finished; `latest` is its outcome.
    private var completed = 0
    /// True while read `started` runs (then `started == completed + 1`).
    private var inFlight = false
    private var latest: Result<Value, Error>?
    private var waiting = 0

    init() {}

    /// Callers asleep waiting for a read to complete (for tests and diagnostics).
    var waitingCallers: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiting
    }

    /// The outcome of a read that started after this call began: the caller's own
    /// `perform`, or one another caller started later than this call's arrival.
    /// - Parameter perform: the read, run on this thread if this caller leads; it
    ///   must not call back into the same coalescer.
    /// - Throws: the error of the read whose outcome this caller gets.
    func read(_ perform: () throws -> Value) throws -> Value {
        condition.lock()
        // Any read running now may have started before this call: only the next
        // generation is fresh enough. With none running, that is the one we start.
        let needed = started + 1
        while completed < needed {
            if !inFlight {
                return try lead(perform) // releases the lock
            }
            waiting += 1
            condition.wait()
            waiting -= 1
        }
        // `completed >= needed`: a read that started after this call arrived.
        let outcome = latest!
        condition.unlock()
        return try outcome.get()
    }

    /// Runs `perform` as the next generation and publishes its outcome. Called with
    /// the lock held; returns with it released.
    private func lead(_ perform: () throws -> Value) throws -> Value {
        started += 1
        inFlight = true
        let generation = started
        condition.unlock()
        // Result(catching:) turns every thrown error into a value, so there is no
        // way out of this function that skips publishing and waking the waiters.
        let outcome = Result(catching: perform)
        condition.lock()
        defer { condition.unlock() }
        latest = outcome
        completed = generation
        inFlight = false
        condition.broadcast()
        return try outcome.get()
    }
}
