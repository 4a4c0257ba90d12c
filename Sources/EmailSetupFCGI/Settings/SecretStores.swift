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
import Storage

/// A secret a client sent for one field, opened from its transport ciphertext and
/// already sealed for storage.
struct TransportSecret: Sendable, Equatable {
    /// The field it was sent in, e.g. `smtp_password`.
    var field: String
    /// The nonce inside the ciphertext; the save consumes it.
    var nonce: String
    /// The secret sealed for storage (`v1:…`).
    var sealed: String
}

/// Opens transport ciphertexts (the browser's RSA-OAEP over
/// `{"nonce":…,"secret":…}`) for any secret field — the SMTP password today, OAuth
/// client secrets next — and seals them for storage; opens stored secrets for the
/// SMTP client. Crypto only: nonces are issued and consumed by the repository.
protocol PasswordVault: AnyObject, Sendable {
    /// The RSA public key (SPKI PEM) browsers and curl users encrypt with; throws when
    /// the key, read on first use under plain CGI, cannot be read.
    var publicKeyPEM: String { get throws }
    /// Decrypts a base64 transport ciphertext sent in `field`, checks its framing and
    /// seals the secret; the clear text lives only inside this call. Throws
    /// `StorageError` (`.secretMalformed`, `.secretAuthentication`, …) → 400 on `field`.
    func openTransportCiphertext(_ base64: String, field: String) throws -> TransportSecret
    /// Opens a stored (sealed or legacy) secret; "" stays "".
    func openStored(_ stored: String) throws -> String
    /// A stored value in the original system's format, re-sealed as v1; nil when
    /// it is already v1 or empty (nothing to migrate).
    func migratedLegacy(_ stored: String) throws -> String?
    /// Seals a secret the server itself received (a refresh or access token).
    func seal(_ secret: String) throws -> String
}

/// Where OAuth 2.0 state lives (Storage's `SettingsStore` in production): the shared
/// access-token cache with its renewal lock, sign-ins under way, and the sign-in labels.
protocol OAuthTokenStore: AnyObject {
    func cachedAccessToken(key: String) throws -> CachedAccessToken?
    func withAccessTokenLock<T>(key: String, _ body: (CachedAccessToken?) throws -> AccessTokenUpdate<T>) throws -> T
    func writeSignIn(_ labels: [String: String], action: String, actor: String, remoteAddress: String?, detail: String?) throws
    func putPendingSignIn(handle: String, kind: String, actor: String, sealed: String, lifetime: Int) throws
    func pendingSignIn(handle: String, kind: String, actor: String, consume: Bool) throws -> String?
    func forgetAccessTokens() throws
    func currentRefreshToken() throws -> String?
}
