@testable import EmailSetupFCGI
import Foundation
import XCTest
import Synchronization

/// The coalescer with fake reads on real threads. Each test is bounded: every wait
/// has a timeout and every loop a fixed number of rounds.
final class ReadCoalescerTests: XCTestCase {
    struct ReadFailed: Error, Equatable { var read: Int }

    func testALoneCallerReadsOnceAndSequentialCallersEachReadAgain() throws {
        let reads = ReadCoalescer<Int>()
        let count = Counter()
        XCTAssertEqual(try reads.read { count.increment() }, 1)
        XCTAssertEqual(count.value, 1)
        // Nothing is kept for later callers: that would be a time cache.
        XCTAssertEqual(try reads.read { count.increment() }, 2)
        XCTAssertEqual(try reads.read { count.increment() }, 3)
        XCTAssertEqual(count.value, 3)
    }

    /// 20 callers arrive while a slow read is in flight: they must not get that read
    /// (it started before them), and they must not read 20 times: one following read,
    /// run by one of them with its own closure, serves them all.
    func testCallersArrivingDuringAReadShareOneFollowingRead() throws {
        let reads = ReadCoalescer<Int>()
        let count = Counter()
        let leaderStarted = DispatchSemaphore(value: 0), leaderMayFinish = DispatchSemaphore(value: 0)
        let results = Collected<Int>(), errors = Collected<String>(), performers = Collected<Int>()
        let leaderResult = Collected<Int>()
        let group = DispatchGroup()
        spawn(group, errors) {
            leaderResult.append(try reads.read {
                let n = count.increment()
                leaderStarted.signal()
                leaderMayFinish.wait()
                return n
            })
        }
        XCTAssertEqual(leaderStarted.wait(timeout: .now() + 5), .success)
        let late = 20
        for caller in 0..<late {
            spawn(group, errors) {
                results.append(try reads.read { performers.append(caller); return count.increment() })
            }
        }
        try waitUntil("all \(late) late callers wait") { reads.waitingCallers == late }
        leaderMayFinish.signal()
        XCTAssertEqual(group.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(errors.values, [])
        XCTAssertEqual(leaderResult.values, [1])
        XCTAssertEqual(count.value, 2, "one read in flight plus one shared by the \(late) late callers")
        XCTAssertEqual(results.values, Array(repeating: 2, count: late), "a late caller got the read that started before it")
        XCTAssertEqual(performers.values.count, 1)
        XCTAssertEqual(reads.waitingCallers, 0)
    }

    /// Linearizability under contention: each caller first commits a write (as another
    /// responder would), then reads; the fake read returns what was committed when it
    /// started. A result older than the caller's own write means it was given a read
    /// that started before it arrived.
    func testNoCallerGetsAReadThatStartedBeforeItArrived() throws {
        let reads = ReadCoalescer<Int>()
        let committed = Counter(), readCount = Counter()
        let stale = Collected<String>(), errors = Collected<String>()
        let threads = 8, rounds = 150
        let group = DispatchGroup()
        for thread in 0..<threads {
            spawn(group, errors) {
                for round in 0..<rounds {
                    let written = committed.increment()
                    let seen = try reads.read {
                        readCount.increment()
                        let snapshot = committed.value
                        usleep(20) // the round trip: writes commit meanwhile
                        return snapshot
                    }
                    if seen < written { stale.append("thread \(thread) round \(round): wrote \(written), read \(seen)") }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(errors.values, [])
        XCTAssertEqual(stale.values.count, 0, "stale reads: \(stale.values.prefix(5))")
        XCTAssertLessThanOrEqual(readCount.value, threads * rounds)
        XCTAssertEqual(reads.waitingCallers, 0)
    }

    /// A failed read is shared like a value: every waiter of that generation gets its
    /// error, nobody is left waiting, and the next caller reads again.
    func testAnErrorReachesEveryWaiterOfItsReadAndTheNextCallerReadsAgain() throws {
        let reads = ReadCoalescer<Int>()
        let count = Counter()
        let leaderStarted = DispatchSemaphore(value: 0), leaderMayFinish = DispatchSemaphore(value: 0)
        let outcomes = Collected<String>(), errors = Collected<String>()
        let group = DispatchGroup()
        spawn(group, errors) {
            _ = try reads.read { () throws -> Int in
                let n = count.increment()
                leaderStarted.signal()
                leaderMayFinish.wait()
                throw ReadFailed(read: n)
            }
        }
        XCTAssertEqual(leaderStarted.wait(timeout: .now() + 5), .success)
        let late = 10
        for _ in 0..<late {
            spawn(group, errors) {
                do {
                    let value = try reads.read { () throws -> Int in throw ReadFailed(read: count.increment()) }
                    outcomes.append("value \(value)")
                } catch let error as ReadFailed {
                    outcomes.append("error from read \(error.read)")
                }
            }
        }
        try waitUntil("all \(late) late callers wait") { reads.waitingCallers == late }
        leaderMayFinish.signal()
        // A stuck coalescer would also hang the last read below: stop here instead.
        guard group.wait(timeout: .now() + 5) == .success else { return XCTFail("a caller was left waiting") }
        XCTAssertEqual(errors.values, ["\(ReadFailed(read: 1))"], "the leader gets its own read's error")
        XCTAssertEqual(outcomes.values, Array(repeating: "error from read 2", count: late))
        XCTAssertEqual(reads.waitingCallers, 0)
        XCTAssertEqual(try reads.read { count.increment() }, 3, "after an error the next caller reads again")
    }

    // MARK: - helpers

    /// Runs `body` on a new thread (not a pool: every caller must be able to block at once).
    private func spawn(_ group: DispatchGroup, _ errors: Collected<String>, _ body: @escaping @Sendable () throws -> Void) {
        group.enter()
        Thread {
            defer { group.leave() }
            do { try body() } catch { errors.append("\(error)") }
        }.start()
    }

    /// Polls `condition` for at most 5 s.
    private func waitUntil(_ what: String, _ condition: () -> Bool) throws {
        for _ in 0..<5000 {
            if condition() { return }
            usleep(1000)
        }
        XCTFail("timed out waiting until \(what)")
        throw ReadFailed(read: -1)
    }
}

/// A counter shared by threads.
final class Counter: Sendable {
    private let count = Mutex(0)
    /// Adds one and returns the new count.
    @discardableResult
    func increment() -> Int { count.withLock { $0 += 1; return $0 } }
    var value: Int { count.withLock { $0 } }
}

/// Values appended by several threads.
final class Collected<Element: Sendable>: Sendable {
    private let list = Mutex<[Element]>([])
    func append(_ element: Element) { list.withLock { $0.append(element) } }
    var values: [Element] { list.withLock { $0 } }
}
