import Smtp

/// Turns the stored settings (the `information` labels) into the Smtp module's
/// `SmtpSettings`. The password is not opened here: `openPassword` is called by
/// the SMTP client only at the moment it authenticates.
enum SmtpSettingsMapper {
    /// Why stored settings cannot be used for a session (e.g. never saved).
    struct Incomplete: Error {
        var field: String
        var message: String
    }

    /// The whole-session deadline: connect plus a few commands, capped below nginx's
    /// `fastcgi_read_timeout` (180 s) so the browser always gets our answer.
    static func sessionDeadline(connect: Double, command: Double) -> Double {
        min(connect + 4 * command, 170)
    }

    /// - Parameter deniedNetworks: the responder's `smtp_denied_networks`, refused by the session.
    static func smtpSettings(from values: [String: String], deniedNetworks: [IPNetwork] = [],
                             openPassword: @escaping @Sendable () throws -> String) throws -> SmtpSettings {
        func value(_ key: SettingsKey) -> String { values[key.rawValue] ?? key.defaultValue ?? "" }
        let host = value(.host)
        guard !host.isEmpty else { throw Incomplete(field: SettingsKey.host.rawValue, message: "No SMTP server is saved yet; save the settings first.") }
        let from = value(.fromAddress)
        guard !from.isEmpty else { throw Incomplete(field: SettingsKey.fromAddress.rawValue, message: "No sender address is saved yet; save the settings first.") }

        let security: SmtpSettings.Security
        switch value(.connectionType) {
        case "STARTTLS": security = .startTLSRequired
        case "SSL", "TLS": security = .implicitTLS
        default: security = .startTLSOpportunistic
        }
        var settings = SmtpSettings(host: host, port: Int(value(.port)) ?? 25, security: security)
        switch value(.authenticationType) {
        case "Plain": settings.authentication = .plain
        case "Login": settings.authentication = .login
        case "Cram_MD5": settings.authentication = .cramMD5
        case "Auto": settings.authentication = .auto
        // The token source is set by the caller, which knows where tokens are cached.
        case "XOAUTH2": settings.authentication = .xoauth2
        case "OAUTHBEARER": settings.authentication = .oauthBearer
        default: settings.authentication = .none
        }
        // Choosing Plain or Login by name is the explicit consent to a cleartext
        // mechanism (the save answer warns when no TLS is guaranteed); Auto never
        // picks one without TLS.
        settings.allowCleartextAuthentication = settings.authentication == .plain || settings.authentication == .login
        settings.username = value(.username)
        settings.password = openPassword
        switch value(.tlsVerify) {
        case "Pinned": settings.verification = .pinned(sha256: value(.tlsPinSHA256))
        case "None": settings.verification = .none
        default: settings.verification = .full
        }
        let ca = value(.tlsCAPEM)
        settings.extraCAPEM = ca.isEmpty ? nil : ca
        settings.senderAddress = from
        settings.connectTimeout = Double(value(.connectTimeout)) ?? 10
        settings.commandTimeout = Double(value(.commandTimeout)) ?? 30
        settings.sessionTimeout = sessionDeadline(connect: settings.connectTimeout, command: settings.commandTimeout)
        settings.deniedNetworks = deniedNetworks
        return settings
    }
}
