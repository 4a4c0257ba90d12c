// Reading and saving the current settings (optimistic concurrency on the version).
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
    /// Reads every label with one statement, so the values and the version always come
    /// from the same committed state (InnoDB gives a single statement one snapshot).
    ///
    /// ```swift
    /// let settings = try store.load()
    /// let etag = "\"\(settings.version)\""
    /// ```
    public func load() throws -> StoredSettings {
        // read: no ping first (one round trip, not two); reconnects if the server restarted.
        let rows = try connection.read("SELECT label, value FROM information")
        return try Self.settings(from: rows)
    }

    /// ``load()`` and the newest version whose `action` succeeded (the first of
    /// ``versionsWithSuccess(action:limit:)``), in one statement: one round trip, and
    /// both from the same snapshot. GET of the settings runs this on every request.
    ///
    /// ```swift
    /// let (settings, lastKnownGood) = try store.loadWithLastSuccess(action: "test.send")
    /// ```
    public func loadWithLastSuccess(action: String) throws -> (StoredSettings, Int?) {
        let rows = try connection.read("""
            SELECT label, value FROM information
            UNION ALL
            SELECT NULL, MAX(settings_version) FROM audit_log WHERE action = ? AND outcome = 'success'
            """, [.text(action)])
        var settingsRows: [SQLRow] = []
        settingsRows.reserveCapacity(rows.count)
        var last: Int?
        for row in rows {
            if try row.optionalText("label") == nil {
                // The union's column is text; an integer would do as well.
                let value = row["value"]
                last = value?.textValue.flatMap { Int($0) } ?? value?.intValue.map { Int($0) }
            } else {
                settingsRows.append(row)
            }
        }
        return (try Self.settings(from: settingsRows), last)
    }

    /// Saves `values` as the next version, atomically.
    ///
    /// One transaction: lock the version row (`SELECT … FOR UPDATE`; created first if
    /// missing), compare with `expectedVersion`, upsert every label
    /// (`INSERT … ON DUPLICATE KEY UPDATE`), bump the version, write a history row (with
    /// the names of the labels whose values changed) and an `settings.save` audit row,
    /// prune history and audit (``RetentionPolicy``), commit. On any error nothing is
    /// written. Labels not in `values` keep their value.
    ///
    /// Two secret rules in the same transaction: the nonces of the transport
    /// ciphertexts the values came from are consumed first (each works once), and
    /// `smtp_password` saved as `""` (cleared) removes every sealed password from the
    /// history snapshots, so a cleared password cannot come back by a restore.
    ///
    /// - Parameters:
    ///   - values: settings labels → values; `smtp_password` must already be sealed.
    ///   - expectedVersion: the version the client saw (`If-Match`); `nil` skips the check.
    ///   - actor: the authenticated user.
    ///   - remoteAddress: the client address, if known.
    ///   - consumingNonces: field → the nonce of the transport ciphertext its value
    ///     was opened from (``TransportPlaintext/nonce``).
    /// - Returns: the new version.
    /// - Throws: `.conflict` with `currentVersion` when `expectedVersion` is stale;
    ///   `.transportNonce` (with `field`) for a nonce that is unknown, expired or used;
    ///   `.query` for a label that is not a settings label; `.unavailable` when the
    ///   database is away or busy.
    ///
    /// ```swift
    /// do {
    ///     let version = try store.save(values: form, expectedVersion: ifMatch, actor: user, remoteAddress: addr)
    /// } catch let error as StorageError where error.code == .conflict {
    ///     // 409, with error.currentVersion
    /// }
    /// ```
    public func save(values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                     consumingNonces: [String: String] = [:]) throws -> Int {
        if let bad = values.keys.sorted().first(where: { !Self.isSettingsLabel($0) }) {
            throw StorageError(.query, "\(bad) is not a settings label (from_address or smtp_*, not \(Self.versionLabel))")
        }
        return try withVersionLock { current in
            try consumeTransportNonces(consumingNonces)
            try checkExpected(expectedVersion, current: current)
            let previous = try lockedSettingsValues()
            let changed = values.keys.filter { previous[$0] != values[$0] }.sorted()
            let newVersion = current + 1
            try upsert(values)
            let purged = values[Self.passwordLabel] == "" ? try purgeHistoryPasswords() : 0
            if values["oauth_client_secret"] == "", previous["oauth_client_secret", default: ""] != "" { try purgeHistoryClientSecrets() }
            var snapshot = previous
            snapshot.merge(values) { _, new in new }
            try writeVersion(newVersion, snapshot: snapshot, changed: changed, restoredFrom: nil, purgedPasswords: purged,
                             actor: actor, remoteAddress: remoteAddress, action: "settings.save")
            return newVersion
        }
    }
}
