import Foundation
import Storage
import XCTest

/// History and audit are pruned inside the writes that add to them, in bounded
/// batches, never losing what the last known good version needs; repeated refusals
/// are one audit row per action, user and minute.
final class RetentionTests: StorageTestCase {
    func makeStore(_ retention: RetentionPolicy) -> SettingsStore {
        SettingsStore(configuration: configuration, retention: retention)
    }

    func versions(_ store: SettingsStore) throws -> [Int] {
        try store.history(limit: 1000, offset: 0).map(\.version)
    }

    @discardableResult
    func save(_ store: SettingsStore, _ i: Int) throws -> Int {
        try store.save(values: ["smtp_host": "host\(i).example.com"], expectedVersion: nil, actor: "admin", remoteAddress: nil)
    }

    func testSavesKeepTheNewestVersionsAndTheLastKnownGood() throws {
        let store = makeStore(RetentionPolicy(historyKeep: 3))
        for i in 1...3 { try save(store, i) }
        // Version 2's test email went through: it is the last known good.
        try store.appendAudit(action: "test.send", outcome: "success", actor: "admin", remoteAddress: nil, settingsVersion: 2)
        try store.appendAudit(action: "test.send", outcome: "success", actor: "admin", remoteAddress: nil, settingsVersion: 1)
        for i in 4...10 { try save(store, i) }
        XCTAssertEqual(try versions(store), [10, 9, 8, 2], "the newest three, and the last known good")
        XCTAssertEqual(try store.historyEntry(version: 2).values["smtp_host"], "host2.example.com", "still restorable")
        assertStorageError(.notFound) { try store.historyEntry(version: 1) }

        // A newer version proven good: the old one goes with the next save.
        try store.appendAudit(action: "test.send", outcome: "success", actor: "admin", remoteAddress: nil, settingsVersion: 9)
        try save(store, 11)
        XCTAssertEqual(try versions(store), [11, 10, 9])

        // Restore prunes too, and never the version it just wrote.
        XCTAssertEqual(try store.restore(version: 9, expectedVersion: 11, actor: "admin", remoteAddress: nil).version, 12)
        XCTAssertEqual(try versions(store), [12, 11, 10, 9])
        XCTAssertEqual(try store.load().values["smtp_host"], "host9.example.com")

        let one = makeStore(RetentionPolicy(historyKeep: 1))
        try save(one, 13)
        XCTAssertEqual(try versions(one), [13, 9], "the current version and the last known good")
    }

    func testOneSaveDeletesAtMostABatchOfHistory() throws {
        let roomy = makeStore(RetentionPolicy(historyKeep: 100))
        for i in 1...20 { try save(roomy, i) }
        let tight = makeStore(RetentionPolicy(historyKeep: 3, batchLimit: 5))
        try save(tight, 21)
        XCTAssertEqual(try versions(tight), Array((6...21).reversed()), "versions 1–5 only")
        for i in 22...25 { try save(tight, i) }
        XCTAssertEqual(try versions(tight), [25, 24, 23], "the backlog drains with later saves, five at a time")
    }

    /// Audit rows written `daysAgo` days ago, as a year-old installation has them.
    func insertOldAudit(_ daysAgo: Int, action: String = "settings.save", outcome: String = "success", version: Int? = nil) throws {
        try makeConnection().execute("""
            INSERT INTO audit_log (at, actor, action, outcome, settings_version)
            VALUES (UTC_TIMESTAMP(6) - INTERVAL ? DAY, 'old', ?, ?, ?)
            """, [.int(Int64(daysAgo)), .text(action), .text(outcome), version.map { .int(Int64($0)) } ?? .null])
    }

