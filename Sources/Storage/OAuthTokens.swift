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

/// An access token as cached in `oauth_access_tokens`: sealed like every secret, with
/// the seconds it has left by the database's clock (shared by every host).
public struct CachedAccessToken: Sendable, Equatable {
    /// `v1:…` sealed token; "" for the placeholder row of a key never filled.
    public var sealed: String
    /// Seconds until it expires (negative once expired); nil when unknown.
    public var secondsLeft: Double?
    /// Seconds since it was stored (by the database's clock); nil when unknown.
    /// With `secondsLeft` it gives the lifetime the provider granted.
    public var age: Double?

    /// Makes a value; see the properties.
    public init(sealed: String, secondsLeft: Double?, age: Double? = nil) {
        self.sealed = sealed
        self.secondsLeft = secondsLeft
        self.age = age
    }
}

/// What `withAccessTokenLock` does with the row it holds.
public enum AccessTokenUpdate<T> {
    /// Nothing to write (the cached token is still good); answer `T`.
    case keep(T)
    /// Store this sealed token for `expiresIn` seconds, write `signIn` labels to
    /// `information` in the same transaction (a rotated refresh token), answer `T`.
    case store(sealed: String, expiresIn: Int, signIn: [String: String], T)
}

/// OAuth 2.0 state shared by every responder: the access-token cache (with one
/// renewal at a time per key, by a row lock), sign-ins under way (`state` of the
/// authorization-code flow, device codes), and the sign-in labels in `information`.
extension SettingsStore {
    /// The cached token for `key` without locking, or nil.
    public func cachedAccessToken(key: String) throws -> CachedAccessToken? {
        let rows = try connection.read("""
            SELECT sealed, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) AS left_us,
              TIMESTAMPDIFF(MICROSECOND, updated_at, UTC_TIMESTAMP(6)) AS age_us
            FROM oauth_access_tokens WHERE cache_key = ?
            """, [.text(key)])
        guard let row = rows.first else { return nil }
        return try Self.cachedToken(row)
    }

    /// Runs `body` holding the row lock of `key` (made if missing), with the row as it
    /// is under the lock: a process that waited for another's renewal sees the fresh
    /// token and keeps it, so an expiring token is renewed once, not once per process.
    /// `body` may call the token endpoint: the lock lasts as long as that call.
    ///
    /// ```swift
    /// let token = try store.withAccessTokenLock(key: key) { row in
    ///     if let row, (row.secondsLeft ?? 0) > 60 { return .keep(row.sealed) }
    ///     let fresh = try client.clientCredentials()
    ///     return .store(sealed: try vault.seal(fresh.accessToken), expiresIn: fresh.expiresIn, signIn: [:], …)
    /// }
    /// ```
    public func withAccessTokenLock<T>(key: String, _ body: (CachedAccessToken?) throws -> AccessTokenUpdate<T>) throws -> T {
        try retryingDeadlocks {
            try connection.withTransaction {
                try connection.execute("""
                    INSERT IGNORE INTO oauth_access_tokens (cache_key, sealed, expires_at, updated_at)
                    VALUES (?, '', NULL, UTC_TIMESTAMP(6))
                    """, [.text(key)])
                let rows = try connection.query("""
                    SELECT sealed, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) AS left_us,
                      TIMESTAMPDIFF(MICROSECOND, updated_at, UTC_TIMESTAMP(6)) AS age_us
                    FROM oauth_access_tokens WHERE cache_key = ? FOR UPDATE
                    """, [.text(key)])
                let current = try rows.first.map(Self.cachedToken)
                switch try body(current?.sealed.isEmpty == false ? current : nil) {
                case .keep(let value):
                    return value
                case let .store(sealed, expiresIn, signIn, value):
                    try connection.execute("""
                        UPDATE oauth_access_tokens SET sealed = ?, expires_at = UTC_TIMESTAMP(6) + INTERVAL ? SECOND,
                          updated_at = UTC_TIMESTAMP(6) WHERE cache_key = ?
                        """, [.text(sealed), .int(Int64(max(0, expiresIn))), .text(key)])
                    try upsertSignIn(signIn)
                    return value
                }
            }
        }
    }

