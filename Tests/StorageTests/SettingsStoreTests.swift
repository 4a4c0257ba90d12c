import Foundation
import Storage
import XCTest

/// Saving, loading, versions, history, conflicts, restore, audit, secret re-sealing.
final class SettingsStoreTests: StorageTestCase {
    private let baseSettings: [String: String] = [
        "from_address": "noreply@example.com", "smtp_username": "mailer", "smtp_password": "v1:k1:c2VhbGVk",
        "smtp_host": "mail.example.com", "smtp_port": "587", "smtp_connection_type": "STARTTLS",
        "smtp_authentication_type": "Auto", "smtp_tls_verify": "Full", "smtp_tls_pin_sha256": "",
        "smtp_tls_ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n",
        "smtp_connect_timeout": "10", "smtp_command_timeout": "30",
    ]

    func testLoadOfAnEmptyInstallationIsVersionZero() throws {
        XCTAssertEqual(try makeStore().load(), StoredSettings(values: [:], version: 0))
    }

    func testSaveAndLoadRoundTripManyKeys() throws {
        let store = makeStore()
        var values = baseSettings
        for i in 0..<100 { values["smtp_extra_\(i)"] = "value \(i) 😀 'quoted' \\ \u{0}" }
        XCTAssertEqual(try store.save(values: values, expectedVersion: 0, actor: "admin", remoteAddress: "192.0.2.1"), 1)
        XCTAssertEqual(try store.load(), StoredSettings(values: values, version: 1))
        XCTAssertEqual(try makeStore().load().values, values, "another connection sees the same")
    }

