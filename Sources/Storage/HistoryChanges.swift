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

/// What one saved version changed, field by field, for the history page: old and
/// new values of plain fields, and for secrets only that they changed.
public struct FieldChange: Sendable, Equatable {
    /// The settings label, e.g. `smtp_host`.
    public var field: String
    /// The value before; nil when it is not known (the version before was pruned
    /// from history) or the field had no default before the first save.
    public var old: String?
    /// The value after.
    public var new: String?
    /// True for a secret: `old` and `new` are then always nil.
    public var isSecret: Bool

    /// Makes a change; see the properties.
    public init(field: String, old: String?, new: String?, isSecret: Bool = false) {
        self.field = field
        self.old = old
        self.new = new
        self.isSecret = isSecret
    }
}

/// The changes of a history entry against the version before it.
///
/// Why not the stored `changed_fields` alone: it names fields, not values, and the
/// first save lists every field it wrote, even those left at their defaults. Why
/// not the snapshots alone for secrets: sealed values differ on every save and are
/// blanked when a password is cleared, so a secret counts as changed exactly when
/// the save itself said so (`changed_fields`).
///
/// ```swift
/// let changes = HistoryChanges.changes(of: entry, previous: entries.first { $0.version == entry.version - 1 },
///                                      fields: ["from_address", "smtp_host"], defaults: ["smtp_port": "25"],
///                                      secrets: ["smtp_password"])
/// ```
public enum HistoryChanges {
    /// - Parameters:
    ///   - entry: the version whose changes are wanted.
    ///   - previous: the version before it, when history still has it.
    ///   - fields: every settings label in the order to list them; labels of the
    ///     snapshots that are not among them follow, sorted.
    ///   - defaults: each label's value before anyone saved it (absent: none).
    ///   - secrets: labels whose values are never shown.
    public static func changes(of entry: SettingsHistoryEntry, previous: SettingsHistoryEntry?,
                               fields: [String], defaults: [String: String], secrets: Set<String>) -> [FieldChange] {
        let known = Set(fields)
        var others = Set(entry.values.keys).union(previous.map { Array($0.values.keys) } ?? []).union(entry.changedFields)
        others.subtract(known)
        let all = fields + others.sorted()
        let said = Set(entry.changedFields)
        var result: [FieldChange] = []
        for field in all {
            if secrets.contains(field) {
                guard said.contains(field) else { continue }
                // A first save that wrote an empty secret set nothing; one since
                // cleared (blanked in history) did set one.
                if previous == nil, entry.version == 1, entry.values[field, default: ""].isEmpty,
                   !(field == SettingsStore.passwordLabel && entry.passwordPurgedAt != nil) { continue }
                result.append(FieldChange(field: field, old: nil, new: nil, isSecret: true))
                continue
            }
            let new = entry.values[field] ?? defaults[field] ?? ""
            if let previous {
                let old = previous.values[field] ?? defaults[field] ?? ""
                if old != new { result.append(FieldChange(field: field, old: old, new: new)) }
            } else if entry.version == 1 {
                // The first save: what differs from the defaults, not every field it wrote.
                if new != (defaults[field] ?? "") { result.append(FieldChange(field: field, old: defaults[field], new: new)) }
            } else if said.contains(field) {
                // The version before was pruned: the field changed, from a value no longer kept.
                result.append(FieldChange(field: field, old: nil, new: new))
            }
        }
        return result
    }
}

extension HistoryChanges {
    /// What restoring `entry` would change in the `current` settings: plain fields
    /// with the current value as `old` and the version's as `new`; a secret when its
    /// sealed value differs, except a password removed from history (a restore keeps
    /// the current one then).
    /// - Parameters: as for ``changes(of:previous:fields:defaults:secrets:)``; `current` is
    ///   every stored label now.
    public static func restoring(_ entry: SettingsHistoryEntry, over current: [String: String],
                                 fields: [String], defaults: [String: String], secrets: Set<String>) -> [FieldChange] {
        var others = Set(entry.values.keys).union(current.keys)
        others.subtract(fields)
        var result: [FieldChange] = []
        for field in fields + others.sorted() where SettingsStore.isSettingsLabel(field) {
            let now = current[field] ?? defaults[field] ?? ""
            let then = entry.values[field] ?? defaults[field] ?? ""
            guard now != then else { continue }
            if secrets.contains(field) {
                if field == SettingsStore.passwordLabel, entry.passwordPurgedAt != nil { continue }
                result.append(FieldChange(field: field, old: nil, new: nil, isSecret: true))
            } else {
                result.append(FieldChange(field: field, old: now, new: then))
            }
        }
        return result
    }
}

extension SettingsStore {
    /// The audit rows of test emails (`test.send`) and connection checks (`test.check`)
    /// about settings versions in `versions`, newest first, at most `limit`: what the
    /// history shows beside each version, successful or not. Aggregated refusals
    /// (429, 403) are left out.
    ///
    /// ```swift
    /// let events = try store.testEvents(versions: 3...7, limit: 100)
    /// ```
    public func testEvents(versions: ClosedRange<Int>, limit: Int) throws -> [AuditEntry] {
        let rows = try connection.query("""
            SELECT id, at, actor, remote_addr, action, outcome, detail, settings_version
            FROM audit_log
            WHERE action IN ('test.send', 'test.check') AND aggregated_minute IS NULL
              AND settings_version BETWEEN ? AND ?
            ORDER BY id DESC LIMIT ?
            """, [.int(Int64(versions.lowerBound)), .int(Int64(versions.upperBound)), .int(Int64(max(0, limit)))])
        return try rows.map { row in
            AuditEntry(id: try row.int("id"), at: try row.date("at"), actor: try row.text("actor"),
                       remoteAddress: try row.optionalText("remote_addr"), action: try row.text("action"),
                       outcome: try row.text("outcome"), detail: try row.optionalText("detail"),
                       settingsVersion: try row.optionalInt("settings_version").map(Int.init))
        }
    }
}
