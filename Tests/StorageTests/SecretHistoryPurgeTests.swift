import Foundation
import Storage
import XCTest

/// Clearing the password removes every sealed copy from history in the save's own
/// transaction, and a restore never brings a cleared password back (issue 12).
final class SecretHistoryPurgeTests: StorageTestCase {
    private let base: [String: String] = [
        "from_address": "noreply@example.com", "smtp_host": "mail.example.com", "smtp_port": "587",
        "smtp_authentication_type": "Plain", "smtp_username": "mailer",
    ]

    /// Saves `changes` on top of the current values; returns the new version.
    @discardableResult
    private func save(_ store: SettingsStore, _ changes: [String: String]) throws -> Int {
        try store.save(values: changes, expectedVersion: nil, actor: "admin", remoteAddress: nil)
    }

    /// The raw snapshot text of every history row, by version.
    private func rawSnapshots() throws -> [Int: String] {
        var result: [Int: String] = [:]
        for row in try makeConnection().query("SELECT version, snapshot FROM settings_history") {
            result[Int(try row.int("version"))] = try row.text("snapshot")
        }
        return result
    }

    func testClearingTheOAuthClientSecretRemovesItsCopiesToo() throws {
        let store = makeStore()
        try save(store, base.merging(["oauth_client_secret": "v1:0000bbbb:YXBw", "smtp_password": "v1:0000aaaa:cHc="]) { $1 })
        try save(store, ["smtp_port": "465"])
        try save(store, ["oauth_client_secret": ""])
        let snapshots = try rawSnapshots()
        XCTAssertEqual(snapshots.count, 3)
        for (version, text) in snapshots {
            XCTAssertFalse(text.contains("v1:0000bbbb"), "version \(version) still holds the client secret: \(text)")
        }
        XCTAssertTrue(snapshots[2]?.contains("v1:0000aaaa") ?? false, "the password is not touched by clearing the client secret")
        // The sign-in state is never a settings label: a save cannot write it.
        XCTAssertThrowsError(try save(store, ["oauth_refresh_token": "v1:0000cccc:eA=="]))
    }

