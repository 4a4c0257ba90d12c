// The saved versions and restoring one of them as a new version.
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

extension SettingsStore {
    /// The saved versions, newest first.
    /// - Parameters:
    ///   - limit: at most this many entries.
    ///   - offset: skip this many newest entries first.
    public func history(limit: Int = 50, offset: Int = 0) throws -> [SettingsHistoryEntry] {
        let rows = try connection.query("""
            SELECT version, saved_at, saved_by, remote_addr, changed_fields, snapshot, restored_from, password_purged_at
            FROM settings_history ORDER BY version DESC LIMIT ? OFFSET ?
            """, [.int(Int64(max(0, limit))), .int(Int64(max(0, offset)))])
        return try rows.map(Self.historyEntry(from:))
    }

    /// One saved version.
    /// - Throws: `.notFound` when there is no such version.
    public func historyEntry(version: Int) throws -> SettingsHistoryEntry {
        let rows = try connection.query("""
            SELECT version, saved_at, saved_by, remote_addr, changed_fields, snapshot, restored_from, password_purged_at
            FROM settings_history WHERE version = ?
            """, [.int(Int64(version))])
        guard let row = rows.first else { throw StorageError(.notFound, "settings version \(version) is not in the history") }
        return try Self.historyEntry(from: row)
    }

    /// Makes the values of an earlier version current again, as a NEW version (its
    /// history row has `restoredFrom = version`); settings labels that did not exist
    /// in that version are removed. Same transaction rules as ``save(values:expectedVersion:actor:remoteAddress:consumingNonces:)``;
    /// the audit action is `settings.restore`.
    ///
    /// The password follows the version, with one exception: a cleared password
    /// never comes back. When the version's password was removed from history (the
    /// password was cleared since), or the password is cleared now, the current
    /// password state is kept (``PasswordRestore/keptCurrent``). A version that had
    /// no password clears a password that is set (``PasswordRestore/cleared``), and
    /// that clearing removes every sealed copy from history like a save of `""`.
    /// - Parameters:
    ///   - version: the history version to restore.
    ///   - expectedVersion: the current version the client saw; `nil` skips the check.
    ///   - actor: the authenticated user.
    ///   - remoteAddress: the client address, if known.
    /// - Returns: the new version and what happened to the password.
    /// - Throws: `.notFound` for an unknown version, `.conflict` for a stale `expectedVersion`.
    ///
    /// ```swift
    /// let restored = try store.restore(version: 3, expectedVersion: 7, actor: "admin", remoteAddress: nil)
    /// if restored.password == .keptCurrent { /* say so */ }
    /// ```
    public func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore {
        try withVersionLock { current in
            try checkExpected(expectedVersion, current: current)
            let rows = try connection.query("SELECT snapshot, password_purged_at FROM settings_history WHERE version = ?",
                                            [.int(Int64(version))])
            guard let row = rows.first else { throw StorageError(.notFound, "settings version \(version) is not in the history") }
            var target = try Self.decodeObject(try row.text("snapshot"), what: "snapshot of version \(version)")
                .filter { Self.isSettingsLabel($0.key) }
            let previous = try lockedSettingsValues()
            let currentPassword = previous[Self.passwordLabel] ?? ""
            let targetPassword = target[Self.passwordLabel] ?? ""
            let password: PasswordRestore
            if try row.optionalDate("password_purged_at") != nil || (currentPassword.isEmpty && !targetPassword.isEmpty) {
                target[Self.passwordLabel] = previous[Self.passwordLabel]
                password = .keptCurrent
            } else if targetPassword.isEmpty && !currentPassword.isEmpty {
                target[Self.passwordLabel] = ""
                password = .cleared
            } else {
                password = .restored
            }
            let removed = previous.keys.filter { target[$0] == nil }.sorted()
            let changed = Set(target.keys.filter { previous[$0] != target[$0] }).union(removed).sorted()
            try upsert(target)
            for label in removed {
                try connection.execute("DELETE FROM information WHERE label = ?", [.text(label)])
            }
            let purged = password == .cleared ? try purgeHistoryPasswords() : 0
            let newVersion = current + 1
            try writeVersion(newVersion, snapshot: target, changed: changed, restoredFrom: version, purgedPasswords: purged,
                             actor: actor, remoteAddress: remoteAddress, action: "settings.restore")
            return SettingsRestore(version: newVersion, password: password)
        }
    }
}
