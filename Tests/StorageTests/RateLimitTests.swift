import Foundation
import Storage
import XCTest

/// Rate-limit counters kept in MariaDB, shared by every responder.
final class RateLimitTests: StorageTestCase {
    func testCountsAcrossTwoStoresAndFreesUpAfterTheWindow() throws {
        let a = makeStore()
        let b = makeStore()
        XCTAssertEqual(try a.recordAndCount(bucket: "test-email:alice", window: 1.5, limit: 3), .allowed(remaining: 2))
        XCTAssertEqual(try b.recordAndCount(bucket: "test-email:alice", window: 1.5, limit: 3), .allowed(remaining: 1))
        XCTAssertEqual(try a.recordAndCount(bucket: "test-email:alice", window: 1.5, limit: 3), .allowed(remaining: 0))
        let decision = try b.recordAndCount(bucket: "test-email:alice", window: 1.5, limit: 3)
        guard case .limited(let retryAfter) = decision else { return XCTFail("expected limited, got \(decision)") }
        XCTAssertGreaterThan(retryAfter, 0)
        XCTAssertLessThanOrEqual(retryAfter, 1.5)
        // Refused events are not counted, other buckets are independent.
        XCTAssertFalse(try a.recordAndCount(bucket: "test-email:alice", window: 1.5, limit: 3).isAllowed)
        XCTAssertEqual(try a.recordAndCount(bucket: "test-email:bob", window: 1.5, limit: 3), .allowed(remaining: 2))

        Thread.sleep(forTimeInterval: retryAfter + 0.05)
        XCTAssertTrue(try b.recordAndCount(bucket: "test-email:alice", window: 1.5, limit: 3).isAllowed)
        // Old rows were pruned: only the new event is left in the bucket.
        let rows = try makeConnection().query("SELECT COUNT(*) AS n FROM rate_limit_events WHERE bucket = ?", ["test-email:alice"])
        XCTAssertEqual(try rows.first?.int("n"), 1)
    }

    func testConcurrentCountingNeverExceedsTheLimit() throws {
        let configuration = self.configuration!
        let allowed = Locked(0)
        let errors = Locked<[String]>([])
        onThreads(8) { _ in
            let store = SettingsStore(configuration: configuration)
            for _ in 0..<5 {
                do {
                    if try store.recordAndCount(bucket: "shared", window: 60, limit: 10).isAllowed { allowed.withLock { $0 += 1 } }
                } catch {
                    errors.withLock { $0.append("\(error)") }
                }
            }
        }
        XCTAssertEqual(errors.current, [])
        XCTAssertEqual(allowed.current, 10)
    }
}
