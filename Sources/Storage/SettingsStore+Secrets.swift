// Transactions for callers and the re-sealing of every stored secret (key rotation).
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
    /// Runs `body` in one transaction on this store's connection (rolled back if it
    /// throws); store methods called inside join it.
    ///
    /// ```swift
    /// try store.withTransaction { db in
    ///     _ = try db.query("SELECT value FROM information WHERE label = ? FOR UPDATE", ["smtp_password"])
    ///     try store.appendAudit(action: "key.rotate", outcome: "success", actor: "cli", remoteAddress: nil)
    /// }
    /// ```
    @discardableResult
    public func withTransaction<T>(_ body: (MariaDBConnection) throws -> T) throws -> T {
        try connection.withTransaction { try body(connection) }
    }

    /// Re-seals every stored secret in one transaction, for key rotation: applies
    /// `transform` to the non-empty `smtp_password` in `information` and in every
    /// history snapshot that still holds one (each version since the password was
    /// last cleared; clearing removed the older copies), writes a `secrets.rewrite` audit row, and commits — or, if
    /// `transform` throws anywhere, changes nothing. The settings version is not bumped
    /// (the settings did not change, only their encryption).
    /// - Parameters:
    ///   - actor: who rotates (e.g. `cli`).
    ///   - transform: sealed value in, re-sealed value out.
    /// - Returns: how many values were rewritten.
    ///
    /// ```swift
    /// let count = try store.rewriteSecrets(actor: "cli") { sealed in
    ///     try newKey.seal(try oldKey.open(sealed))
    /// }
    /// ```
    @discardableResult
    public func rewriteSecrets(actor: String, transform: (String) throws -> String) throws -> Int {
        try withVersionLock { current in
            var count = 0
            let rows = try connection.query("SELECT value FROM information WHERE label = ? FOR UPDATE", [.text(Self.passwordLabel)])
            if let sealed = try rows.first?.text("value"), !sealed.isEmpty {
                try connection.execute("UPDATE information SET value = ? WHERE label = ?",
                                       [.text(try transform(sealed)), .text(Self.passwordLabel)])
                count += 1
            }
            let history = try connection.query("SELECT version, snapshot FROM settings_history ORDER BY version FOR UPDATE")
            for row in history {
                let version = try row.int("version")
                var snapshot = try Self.decodeObject(try row.text("snapshot"), what: "snapshot of version \(version)")
                guard let sealed = snapshot[Self.passwordLabel], !sealed.isEmpty else { continue }
                snapshot[Self.passwordLabel] = try transform(sealed)
                try connection.execute("UPDATE settings_history SET snapshot = ? WHERE version = ?",
                                       [.text(try Self.encodeJSON(snapshot)), .int(version)])
                count += 1
            }
            try appendAudit(action: "secrets.rewrite", outcome: "success", actor: actor, remoteAddress: nil,
                            detail: try Self.encodeJSON(["rewritten": count]), settingsVersion: current)
            return count
        }
    }
}