    func testAppendingAuditDeletesRowsOlderThanTheRetentionButNotTheLastKnownGoodProof() throws {
        try insertOldAudit(500, action: "test.send", outcome: "success", version: 3)
        try insertOldAudit(400, action: "test.send", outcome: "success", version: 5)   // proves the last known good
        try insertOldAudit(400, action: "test.send", outcome: "failure", version: 6)
        for days in [399, 380, 366] { try insertOldAudit(days) }
        try insertOldAudit(364)
        try insertOldAudit(10)
        let store = makeStore(RetentionPolicy(auditKeepDays: 365))
        XCTAssertEqual(try store.versionsWithSuccess(action: "test.send"), [5])

        try store.appendAudit(action: "test.check", outcome: "success", actor: "admin", remoteAddress: nil)
        let rows = try store.audit(limit: 100, offset: 0)
        XCTAssertEqual(rows.map { "\($0.action) \($0.outcome) \($0.settingsVersion ?? 0)" }, [
            "test.check success 0", "settings.save success 0", "settings.save success 0", "test.send success 5",
        ])
        XCTAssertEqual(try store.versionsWithSuccess(action: "test.send"), [5], "still the last known good")
        XCTAssertEqual(try store.loadWithLastSuccess(action: "test.send").1, 5)

        // Nothing old left but the proof: appends leave it alone.
        try store.appendAggregatedAudit(action: "test.send", outcome: "rate_limited", actor: "admin", remoteAddress: nil)
        XCTAssertEqual(try store.audit(limit: 100, offset: 0).count, 5)
    }

    func testOneAppendDeletesAtMostABatchOfAudit() throws {
        for _ in 0..<10 { try insertOldAudit(400) }
        let store = makeStore(RetentionPolicy(auditKeepDays: 365, batchLimit: 4))
        try store.appendAudit(action: "x", outcome: "y", actor: "z", remoteAddress: nil)
        XCTAssertEqual(try store.audit(limit: 100, offset: 0).count, 10 - 4 + 1)
        try store.appendAudit(action: "x", outcome: "y", actor: "z", remoteAddress: nil)
        try store.appendAudit(action: "x", outcome: "y", actor: "z", remoteAddress: nil)
        XCTAssertEqual(try store.audit(limit: 100, offset: 0).map(\.actor), ["z", "z", "z"])
    }

    func testSavesPruneTheAuditInTheirTransaction() throws {
        try insertOldAudit(400)
        let store = makeStore(RetentionPolicy(auditKeepDays: 30))
        try save(store, 1)
        XCTAssertEqual(try store.audit(limit: 10, offset: 0).map(\.action), ["settings.save"])
        XCTAssertEqual(try store.audit(limit: 10, offset: 0).first?.actor, "admin")
    }

    func testRepeatedRefusalsFromManyThreadsAreOneRowWithACount() throws {
        let failures = Locked<[String]>([])
        let configuration = self.configuration!
        onThreads(30) { i in
            do {
                try SettingsStore(configuration: configuration).appendAggregatedAudit(
                    action: "test.send", outcome: "rate_limited", actor: "flood", remoteAddress: "192.0.2.\(i)",
                    detail: #"{"bucket":"smtp-test:user:flood"}"#, settingsVersion: 4)
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(failures.current, [])
        let store = makeStore()
        try store.appendAggregatedAudit(action: "test.send", outcome: "rate_limited", actor: "someone-else", remoteAddress: nil)
        try store.appendAggregatedAudit(action: "test.check", outcome: "rate_limited", actor: "flood", remoteAddress: nil)
        try store.appendAudit(action: "test.send", outcome: "rate_limited", actor: "flood", remoteAddress: nil)
        try store.appendAudit(action: "test.send", outcome: "rate_limited", actor: "flood", remoteAddress: nil)

        let rows = try store.audit(limit: 100, offset: 0)
        let flood = rows.filter { $0.actor == "flood" && $0.action == "test.send" && $0.lastAt != nil }
        // One row, or two when the 30 straddled a minute boundary.
        XCTAssertTrue((1...2).contains(flood.count), "\(flood)")
        XCTAssertEqual(flood.map(\.count).reduce(0, +), 30)
        let row = try XCTUnwrap(flood.last)
        XCTAssertEqual(row.detail, #"{"bucket":"smtp-test:user:flood"}"#)
        XCTAssertEqual(row.settingsVersion, 4)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(row.lastAt), row.at)
        XCTAssertEqual(rows.filter { $0.lastAt == nil }.map(\.count), [1, 1], "plain rows are never merged")
        XCTAssertEqual(rows.count, flood.count + 4)
    }
}
