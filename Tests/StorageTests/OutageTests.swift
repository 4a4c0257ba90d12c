import Foundation
import Storage
import TestSupport
import XCTest

/// The database goes away and comes back: requests fail fast with `.unavailable`, and
/// the first request after it is back succeeds on the same store.
///
/// Needs `EMAILSETUP_TEST_DB_STATE_DIR` (the STATE_DIR of `scripts/lib/mariadb.sh`) to
/// stop and start the server; fails, never skips, without it.
final class OutageTests: StorageTestCase {
    func testOperationsFailFastDuringAnOutageAndRecoverAfterIt() throws {
        let environment = self.environment!
        _ = try environment.requireStateDirectory()
        let store = makeStore()
        XCTAssertEqual(try store.save(values: ["smtp_host": "before"], expectedVersion: 0, actor: "a", remoteAddress: nil), 1)
        let idle = makeStore() // never connected before the outage

        try environment.stopServer()
        var restarted = false
        defer {
            if !restarted {
                do { try environment.startServer() } catch { XCTFail("could not restart MariaDB: \(error)") }
            }
        }

        for (what, operation) in [
            ("load on a connected store", { _ = try store.load() }),
            ("save on a connected store", { _ = try store.save(values: ["smtp_host": "during"], expectedVersion: 1, actor: "a", remoteAddress: nil) }),
            ("load on a new store", { _ = try idle.load() }),
            ("rate limit", { _ = try store.recordAndCount(bucket: "b", window: 60, limit: 5) }),
        ] as [(String, () throws -> Void)] {
            let started = Date()
            assertStorageError(.unavailable) { try operation() }
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertLessThan(elapsed, 2.0, "\(what) took \(elapsed) s to fail")
            note(String(format: "%@ failed with .unavailable after %.1f ms", what, elapsed * 1000))
        }

        let restartStarted = Date()
        try environment.startServer()
        restarted = true
        note(String(format: "MariaDB restarted in %.1f s", Date().timeIntervalSince(restartStarted)))

        let started = Date()
        XCTAssertEqual(try store.load(), StoredSettings(values: ["smtp_host": "before"], version: 1), "first request after the outage")
        note(String(format: "first load after the restart took %.1f ms", Date().timeIntervalSince(started) * 1000))
        XCTAssertEqual(try store.save(values: ["smtp_host": "after"], expectedVersion: 1, actor: "a", remoteAddress: nil), 2)
        XCTAssertEqual(try idle.load().version, 2)
    }
}

/// The server is there but answers nothing (frozen with SIGSTOP, as a hung server or
/// a partitioned network looks): requests still fail within about the read timeout.
final class HungServerTests: StorageTestCase {
    func testAHungServerFailsWithinTheReadTimeout() throws {
        let environment = self.environment!
        let store = makeStore()
        XCTAssertEqual(try store.save(values: ["smtp_host": "before"], expectedVersion: 0, actor: "a", remoteAddress: nil), 1)
        let fresh = makeStore()

        try environment.suspendServer()
        var resumed = false
        defer {
            if !resumed {
                do { try environment.resumeServer() } catch { XCTFail("could not resume MariaDB: \(error)") }
            }
        }
        for (what, operation) in [
            ("load on a connected store", { _ = try store.load() }),
            ("load on a new store", { _ = try fresh.load() }),
        ] as [(String, () throws -> Void)] {
            let started = Date()
            assertStorageError(.unavailable) { try operation() }
            let elapsed = Date().timeIntervalSince(started)
            // The read timeout is 2 s; allow scheduling slack on a loaded machine.
            XCTAssertLessThan(elapsed, 2.5, "\(what) took \(elapsed) s to fail")
            note(String(format: "%@ against a hung server failed with .unavailable after %.0f ms", what, elapsed * 1000))
        }
        try environment.resumeServer()
        resumed = true
        XCTAssertEqual(try store.load().version, 1, "first request after the server resumed")
        XCTAssertEqual(try fresh.load().version, 1)
    }
}
