/// The labels of the `information` table that hold the SMTP settings, with their
/// defaults (DESIGN.md "Storage"). Names are kept from the original system so
/// existing data maps 1:1.
enum SettingsKey: String, CaseIterable, Sendable {
    case fromAddress = "from_address"
    case username = "smtp_username"
    case password = "smtp_password"
    case host = "smtp_host"
    case port = "smtp_port"
    case connectionType = "smtp_connection_type"
    case authenticationType = "smtp_authentication_type"
    case tlsVerify = "smtp_tls_verify"
    case tlsPinSHA256 = "smtp_tls_pin_sha256"
    case tlsCAPEM = "smtp_tls_ca_pem"
    case connectTimeout = "smtp_connect_timeout"
    case commandTimeout = "smtp_command_timeout"
    case settingsVersion = "smtp_settings_version"
    // OAuth 2.0 sign-in (DESIGN.md "OAuth 2.0"): what the administrator enters.
    case oauthProvider = "oauth_provider"
    case oauthGrant = "oauth_grant"
    case oauthTenant = "oauth_tenant"
    case oauthClientID = "oauth_client_id"
    case oauthClientSecret = "oauth_client_secret"
    case oauthScope = "oauth_scope"
    case oauthAuthorizationEndpoint = "oauth_authorization_endpoint"
    case oauthTokenEndpoint = "oauth_token_endpoint"
    case oauthDeviceEndpoint = "oauth_device_endpoint"
    case oauthRevocationEndpoint = "oauth_revocation_endpoint"

    /// The value a key has before anyone saved it (``SettingsSchema``); nil for the required ones.
    var defaultValue: String? {
        self == .settingsVersion ? "0" : SettingsSchema.field(self)?.defaultValue
    }

    /// Keys a client may write with POST email_smtp (the version is the server's).
    static let writable: [SettingsKey] = allCases.filter { $0 != .settingsVersion }

    /// Secrets: sent encrypted (RSA-OAEP with a nonce), stored sealed, never returned.
    static let secrets: [SettingsKey] = [.password, .oauthClientSecret]

    /// Keys stored as they are (everything but the secrets and the version).
    static let plain: [SettingsKey] = allCases.filter { $0 != .settingsVersion && !secrets.contains($0) }

    /// Fields a client may send back from a GET answer; they are ignored on POST.
    static let readOnlyFields: Set<String> = [
        "smtp_settings_version", "smtp_password_set", "last_known_good_version", "oauth_client_secret_set",
        "oauth_account", "oauth_signed_in_at", "oauth_redirect_uri", "oauth_default_scope", "unchanged",
        "smtp_host_unicode",  // the saved host for people (U-labels of an IDN)
    ]

    /// The sign-in state the OAuth flow writes (never by a save, never in history):
    /// the sealed refresh token, who signed in, and when.
    enum SignIn {
        static let refreshToken = "oauth_refresh_token"
        static let account = "oauth_account"
        static let signedInAt = "oauth_signed_in_at"
        static let labels = [refreshToken, account, signedInAt]
    }

    /// Keys whose change makes a stored sign-in (refresh token) belong to another
    /// application or tenant: a save that changes one of them forgets the sign-in.
    static let signInIdentity: [SettingsKey] = [.oauthProvider, .oauthTenant, .oauthClientID, .oauthTokenEndpoint]
}

/// The accepted spellings of the enumerated settings (from ``SettingsSchema``),
/// mapped to the stored form.
enum SettingsEnumerations {
    static let connectionTypes = accepted(.connectionType)
    static let authenticationTypes = accepted(.authenticationType)
    static let oauthProviders = accepted(.oauthProvider)
    static let oauthGrants = accepted(.oauthGrant)
    /// The sign-in methods that use an OAuth 2.0 access token.
    static let oauthAuthenticationTypes: Set<String> = ["XOAUTH2", "OAUTHBEARER"]
    static let tlsVerifyModes = accepted(.tlsVerify)

    private static func accepted(_ key: SettingsKey) -> [String] { SettingsSchema.field(key)?.acceptedValues ?? [] }

    /// The canonical spelling of `value` among `allowed`, ignoring case and
    /// treating "-" like "_" (so "cram-md5" is "Cram_MD5"); nil if not allowed.
    static func canonical(_ value: String, in allowed: [String]) -> String? {
        let folded = value.lowercased().replacing("-", with: "_")
        return allowed.first { $0.lowercased() == folded }
    }
}
