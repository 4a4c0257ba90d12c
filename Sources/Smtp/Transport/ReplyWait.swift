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

/// How a bulk session waits for the server's replies: it checks for them without
/// sleeping for a short window first, when the server has lately been answering
/// within that window.
///
/// Why: on one pipelined connection the client and the server take turns (SMTP without
/// CHUNKING allows one message in flight), so every message costs one round trip, and
/// on loopback or a LAN a large part of that round trip is the kernel putting the
/// client to sleep in `poll()` and waking it again (tens of µs on a virtual machine).
/// Checking readiness in a loop for up to ``window`` keeps the reply path hot — the
/// same trade the kernel's `SO_BUSY_POLL` makes for network cards, which loopback
/// does not have. It is bounded three ways, so it never turns into burning CPU:
/// - the window is short (200 µs by default) and the loop falls back to a blocking
///   `poll()` with the real deadline;
/// - it only spins while the recent waits (an average over the last ~8, each counted
///   as at most four windows) fit in the window, so against a server a millisecond
///   or more away it stops after three waits, while one late reply from a fast server
///   (the machine was busy) does not stop it;
/// - at most ``SpinSlots`` threads of the process spin at once (cores − 1), so the
///   server (or the other connections) always keep a core.
///
/// Only `SmtpClient.sendBulk` turns it on, and only with fewer connections than cores;
/// a single test email waits in `poll()`.
final class ReplyWait {
    /// The longest a read checks for data without sleeping, in nanoseconds. 200 µs:
    /// smtp-sink answers a pipelined message in 30–60 µs; with 100 µs about one wait
    /// in ten on a busy machine missed it and slept.
    let window: UInt64
    /// Weighted average of recent waits (ns); 0 at first, so a fast server is spun
    /// for from the greeting on.
    private(set) var recentWait: UInt64 = 0
    /// Waits that ended while spinning, and waits that had to sleep (for tests and tuning).
    private(set) var spunWaits = 0
    private(set) var sleptWaits = 0
    private let slots: SpinSlots

    /// - Parameters:
    ///   - window: the spin window in nanoseconds.
    ///   - slots: the process-wide limit on concurrent spinners.
    init(window: UInt64 = 200_000, slots: SpinSlots = .shared) {
        self.window = window
        self.slots = slots
    }

    /// Whether the next wait starts by spinning: the recent waits fit in the window.
    var worthSpinning: Bool { recentWait <= window }

    /// Folds one observed wait into the average (weight 1/8, a wait counted as at most
    /// four windows: three slow replies stop spinning, about ten fast ones start it again).
    func record(waitNanoseconds sample: UInt64) {
        let capped = min(sample, window * 4)
        recentWait = (recentWait * 7 + capped) / 8
    }

    /// Returns once `fd` is readable (or has an error/hangup the next read reports);
    /// throws `StreamFailure.timeout` at the deadline.
    func waitReadable(_ fd: Int32, deadline: Deadline) throws {
        let start = Deadline.now().nanoseconds
        if worthSpinning, slots.acquire() {
            defer { slots.release() }
            var now = start
            while now - start < window, now < deadline.nanoseconds {
                if isReadableNow(fd) {
                    spunWaits += 1
                    record(waitNanoseconds: Deadline.now().nanoseconds - start)
                    return
                }
                now = Deadline.now().nanoseconds
            }
        }
        try pollDescriptor(fd, events: Int16(POLLIN), deadline: deadline)
        sleptWaits += 1
        record(waitNanoseconds: Deadline.now().nanoseconds - start)
    }
}

/// The process-wide number of threads allowed to spin in ``ReplyWait`` at once:
/// one fewer than the cores, so a spinning client never takes the core its server
/// (on loopback) or its other connections need. None on a single core.
final class SpinSlots: Sendable {
    /// The limit for this machine: active cores − 1.
    static let shared = SpinSlots(limit: ProcessInfo.processInfo.activeProcessorCount - 1)

    private let inUse = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = max(0, limit) }

    /// Takes a slot if one is free.
    func acquire() -> Bool {
        inUse.withLock { inUse in
            guard inUse < limit else { return false }
            inUse += 1
            return true
        }
    }

    /// Gives a slot back.
    func release() {
        inUse.withLock { $0 -= 1 }
    }
}
