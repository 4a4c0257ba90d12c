#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

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
final class ReadCoalescer<Value: Sendable>: Sendable {
    private struct State {
        /// The number of the newest read started.
        var started = 0
        /// The number of the newest read finished; `latest` is its outcome.
        var completed = 0
        /// True while read `started` runs (then `started == completed + 1`).
        var inFlight = false
        var latest: Result<Value, Error>?
        /// Callers asleep until the read in flight completes, each on its own semaphore.
        var waiters: [DispatchSemaphore] = []
    }
    private let state = Mutex(State())

    init() {}

    /// Callers asleep waiting for a read to complete (for tests and diagnostics).
    var waitingCallers: Int { state.withLock { $0.waiters.count } }

    /// What a caller does next, decided under the lock.
    private enum Step {
        case lead(generation: Int)
        case wait(DispatchSemaphore)
        case done(Result<Value, Error>)
    }

    /// The outcome of a read that started after this call began: the caller's own
    /// `perform`, or one another caller started later than this call's arrival.
    /// - Parameter perform: the read, run on this thread if this caller leads; it
    ///   must not call back into the same coalescer.
    /// - Throws: the error of the read whose outcome this caller gets.
    func read(_ perform: () throws -> Value) throws -> Value {
        // Any read running now may have started before this call: only the next
        // generation is fresh enough. With none running, that is the one we start.
        let needed = state.withLock { $0.started + 1 }
        while true {
            let step: Step = state.withLock { state in
                // `completed >= needed`: a read that started after this call arrived.
                if state.completed >= needed { return .done(state.latest!) }
                if !state.inFlight {
                    state.started += 1
                    state.inFlight = true
                    return .lead(generation: state.started)
                }
                let semaphore = DispatchSemaphore(value: 0)
                state.waiters.append(semaphore)
                return .wait(semaphore)
            }
            switch step {
            case .done(let outcome): return try outcome.get()
            case .lead(let generation): return try lead(generation, perform)
            case .wait(let semaphore): semaphore.wait()
            }
        }
    }

    /// Runs `perform` as read `generation`, publishes its outcome and wakes the waiters.
    private func lead(_ generation: Int, _ perform: () throws -> Value) throws -> Value {
        // Result(catching:) turns every thrown error into a value, so there is no
        // way out of this function that skips publishing and waking the waiters.
        let outcome = Result(catching: perform)
        let waiters = state.withLock { state in
            state.latest = outcome
            state.completed = generation
            state.inFlight = false
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.signal() }
        return try outcome.get()
    }
}
