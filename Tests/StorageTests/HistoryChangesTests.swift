import Foundation
@testable import Storage
import XCTest

/// The changes the history shows per version: values of plain fields against the
/// version before, only "changed" for secrets, and the first save against the defaults.
final class HistoryChangesTests: XCTestCase {
    let fields = ["from_address", "smtp_host", "smtp_port", "smtp_password", "smtp_connect_timeout"]
    let defaults = ["smtp_port": "25", "smtp_password": "", "smtp_connect_timeout": "10"]
    let secrets: Set<String> = ["smtp_password"]

    func entry(_ version: Int, _ values: [String: String], changed: [String], purged: Bool = false) -> SettingsHistoryEntry {
        SettingsHistoryEntry(version: version, savedAt: Date(), savedBy: "admin", remoteAddress: nil, changedFields: changed,
                             values: values, restoredFrom: nil, passwordPurgedAt: purged ? Date() : nil)
    }

    func changes(_ e: SettingsHistoryEntry, _ previous: SettingsHistoryEntry?) -> [FieldChange] {
        HistoryChanges.changes(of: e, previous: previous, fields: fields, defaults: defaults, secrets: secrets)
    }

    func testTheFirstSaveListsOnlyWhatDiffersFromTheDefaults() {
        // Every field written, most left as they were: only host, sender and port count.
        let first = entry(1, ["from_address": "a@example.com", "smtp_host": "mx.example.com", "smtp_port": "587",
                              "smtp_password": "", "smtp_connect_timeout": "10"],
                          changed: ["from_address", "smtp_connect_timeout", "smtp_host", "smtp_password", "smtp_port"])
        XCTAssertEqual(changes(first, nil), [
            FieldChange(field: "from_address", old: nil, new: "a@example.com"),
            FieldChange(field: "smtp_host", old: nil, new: "mx.example.com"),
            FieldChange(field: "smtp_port", old: "25", new: "587"),
        ])
    }

    func testAFirstSaveWithAPasswordSaysOnlyThatItChanged() {
        let first = entry(1, ["smtp_host": "mx.example.com", "smtp_password": "v1:k:sealed"], changed: ["smtp_host", "smtp_password"])
        let listed = changes(first, nil)
        XCTAssertEqual(listed.last, FieldChange(field: "smtp_password", old: nil, new: nil, isSecret: true))
        // Cleared since: blanked in history, but it was set by this save.
        let purged = entry(1, ["smtp_host": "mx.example.com", "smtp_password": ""], changed: ["smtp_host", "smtp_password"], purged: true)
        XCTAssertEqual(changes(purged, nil).last?.isSecret, true)
    }

    func testLaterVersionsShowOldAndNewValuesAndSecretsOnlyAsChanged() {
        let v4 = entry(4, ["smtp_host": "old.example.com", "smtp_port": "587", "smtp_password": "v1:k:one"], changed: [])
        let v5 = entry(5, ["smtp_host": "new.example.com", "smtp_port": "587", "smtp_password": "v1:k:two", "smtp_connect_timeout": "5"],
                       changed: ["smtp_host", "smtp_password", "smtp_connect_timeout"])
        let listed = changes(v5, v4)
        XCTAssertEqual(listed, [
            FieldChange(field: "smtp_host", old: "old.example.com", new: "new.example.com"),
            FieldChange(field: "smtp_password", old: nil, new: nil, isSecret: true),
            // Absent before: its default.
            FieldChange(field: "smtp_connect_timeout", old: "10", new: "5"),
        ])
        // A password blanked in history by a later clear is not a change of this version.
        let v6 = entry(6, ["smtp_host": "new.example.com", "smtp_port": "587", "smtp_password": "", "smtp_connect_timeout": "5"], changed: [])
        XCTAssertEqual(changes(v6, v5), [])
    }

    func testAPrunedPredecessorLeavesTheOldValueUnknown() {
        let v9 = entry(9, ["smtp_host": "mx.example.com", "smtp_port": "2525", "smtp_password": "v1:k:x"], changed: ["smtp_port", "smtp_password"])
        XCTAssertEqual(changes(v9, nil), [
            FieldChange(field: "smtp_port", old: nil, new: "2525"),
            FieldChange(field: "smtp_password", old: nil, new: nil, isSecret: true),
        ])
    }

    func testARestoreListsWhatItWouldChangeInTheCurrentSettings() {
        let current = ["smtp_host": "now.example.com", "smtp_port": "587", "smtp_password": "v1:k:now", "smtp_settings_version": "9",
                       "oauth_refresh_token": "v1:k:token"]
        let v3 = entry(3, ["smtp_host": "then.example.com", "smtp_port": "587", "smtp_password": "v1:k:then"], changed: [])
        XCTAssertEqual(HistoryChanges.restoring(v3, over: current, fields: fields, defaults: defaults, secrets: secrets), [
            FieldChange(field: "smtp_host", old: "now.example.com", new: "then.example.com"),
            FieldChange(field: "smtp_password", old: nil, new: nil, isSecret: true),
        ])
        // Its password removed from history: a restore keeps the current one, so no change.
        let purged = entry(2, ["smtp_host": "now.example.com", "smtp_port": "587", "smtp_password": ""], changed: [], purged: true)
        XCTAssertEqual(HistoryChanges.restoring(purged, over: current, fields: fields, defaults: defaults, secrets: secrets), [])
    }
}