    func testVersionsHistoryAndChangedFields() throws {
        let store = makeStore()
        let before = Date()
        XCTAssertEqual(try store.save(values: baseSettings, expectedVersion: nil, actor: "alice", remoteAddress: "2001:db8::1"), 1)
        var second = baseSettings
        second["smtp_host"] = "smtp.example.net"
        second["smtp_port"] = "465"
        XCTAssertEqual(try store.save(values: second, expectedVersion: 1, actor: "bob", remoteAddress: nil), 2)
        // A save of a subset changes only those labels.
        XCTAssertEqual(try store.save(values: ["smtp_username": "mailer"], expectedVersion: 2, actor: "bob", remoteAddress: nil), 3)

        let history = try store.history(limit: 10, offset: 0)
        XCTAssertEqual(history.map(\.version), [3, 2, 1])
        XCTAssertEqual(history[2].changedFields, baseSettings.keys.sorted())
        XCTAssertEqual(history[1].changedFields, ["smtp_host", "smtp_port"])
        XCTAssertEqual(history[0].changedFields, [])
        XCTAssertEqual(history[2].values, baseSettings)
        XCTAssertEqual(history[1].values, second)
        XCTAssertEqual(history[0].values, second)
        XCTAssertEqual(history[2].savedBy, "alice")
        XCTAssertEqual(history[2].remoteAddress, "2001:db8::1")
        XCTAssertNil(history[1].remoteAddress)
        XCTAssertNil(history[1].restoredFrom)
        XCTAssertEqual(history[2].savedAt.timeIntervalSince1970, before.timeIntervalSince1970, accuracy: 60)
        XCTAssertLessThanOrEqual(history[2].savedAt, history[1].savedAt)
        XCTAssertEqual(history[2].values["smtp_password"], "v1:k1:c2VhbGVk", "the sealed password is kept as stored")

        XCTAssertEqual(try store.history(limit: 1, offset: 1).map(\.version), [2])
        XCTAssertEqual(try store.historyEntry(version: 2), history[1])
        assertStorageError(.notFound) { try store.historyEntry(version: 99) }

        let audit = try store.audit(limit: 10, offset: 0)
        XCTAssertEqual(audit.map(\.action), ["settings.save", "settings.save", "settings.save"])
        XCTAssertEqual(audit.map(\.settingsVersion), [3, 2, 1])
        XCTAssertEqual(audit.map(\.outcome), ["success", "success", "success"])
        XCTAssertEqual(audit[1].detail, #"{"changed_fields":["smtp_host","smtp_port"]}"#)
        XCTAssertFalse(audit.contains { $0.detail?.contains("c2VhbGVk") ?? false }, "no password in audit rows")
    }

    func testStaleExpectedVersionIsAConflictAndWritesNothing() throws {
        let store = makeStore()
        XCTAssertEqual(try store.save(values: baseSettings, expectedVersion: 0, actor: "alice", remoteAddress: nil), 1)
        var changed = baseSettings
        changed["smtp_host"] = "other.example.com"
        changed["smtp_new_label"] = "new"
        let error = assertStorageError(.conflict) {
            try store.save(values: changed, expectedVersion: 0, actor: "bob", remoteAddress: nil)
        }
        XCTAssertEqual(error?.currentVersion, 1)
        XCTAssertEqual(try store.load(), StoredSettings(values: baseSettings, version: 1))
        XCTAssertEqual(try store.history().count, 1)
        XCTAssertEqual(try store.audit().count, 1)
        // The first save against an absent version row is checked too.
        try makeConnection().execute("DELETE FROM information WHERE label = ?", ["smtp_settings_version"])
        XCTAssertEqual(assertStorageError(.conflict) {
            try store.save(values: changed, expectedVersion: 5, actor: "bob", remoteAddress: nil)
        }?.currentVersion, 0)
    }

    func testAFailingStatementMidwayWritesNothing() throws {
        let store = makeStore()
        XCTAssertEqual(try store.save(values: baseSettings, expectedVersion: 0, actor: "alice", remoteAddress: nil), 1)
        // Labels are upserted in sorted order: "smtp_a…" is written, then the over-long
        // label fails (VARCHAR(191), strict mode) — the whole transaction must vanish.
        let values = ["smtp_aaa": "written first", "smtp_" + String(repeating: "z", count: 200): "too long", "smtp_host": "changed"]
        let error = assertStorageError(.query) { try store.save(values: values, expectedVersion: 1, actor: "bob", remoteAddress: nil) }
        XCTAssertEqual(error?.mariadbErrno, 1406)
        XCTAssertEqual(try store.load(), StoredSettings(values: baseSettings, version: 1))
        XCTAssertEqual(try store.history().count, 1)
        XCTAssertEqual(try store.audit().count, 1)
        // The store is usable afterwards.
        XCTAssertEqual(try store.save(values: ["smtp_host": "changed"], expectedVersion: 1, actor: "bob", remoteAddress: nil), 2)
    }

    func testOnlySettingsLabelsCanBeSaved() throws {
        let store = makeStore()
        assertStorageError(.query) { try store.save(values: ["smtp_settings_version": "9"], expectedVersion: nil, actor: "a", remoteAddress: nil) }
        assertStorageError(.query) { try store.save(values: ["site_name": "x"], expectedVersion: nil, actor: "a", remoteAddress: nil) }
        XCTAssertEqual(try store.load().version, 0)
    }

    func testRestoreMakesAnOldVersionCurrentAsANewVersion() throws {
        let store = makeStore()
        XCTAssertEqual(try store.save(values: baseSettings, expectedVersion: 0, actor: "alice", remoteAddress: nil), 1)
        var second = baseSettings
        second["smtp_host"] = "second.example.com"
        second["smtp_added_later"] = "only in v2"
        XCTAssertEqual(try store.save(values: second, expectedVersion: 1, actor: "alice", remoteAddress: nil), 2)

        assertStorageError(.conflict) { try store.restore(version: 1, expectedVersion: 1, actor: "bob", remoteAddress: nil) }
        assertStorageError(.notFound) { try store.restore(version: 42, expectedVersion: 2, actor: "bob", remoteAddress: nil) }
        XCTAssertEqual(try store.load().version, 2, "failed restores write nothing")

        XCTAssertEqual(try store.restore(version: 1, expectedVersion: 2, actor: "bob", remoteAddress: "192.0.2.9").version, 3)
        XCTAssertEqual(try store.load(), StoredSettings(values: baseSettings, version: 3))
        let entry = try store.historyEntry(version: 3)
        XCTAssertEqual(entry.restoredFrom, 1)
        XCTAssertEqual(entry.values, baseSettings)
        XCTAssertEqual(entry.changedFields, ["smtp_added_later", "smtp_host"])
        XCTAssertEqual(entry.savedBy, "bob")
        let audit = try XCTUnwrap(store.audit(limit: 1).first)
        XCTAssertEqual(audit.action, "settings.restore")
        XCTAssertEqual(audit.settingsVersion, 3)
        XCTAssertEqual(audit.remoteAddress, "192.0.2.9")
        XCTAssertEqual(audit.detail, #"{"changed_fields":["smtp_added_later","smtp_host"],"restored_from":1}"#)
    }

    func testAuditRows() throws {
        let store = makeStore()
        let first = try store.appendAudit(action: "test.send", outcome: "failure", actor: "alice", remoteAddress: "192.0.2.1",
                                          detail: #"{"stage":"auth","kind":"auth_rejected"}"#, settingsVersion: 4)
        let second = try store.appendAudit(action: "check", outcome: "success", actor: "bob", remoteAddress: nil)
        XCTAssertGreaterThan(second, first)
        let rows = try store.audit(limit: 10, offset: 0)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0].id, second)
        XCTAssertEqual(rows[0].action, "check")
        XCTAssertNil(rows[0].remoteAddress)
        XCTAssertNil(rows[0].detail)
        XCTAssertNil(rows[0].settingsVersion)
        XCTAssertEqual(rows[1].detail, #"{"stage":"auth","kind":"auth_rejected"}"#)
        XCTAssertEqual(rows[1].settingsVersion, 4)
        XCTAssertEqual(rows[1].at.timeIntervalSinceNow, 0, accuracy: 60)
        XCTAssertEqual(try store.audit(limit: 1, offset: 1).map(\.id), [first])

        // Inside a caller's transaction, a rollback takes the audit row with it.
        struct Abort: Error {}
        XCTAssertThrowsError(try store.withTransaction { _ in
            try store.appendAudit(action: "x", outcome: "y", actor: "z", remoteAddress: nil)
            throw Abort()
        })
        XCTAssertEqual(try store.audit().count, 2)
    }

    func testRewriteSecretsReSealsCurrentAndHistoryInOneTransaction() throws {
        let store = makeStore()
        var values = baseSettings
        values["smtp_password"] = "sealed-A"
        XCTAssertEqual(try store.save(values: values, expectedVersion: 0, actor: "a", remoteAddress: nil), 1)
        values["smtp_password"] = ""
        XCTAssertEqual(try store.save(values: values, expectedVersion: 1, actor: "a", remoteAddress: nil), 2)
        values["smtp_password"] = "sealed-B"
        XCTAssertEqual(try store.save(values: values, expectedVersion: 2, actor: "a", remoteAddress: nil), 3)

        // A transform that fails part-way changes nothing.
        struct KeyMissing: Error {}
        var calls = 0
        XCTAssertThrowsError(try store.rewriteSecrets(actor: "cli") { sealed in
            calls += 1
            if calls == 2 { throw KeyMissing() }
            return "resealed(\(sealed))"
        }) { XCTAssertTrue($0 is KeyMissing) }
        XCTAssertEqual(try store.load().values["smtp_password"], "sealed-B")
        XCTAssertEqual(try store.historyEntry(version: 3).values["smtp_password"], "sealed-B")

        let count = try store.rewriteSecrets(actor: "cli") { "resealed(\($0))" }
        XCTAssertEqual(count, 2, "the current value and the one history snapshot since the password was cleared")
        let loaded = try store.load()
        XCTAssertEqual(loaded.version, 3, "re-sealing is not a new settings version")
        XCTAssertEqual(loaded.values["smtp_password"], "resealed(sealed-B)")
        XCTAssertEqual(try store.historyEntry(version: 1).values["smtp_password"], "", "removed when version 2 cleared it")
        XCTAssertEqual(try store.historyEntry(version: 2).values["smtp_password"], "", "empty means cleared; left alone")
        XCTAssertEqual(try store.historyEntry(version: 3).values["smtp_password"], "resealed(sealed-B)")
        XCTAssertEqual(try store.historyEntry(version: 3).values["smtp_host"], baseSettings["smtp_host"])
        let audit = try XCTUnwrap(store.audit(limit: 1).first)
        XCTAssertEqual(audit.action, "secrets.rewrite")
        XCTAssertEqual(audit.detail, #"{"rewritten":2}"#)
    }
}
