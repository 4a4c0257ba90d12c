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

    /// The value a key has before anyone saved it; nil for the required ones.
    var defaultValue: String? {
        switch self {
        case .fromAddress, .host: return nil
        case .username, .password, .tlsPinSHA256, .tlsCAPEM: return ""
        case .port: return "25"
        case .connectionType: return "None"
        case .authenticationType: return "None"
        case .tlsVerify: return "Full"
        case .connectTimeout: return "10"
        case .commandTimeout: return "30"
        case .settingsVersion: return "0"
        }
    }

    /// Keys a client may write with POST email_smtp (the version is the server's).
    static let writable: [SettingsKey] = allCases.filter { $0 != .settingsVersion }

    /// Keys stored as they are (everything but the password and the version).
    static let plain: [SettingsKey] = allCases.filter { $0 != .settingsVersion && $0 != .password }

    /// Fields a client may send back from a GET answer; they are ignored on POST.
    /// `smtp_host_unicode` is the saved host for people (U-labels of an IDN).
    static let readOnlyFields: Set<String> = ["smtp_settings_version", "smtp_password_set", "last_known_good_version", "smtp_host_unicode"]
}

/// The accepted spellings of the enumerated settings, mapped to the stored form.
enum SettingsEnumerations {
    static let connectionTypes = ["None", "STARTTLS", "SSL", "TLS"]
    static let authenticationTypes = ["None", "Plain", "Login", "Cram_MD5", "Auto"]
    static let tlsVerifyModes = ["Full", "Pinned", "None"]

    /// The canonical spelling of `value` among `allowed`, ignoring case and
    /// treating "-" like "_" (so "cram-md5" is "Cram_MD5"); nil if not allowed.
    static func canonical(_ value: String, in allowed: [String]) -> String? {
        let folded = value.lowercased().replacingOccurrences(of: "-", with: "_")
        return allowed.first { $0.lowercased() == folded }
    }
}