    func testClearingRemovesEverySealedCopyAndKeepsTheOtherValues() throws {
        let store = makeStore()
        try save(store, base.merging(["smtp_password": "v1:0000aaaa:Zmlyc3Q="]) { $1 })      // 1
        try save(store, ["smtp_password": "v1:0000aaaa:c2Vjb25k"])                            // 2
        try save(store, ["smtp_port": "465"])                                                  // 3 (still the second)
        XCTAssertEqual(try rawSnapshots().values.filter { $0.contains("v1:0000aaaa") }.count, 3)

        XCTAssertEqual(try save(store, ["smtp_password": ""]), 4)
        let snapshots = try rawSnapshots()
        XCTAssertEqual(snapshots.count, 4)
        for (version, text) in snapshots {
            XCTAssertFalse(text.contains("v1:"), "version \(version) still holds a sealed password: \(text)")
        }
        for version in 1...3 {
            let entry = try store.historyEntry(version: version)
            XCTAssertEqual(entry.values["smtp_password"], "")
            XCTAssertNotNil(entry.passwordPurgedAt, "version \(version)")
            XCTAssertEqual(entry.values["smtp_host"], "mail.example.com", "the other values stay")
        }
        XCTAssertEqual(try store.historyEntry(version: 3).values["smtp_port"], "465")
        XCTAssertNil(try store.historyEntry(version: 4).passwordPurgedAt, "the clearing version had nothing to remove")
        XCTAssertEqual(try store.audit(limit: 1).first?.detail, #"{"changed_fields":["smtp_password"],"history_passwords_removed":3}"#)
    }

    func testAClearThatFailsRemovesNothing() throws {
        let store = makeStore()
        try save(store, base.merging(["smtp_password": "v1:0000aaaa:Zmlyc3Q="]) { $1 })
        assertStorageError(.conflict) {
            try store.save(values: ["smtp_password": ""], expectedVersion: 0, actor: "admin", remoteAddress: nil)
        }
        XCTAssertEqual(try store.historyEntry(version: 1).values["smtp_password"], "v1:0000aaaa:Zmlyc3Q=")
        XCTAssertNil(try store.historyEntry(version: 1).passwordPurgedAt)
    }

    func testRestoreKeepsAClearedPasswordClearedAndSaysSo() throws {
        let store = makeStore()
        try save(store, base.merging(["smtp_password": "v1:0000aaaa:Zmlyc3Q="]) { $1 })      // 1
        try save(store, ["smtp_password": ""])                                                 // 2: purges 1

        let kept = try store.restore(version: 1, expectedVersion: 2, actor: "admin", remoteAddress: nil)
        XCTAssertEqual(kept, SettingsRestore(version: 3, password: .keptCurrent))
        XCTAssertEqual(try store.load().values["smtp_password"], "")

        // A password set since is kept too: restoring a purged version never changes it.
        try save(store, ["smtp_password": "v1:0000aaaa:dGhpcmQ=", "smtp_port": "2525"])        // 4
        let keptNew = try store.restore(version: 1, expectedVersion: 4, actor: "admin", remoteAddress: nil)
        XCTAssertEqual(keptNew.password, .keptCurrent)
        let now = try store.load().values
        XCTAssertEqual(now["smtp_password"], "v1:0000aaaa:dGhpcmQ=")
        XCTAssertEqual(now["smtp_port"], "587", "the other values are version 1's")
        XCTAssertFalse(try store.historyEntry(version: 5).changedFields.contains("smtp_password"))
    }

    func testRestoreBringsBackAPasswordHistoryStillHoldsAndClearsForAVersionWithout() throws {
        let store = makeStore()
        try save(store, base)                                                                  // 1: no password
        try save(store, ["smtp_password": "v1:0000aaaa:b25l"])                                // 2
        try save(store, ["smtp_password": "v1:0000aaaa:dHdv"])                                // 3

        XCTAssertEqual(try store.restore(version: 2, expectedVersion: 3, actor: "admin", remoteAddress: nil).password, .restored)
        XCTAssertEqual(try store.load().values["smtp_password"], "v1:0000aaaa:b25l")

        // Version 1 had no password: restoring it clears the password, and clearing purges.
        XCTAssertEqual(try store.restore(version: 1, expectedVersion: 4, actor: "admin", remoteAddress: nil).password, .cleared)
        XCTAssertEqual(try store.load().values["smtp_password"], "")
        XCTAssertFalse(try rawSnapshots().values.contains { $0.contains("v1:") })
        XCTAssertEqual(try store.restore(version: 3, expectedVersion: 5, actor: "admin", remoteAddress: nil).password, .keptCurrent)
        XCTAssertEqual(try store.load().values["smtp_password"], "")
    }

    func testMigrationPurgesHistoryOfAPasswordClearedBeforeIt() throws {
        let store = makeStore()
        let db = makeConnection()
        try save(store, base.merging(["smtp_password": "v1:0000aaaa:b2xk"]) { $1 })
        // As a database migrated before version 5 would be: cleared, but history kept the copy.
        try db.execute("UPDATE information SET value = '' WHERE label = 'smtp_password'")
        try db.execute("DELETE FROM schema_migrations WHERE version = 5")
        XCTAssertEqual(try SchemaMigrations.migrate(db), [5])
        XCTAssertEqual(try store.historyEntry(version: 1).values["smtp_password"], "")
        XCTAssertEqual(try store.historyEntry(version: 1).values["smtp_host"], "mail.example.com")
        XCTAssertNotNil(try store.historyEntry(version: 1).passwordPurgedAt)

        // With a password set, the migration leaves history alone.
        try save(store, ["smtp_password": "v1:0000aaaa:bmV3"])
        try db.execute("DELETE FROM schema_migrations WHERE version = 5")
        XCTAssertEqual(try SchemaMigrations.migrate(db), [5])
        XCTAssertEqual(try store.historyEntry(version: 2).values["smtp_password"], "v1:0000aaaa:bmV3")
    }
}