    /// The sealed refresh token as committed now (a locking read: inside
    /// ``withAccessTokenLock(key:_:)`` it sees a rotation another process just made).
    public func currentRefreshToken() throws -> String? {
        try connection.query("SELECT value FROM information WHERE label = 'oauth_refresh_token' FOR UPDATE")
            .first.map { try $0.text("value") }
    }

    /// Forgets every cached access token (after a sign-in, a sign-out, or a change of
    /// the application): the next session fetches a new one.
    public func forgetAccessTokens() throws {
        try connection.execute("DELETE FROM oauth_access_tokens")
    }

    /// Writes the sign-in labels (`oauth_refresh_token` sealed, `oauth_account`,
    /// `oauth_signed_in_at`; "" removes), forgets cached access tokens and appends an
    /// audit row, in one transaction. The settings version does not change: a sign-in
    /// is not an edit of the settings, and the page's If-Match stays valid.
    public func writeSignIn(_ labels: [String: String], action: String, actor: String, remoteAddress: String?, detail: String?) throws {
        try retryingDeadlocks {
            try connection.withTransaction {
                try upsertSignIn(labels)
                try connection.execute("DELETE FROM oauth_access_tokens")
                try connection.execute("""
                    INSERT INTO audit_log (at, actor, remote_addr, action, outcome, detail, settings_version)
                    VALUES (UTC_TIMESTAMP(6), ?, ?, ?, 'success', ?, NULL)
                    """, [.text(actor), SQLValue(remoteAddress), .text(action), SQLValue(detail)])
            }
        }
    }

    private func upsertSignIn(_ labels: [String: String]) throws {
        for label in labels.keys.sorted() {
            guard Self.signInLabels.contains(label) else {
                throw StorageError(.query, "\(label) is not a sign-in label")
            }
            try connection.execute(
                "INSERT INTO information (label, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)",
                [.text(label), .text(labels[label]!)])
        }
    }

    // MARK: - Sign-ins under way

    /// Remembers a sign-in under way for `lifetime` seconds: `handle` is the OAuth
    /// `state` (or a device-flow handle), `sealed` its secret part (PKCE verifier,
    /// device code), bound to `actor`. Expired rows are deleted on the way.
    public func putPendingSignIn(handle: String, kind: String, actor: String, sealed: String, lifetime: Int) throws {
        try connection.withTransaction {
            try connection.execute("DELETE FROM oauth_pending WHERE expires_at <= UTC_TIMESTAMP(6)")
            try connection.execute("""
                INSERT INTO oauth_pending (handle, kind, actor, sealed, expires_at)
                VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? SECOND)
                """, [.text(handle), .text(kind), .text(actor), .text(sealed), .int(Int64(lifetime))])
        }
    }

    /// The sealed part of a sign-in under way, if `handle` exists, is of `kind`, was
    /// started by `actor` (compared byte for byte) and has not expired; `consume`
    /// deletes it in the same statement's transaction, so a `state` works once.
    public func pendingSignIn(handle: String, kind: String, actor: String, consume: Bool) throws -> String? {
        try connection.withTransaction {
            let rows = try connection.query("""
                SELECT sealed FROM oauth_pending
                WHERE handle = ? AND kind = ? AND actor = ? AND expires_at > UTC_TIMESTAMP(6) FOR UPDATE
                """, [.text(handle), .text(kind), .text(actor)])
            guard let row = rows.first else { return nil }
            if consume { try connection.execute("DELETE FROM oauth_pending WHERE handle = ?", [.text(handle)]) }
            return try row.text("sealed")
        }
    }

    private static func cachedToken(_ row: SQLRow) throws -> CachedAccessToken {
        CachedAccessToken(sealed: try row.text("sealed"), secondsLeft: seconds(row, "left_us"), age: seconds(row, "age_us"))
    }

    /// A microsecond column as seconds, or nil (NULL).
    private static func seconds(_ row: SQLRow, _ column: String) -> Double? {
        switch row[column] {
        case .int(let micros)?: return Double(micros) / 1_000_000
        case .double(let micros)?: return micros / 1_000_000
        case .text(let text)?: return Double(text).map { $0 / 1_000_000 }
        default: return nil
        }
    }
}
