import Storage

/// The saved settings as the API sees them: every stored label and the version.
struct SettingsSnapshot: Sendable, Equatable {
    var values: [String: String]
    var version: Int
}

/// Where the settings live. The production conformance is Storage's
/// `SettingsStore` (one per worker thread); unit tests use an in-memory one.
/// Implementations throw `StorageError` (`.unavailable` → 503, `.conflict` → 409).
protocol SettingsRepository: AnyObject {
    /// One consistent read of all settings and their version.
    func loadSettings() throws -> SettingsSnapshot
    /// Saves all `values` atomically if the stored version still equals
    /// `expectedVersion` (nil: any); returns the new version.
    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> Int
}

/// Opens the browser's RSA-OAEP ciphertext and seals the password for storage.
/// Implemented over Storage's secret keyring.
protocol PasswordVault: AnyObject {
    /// The RSA public key (SPKI PEM) browsers and curl users encrypt with.
    var publicKeyPEM: String { get }
    /// Decrypts base64 RSA-OAEP-SHA-256 ciphertext and seals it for storage.
    func sealTransportCiphertext(_ base64: String) throws -> String
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
    var admins: Set<String> = []
}
