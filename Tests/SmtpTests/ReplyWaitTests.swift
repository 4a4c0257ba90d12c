import Foundation
import XCTest
@testable import Smtp

/// The bulk sessions' way of waiting for replies (``ReplyWait``): spins for a fast
/// peer, stops spinning for a slow one, never spins past its window or deadline, and
/// never more threads than ``SpinSlots`` allows.
final class ReplyWaitTests: XCTestCase {
    /// A connected pair of stream sockets; both closed at the end of the test.
    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        addTeardownBlock { close(fds[0]); close(fds[1]) }
        return (fds[0], fds[1])
    }

    private func threadCPUNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    func testASlowServerStopsSpinningAndFastRepliesStartItAgain() {
        let wait = ReplyWait(window: 100_000, slots: SpinSlots(limit: 1))
        XCTAssertTrue(wait.worthSpinning, "a new session spins from the greeting on")
        var slowReplies = 0
        while wait.worthSpinning && slowReplies < 100 {
            wait.record(waitNanoseconds: 20_000_000)  // 20 ms: a server far away, or a slow queue write
            slowReplies += 1
        }
        XCTAssertFalse(wait.worthSpinning)
        XCTAssertLessThanOrEqual(slowReplies, 3, "a slow server must stop the spinning within three replies")
        for _ in 0..<20 { wait.record(waitNanoseconds: 20_000_000) }  // and it stays slow a while
        var fastReplies = 0
        while !wait.worthSpinning && fastReplies < 100 {
            wait.record(waitNanoseconds: 20_000)
            fastReplies += 1
        }
        XCTAssertTrue(wait.worthSpinning)
        XCTAssertGreaterThan(fastReplies, 5, "one fast reply must not undo a slow phase")
        XCTAssertLessThan(fastReplies, 40)
    }

    func testOneLateReplyFromAFastServerKeepsTheSpinning() {
        let wait = ReplyWait(window: 100_000, slots: SpinSlots(limit: 1))
        for _ in 0..<20 { wait.record(waitNanoseconds: 30_000) }
        wait.record(waitNanoseconds: 50_000_000)  // descheduled once for 50 ms
        XCTAssertTrue(wait.worthSpinning, "average \(wait.recentWait) ns")
    }

    func testSlotsLimitConcurrentSpinners() {
        let slots = SpinSlots(limit: 1)
        XCTAssertTrue(slots.acquire())
        XCTAssertFalse(slots.acquire(), "only one spinner on a two-core machine")
        slots.release()
        XCTAssertTrue(slots.acquire())
        slots.release()
        XCTAssertFalse(SpinSlots(limit: 0).acquire(), "no spinning on one core")
        XCTAssertEqual(SpinSlots(limit: -3).limit, 0)
        XCTAssertEqual(SpinSlots.shared.limit, max(0, ProcessInfo.processInfo.activeProcessorCount - 1))
    }

    /// Starts a peer on `server` that echoes each byte after `delay` microseconds, then
    /// makes `rounds` round trips from `client` waiting with `wait`.
    private func roundTrips(_ rounds: Int, client: Int32, server: Int32, peerDelay delay: useconds_t,
                            wait: ReplyWait) throws {
        let echo = Thread {
            var byte: UInt8 = 0
            for _ in 0..<rounds {
                guard recv(server, &byte, 1, 0) == 1 else { return }
                if delay > 0 { usleep(delay) }
                _ = send(server, &byte, 1, 0)
            }
        }
        echo.start()
        var byte: UInt8 = 7
        for _ in 0..<rounds {
            XCTAssertEqual(send(client, &byte, 1, 0), 1)
            try wait.waitReadable(client, deadline: .after(seconds: 5))
            XCTAssertEqual(recv(client, &byte, 1, Int32(MSG_DONTWAIT)), 1)
        }
    }

    func testFastPeerIsAnsweredWhileSpinning() throws {
        let (client, server) = socketPair()
        // A generous window, so a busy test machine still answers inside it.
        let wait = ReplyWait(window: 500_000_000, slots: SpinSlots(limit: 1))
        try roundTrips(20, client: client, server: server, peerDelay: 0, wait: wait)
        XCTAssertEqual(wait.spunWaits, 20, "every reply of a fast peer is caught without sleeping")
        XCTAssertEqual(wait.sleptWaits, 0)
    }

    func testSlowPeerIsWaitedForAsleepAfterAFewReplies() throws {
        let (client, server) = socketPair()
        // Window 5 ms, replies after 20 ms: spinning every time would burn 5 ms of CPU
        // per reply; within three slow replies it must sleep instead.
        let wait = ReplyWait(window: 5_000_000, slots: SpinSlots(limit: 1))
        let rounds = 10
        let cpuBefore = threadCPUNanoseconds()
        try roundTrips(rounds, client: client, server: server, peerDelay: 20_000, wait: wait)
        let cpu = threadCPUNanoseconds() - cpuBefore
        XCTAssertEqual(wait.sleptWaits, rounds)
        XCTAssertFalse(wait.worthSpinning)
        XCTAssertLessThan(cpu, 25_000_000, "spun \(cpu / 1_000_000) ms of CPU for a slow peer (10 × 5 ms if it never stopped)")
    }

    func testSpinningStopsAtTheDeadline() {
        let (client, _) = socketPair()
        let wait = ReplyWait(window: 2_000_000_000, slots: SpinSlots(limit: 1))
        let start = Date()
        XCTAssertThrowsError(try wait.waitReadable(client, deadline: .after(seconds: 0.05))) { error in
            guard case StreamFailure.timeout = error else { return XCTFail("expected a timeout, got \(error)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0, "a 2 s window must not outlast a 50 ms deadline")
    }

    func testNoFreeSlotMeansSleeping() throws {
        let (client, server) = socketPair()
        let slots = SpinSlots(limit: 1)
        XCTAssertTrue(slots.acquire())  // another connection is spinning
        defer { slots.release() }
        let wait = ReplyWait(window: 500_000_000, slots: slots)
        var byte: UInt8 = 1
        XCTAssertEqual(send(server, &byte, 1, 0), 1)
        try wait.waitReadable(client, deadline: .after(seconds: 5))
        XCTAssertEqual(wait.spunWaits, 0)
        XCTAssertEqual(wait.sleptWaits, 1)
    }
}

extension ReplyWaitTests {
    func testBulkSpinsOnlyWithFewerConnectionsThanCores() {
        XCTAssertTrue(SmtpClient.spinsForReplies(connections: 1, cores: 2))
        XCTAssertFalse(SmtpClient.spinsForReplies(connections: 4, cores: 2))
        XCTAssertFalse(SmtpClient.spinsForReplies(connections: 2, cores: 2))
        XCTAssertFalse(SmtpClient.spinsForReplies(connections: 1, cores: 1))
        XCTAssertTrue(SmtpClient.spinsForReplies(connections: 4, cores: 8))
    }
}
