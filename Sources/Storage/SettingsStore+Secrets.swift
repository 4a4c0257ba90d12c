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
    /// `transform` to the non-empty `smtp_password` and every other sealed (`v1:`)
    /// settings or sign-in value in `information`, to the same in every history snapshot
    /// that still holds one (each version since the password was last cleared;
    /// clearing removed the older copies), and to the sealed access tokens and pending
    /// sign-ins; writes a `secrets.rewrite` audit row, and commits — or, if `transform`
    /// throws anywhere, changes nothing. The settings version is not bumped (the
    /// settings did not change, only their encryption). Inside a caller's transaction
    /// it joins it.
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
            func isSecret(_ label: String, _ value: String) -> Bool {
                label == Self.passwordLabel ? !value.isEmpty : SealedSecret.isSealed(value)
            }
            var count = 0
            for row in try connection.query("SELECT label, value FROM information ORDER BY label FOR UPDATE") {
                let (label, value) = (try row.text("label"), try row.text("value"))
                guard Self.isSettingsLabel(label) || Self.signInLabels.contains(label), isSecret(label, value) else { continue }
                try connection.execute("UPDATE information SET value = ? WHERE label = ?", [.text(try transform(value)), .text(label)])
                count += 1
            }
            let history = try connection.query("SELECT version, snapshot FROM settings_history ORDER BY version FOR UPDATE")
            for row in history {
                let version = try row.int("version")
                var snapshot = try Self.decodeObject(try row.text("snapshot"), what: "snapshot of version \(version)")
                let labels = snapshot.keys.sorted().filter { isSecret($0, snapshot[$0]!) }
                guard !labels.isEmpty else { continue }
                for label in labels { snapshot[label] = try transform(snapshot[label]!) }
                try connection.execute("UPDATE settings_history SET snapshot = ? WHERE version = ?",
                                       [.text(try Self.encodeJSON(snapshot)), .int(version)])
                count += labels.count
            }
            for row in try connection.query("SELECT cache_key, sealed FROM oauth_access_tokens ORDER BY cache_key FOR UPDATE") {
                let sealed = try row.text("sealed")
                guard SealedSecret.isSealed(sealed) else { continue }
                try connection.execute("UPDATE oauth_access_tokens SET sealed = ? WHERE cache_key = ?",
                                       [.text(try transform(sealed)), .text(try row.text("cache_key"))])
                count += 1
            }
            for row in try connection.query("SELECT handle, sealed FROM oauth_pending ORDER BY handle FOR UPDATE") {
                let sealed = try row.text("sealed")
                guard SealedSecret.isSealed(sealed) else { continue }
                try connection.execute("UPDATE oauth_pending SET sealed = ? WHERE handle = ?",
                                       [.text(try transform(sealed)), .text(try row.text("handle"))])
                count += 1
            }
            try appendAudit(action: "secrets.rewrite", outcome: "success", actor: actor, remoteAddress: nil,
                            detail: try Self.encodeJSON(["rewritten": count]), settingsVersion: current)
            return count
        }
    }
}
