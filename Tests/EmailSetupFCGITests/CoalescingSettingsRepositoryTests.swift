@testable import EmailSetupFCGI
import Foundation
import Storage
import XCTest

/// The decorator each worker's handler gets: GET's read through the shared
/// coalescer on the worker's own repository, everything else straight through.
final class CoalescingSettingsRepositoryTests: XCTestCase {
    /// Worker A's read is in flight when worker B saves and then reads. B's save must
    /// not wait for A's read, and B's read must come from a read that B's own
    /// repository ran after B arrived, not from A's read, which predates the save.
    func testAWorkersReadAfterItsOwnSaveIsNotAnsweredByAnotherWorkersReadInFlight() throws {
        let reads = ReadCoalescer<(SettingsSnapshot, Int?)>()
        let baseA = MemorySettingsRepository(), baseB = MemorySettingsRepository()
        baseA.values = ["smtp_host": "old.example.com"]
        let aStarted = DispatchSemaphore(value: 0), aMayFinish = DispatchSemaphore(value: 0), bSaved = DispatchSemaphore(value: 0)
        baseA.whileLoading = { aStarted.signal(); aMayFinish.wait() }
        // Each worker's repository is used by its one thread; the lock only satisfies Sendable.
        let workerA = LockedConnection(CoalescingSettingsRepository(base: baseA, reads: reads))
        let workerB = LockedConnection(CoalescingSettingsRepository(base: baseB, reads: reads))
        let seen = Collected<String>()
        let group = DispatchGroup()
        group.enter()
        Thread {
            defer { group.leave() }
            let snapshot = try? workerA.use { try $0.loadSettingsWithLastKnownGood().0 }
            seen.append("A: \(snapshot?.values["smtp_host"] ?? "error") v\(snapshot?.version ?? -1)")
        }.start()
        XCTAssertEqual(aStarted.wait(timeout: .now() + 5), .success)
        group.enter()
        Thread {
            defer { group.leave() }
            _ = try? workerB.use { try $0.saveSettings(["smtp_host": "new.example.com"], expectedVersion: nil, actor: "admin", remoteAddress: nil) }
            bSaved.signal()
            let snapshot = try? workerB.use { try $0.loadSettingsWithLastKnownGood().0 }
            seen.append("B: \(snapshot?.values["smtp_host"] ?? "error") v\(snapshot?.version ?? -1)")
        }.start()
        XCTAssertEqual(bSaved.wait(timeout: .now() + 5), .success, "the save waited for another worker's read")
        for _ in 0..<5000 where reads.waitingCallers < 1 { usleep(1000) }
        XCTAssertEqual(reads.waitingCallers, 1, "B's read should wait for the next read, A's being too old")
        aMayFinish.signal()
        XCTAssertEqual(group.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(seen.values.sorted(), ["A: old.example.com v0", "B: new.example.com v1"])
        XCTAssertEqual(baseA.loads, 1)
        XCTAssertEqual(baseB.loads, 1, "B's read ran on B's own repository")
    }

    func testEveryOtherMethodGoesToTheWorkersOwnRepository() throws {
        let base = MemorySettingsRepository()
        let repository = CoalescingSettingsRepository(base: base, reads: ReadCoalescer())
        XCTAssertEqual(try repository.saveSettings(["smtp_host": "a.example.com"], expectedVersion: 0, actor: "ann", remoteAddress: "192.0.2.1"), 1)
        XCTAssertEqual(base.saves.map(\.actor), ["ann"])
        XCTAssertThrowsError(try repository.saveSettings([:], expectedVersion: 0, actor: "ann", remoteAddress: nil)) {
            XCTAssertEqual(($0 as? StorageError)?.code, .conflict)
        }
        XCTAssertEqual(try repository.saveSettings(["smtp_host": "b.example.com"], expectedVersion: 1, actor: "bob", remoteAddress: nil), 2)
        XCTAssertEqual(try repository.restore(version: 1, expectedVersion: 2, actor: "ann", remoteAddress: nil).version, 3)
        XCTAssertEqual(try repository.history(limit: 2, offset: 0).map(\.version), [3, 2])
        XCTAssertEqual(try repository.appendAudit(action: "test.send", outcome: "success", actor: "ann", remoteAddress: nil,
                                                  detail: nil, settingsVersion: 3), 1)
        XCTAssertEqual(try repository.audit(limit: 10, offset: 0).map(\.action), ["test.send"])
        XCTAssertEqual(try repository.versionsWithSuccessfulTests(limit: 5), [3])
        XCTAssertEqual(try repository.recordAndCount(bucket: "u", window: 60, limit: 1), .allowed(remaining: 0))
        XCTAssertEqual(try repository.recordAndCount(bucket: "u", window: 60, limit: 1), .limited(retryAfter: 42))
        XCTAssertEqual(try repository.loadSettings(), SettingsSnapshot(values: ["smtp_host": "a.example.com"], version: 3))
        let (snapshot, good) = try repository.loadSettingsWithLastKnownGood()
        XCTAssertEqual(snapshot.version, 3)
        XCTAssertEqual(good, 3)
        XCTAssertEqual(base.loads, 2)
    }

    /// A database outage during GET's read is the worker's usual error (503 upstream).
    func testAFailedReadThrowsTheRepositorysError() {
        let base = MemorySettingsRepository()
        base.failWith = StorageError(.unavailable, "MariaDB went away")
        let repository = CoalescingSettingsRepository(base: base, reads: ReadCoalescer())
        XCTAssertThrowsError(try repository.loadSettingsWithLastKnownGood()) {
            XCTAssertEqual(($0 as? StorageError)?.code, .unavailable)
        }
        base.failWith = nil
        XCTAssertEqual(try repository.loadSettingsWithLastKnownGood().0.version, 0)
    }
}
