import Foundation
import Smtp
import Storage

/// The saved settings as the API sees them: every stored label and the version.
struct SettingsSnapshot: Sendable, Equatable {
    var values: [String: String]
    var version: Int
}

/// Where the settings, their history, the audit log and the rate-limit counters
/// live. The production conformance is Storage's `SettingsStore` (one per worker
/// thread); unit tests use an in-memory one. Implementations throw `StorageError`
/// (`.unavailable` → 503, `.conflict` → 409, `.notFound` → 404, `.transportNonce` → 400).
protocol SettingsRepository: AnyObject {
    /// One consistent read of all settings and their version.
    func loadSettings() throws -> SettingsSnapshot
    /// Saves all `values` atomically if the stored version still equals
    /// `expectedVersion` (nil: any), with history and audit rows; returns the new
    /// version. In the same transaction it consumes `nonces` (field → the nonce of
    /// the transport ciphertext the field's value came from; `.transportNonce` when
    /// one is unknown, expired or used) and, when `smtp_password` is saved as "",
    /// removes every sealed password from history.
    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int
    /// Saved versions, newest first.
    func history(limit: Int, offset: Int) throws -> [SettingsHistoryEntry]
    /// Makes `version`'s values current as a new version (a cleared password stays
    /// cleared); returns it and what happened to the password.
    func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore
    /// Appends one audit row.
    @discardableResult
    func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws -> Int64
    /// Counts a repeated refusal (429, 403) in one audit row per action, outcome,
    /// user and minute, instead of one row per request.
    func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws
    /// The audit log, newest first.
    func audit(limit: Int, offset: Int) throws -> [AuditEntry]
    /// Counts one event against a sliding-window limit shared by all responders.
    func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision
    /// Versions whose test email succeeded, newest first (at most `limit`).
    func versionsWithSuccessfulTests(limit: Int) throws -> [Int]
    /// The settings and the newest version whose test email succeeded, for GET: one
    /// round trip and one snapshot where the repository can (see `SettingsStore`).
    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?)
    /// A fresh single-use nonce for transport ciphertexts, valid `lifetime` seconds
    /// on every responder of the database.
    func issueTransportNonce(lifetime: TimeInterval) throws -> TransportNonce
}

extension SettingsRepository {
    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?) {
        (try loadSettings(), try versionsWithSuccessfulTests(limit: 1).first)
    }

    /// A save that carries no transport ciphertext.
    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> Int {
        try saveSettings(values, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress, consumingNonces: [:])
    }
}

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
    /// The RSA public key (SPKI PEM) browsers and curl users encrypt with.
    var publicKeyPEM: String { get }
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

/// The SMTP sessions the API runs: the real client in production, scripted in unit tests.
protocol SmtpOperations: Sendable {
    func check(_ settings: SmtpSettings) throws -> SmtpCheckReport
    func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport
    /// The failure of a session that started at `startedAt`, with verified advice when
    /// another port or connection security works (``SmtpAdvice``).
    func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError
}

extension SmtpOperations {
    /// Scripted sessions probe nothing: the failure as it is.
    func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError { error }
}

/// The Smtp module's client, in process.
struct LiveSmtp: SmtpOperations {
    /// Ports (with their connection security) probed besides the saved port after a
    /// failure that suggests another port or security: the usual ones in production.
    var usualProbes = SmtpAdvice.usualProbes

    func check(_ settings: SmtpSettings) throws -> SmtpCheckReport { try SmtpClient.check(settings) }
    func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport {
        try SmtpClient.send(envelope: envelope, message: message, settings: settings)
    }
    func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError {
        SmtpAdvice.advise(error, settings: settings, startedAt: startedAt, usual: usualProbes)
    }
}

/// Who may use the API: the web server authenticates, we authorise.
struct AccessPolicy: Sendable {
    enum Mode: String, Sendable {
        /// REMOTE_USER must be set by the web server (auth_basic, auth_request, SSO…).
        case remoteUser = "remote_user"
        /// No authentication: local runs only; the responder warns at start.
        case none
    }
    var mode: Mode = .remoteUser
    /// When not empty, only these users are administrators.
    var admins: UserNames = []
}

/// A set of user names compared byte for byte (their UTF-8), not as Swift `String`s:
/// `String` equality is canonical equivalence, which would admit "\u{212A}ate"
/// (KELVIN SIGN) or an NFD "José" for the listed "Kate" and NFC "José". The web
/// server decides who a user is, including any normalisation of its own; we add none.
///
/// ```swift
/// let admins: UserNames = ["Kate"]
/// admins.contains("\u{212A}ate")   // false
/// ```
struct UserNames: Sendable, Equatable, ExpressibleByArrayLiteral {
    private var names: Set<[UInt8]>

    init(_ names: some Sequence<String>) { self.names = Set(names.map { Array($0.utf8) }) }
    init(arrayLiteral names: String...) { self.init(names) }

    var isEmpty: Bool { names.isEmpty }
    var count: Int { names.count }

    /// Whether `user` is in the set with exactly these bytes.
    func contains(_ user: String) -> Bool { names.contains(Array(user.utf8)) }
}

/// How many test emails and checks are allowed per minute.
struct TestRateLimits: Sendable {
    var perUser = 10
    var total = 60
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

/// What work on the SMTP pool writes through: the settings repository (audit rows)
/// and the OAuth store (tokens), both on the pool thread's own connection.
typealias WorkRepository = SettingsRepository & OAuthTokenStore
