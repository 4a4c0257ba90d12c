import Smtp

/// The SMTP settings as one typed value: the sender as an ``EmailAddress``, the server
/// as a ``HostName``, the port as a ``PortNumber``, the enumerations as the Smtp
/// module's own types. Built by the validator from a submission and by
/// ``init(stored:)`` from the `information` table; ``smtpSettings(deniedNetworks:openPassword:)``
/// hands it to the SMTP client. Nothing between parses the port again.
struct EmailSettings: Sendable {
    /// The sender, as saved (the text the validator accepted) and parsed.
    var fromText: String
    var fromAddress: EmailAddress
    var host: HostName
    var port: PortNumber
    /// The stored spelling (`None`, `STARTTLS`, `SSL`, `TLS`) and what it means.
    var connectionType: String
    var security: SmtpSettings.Security
    var authentication: SmtpSettings.Authentication
    var username: String
    var verification: SmtpSettings.Verification
    var extraCAPEM: String?
    var connectTimeout: Int
    var commandTimeout: Int

    /// Why stored settings cannot be used for a session: never saved, or a value that
    /// no longer parses (written by hand or by an older version). Answered 409 by the
    /// API and exit 2 by the CLI, naming the field.
    struct Incomplete: Error, Sendable, Equatable {
        var field: String
        var message: String
    }

    /// Reads the stored values (absent = default). Every value is checked with the
    /// same types the validator uses; one that does not parse is an `Incomplete`
    /// naming the field, never silently replaced by a default.
    init(stored values: [String: String]) throws(Incomplete) {
        func value(_ key: SettingsKey) -> String { values[key.rawValue] ?? key.defaultValue ?? "" }
        func corrupt(_ key: SettingsKey, _ text: String) -> Incomplete {
            Incomplete(field: key.rawValue, message: "The saved \(SettingsSchema.label(key)) “\(text.prefix(80))” is not valid; save the settings again.")
        }
        let host = value(.host)
        guard !host.isEmpty else { throw Incomplete(field: SettingsKey.host.rawValue, message: "No SMTP server is saved yet; save the settings first.") }
        let from = value(.fromAddress)
        guard !from.isEmpty else { throw Incomplete(field: SettingsKey.fromAddress.rawValue, message: "No sender address is saved yet; save the settings first.") }
        guard let parsedHost = try? HostName(host) else { throw corrupt(.host, host) }
        guard let parsedFrom = try? EmailAddress(from) else { throw corrupt(.fromAddress, from) }
        guard let port = try? PortNumber(parsing: value(.port)) else { throw corrupt(.port, value(.port)) }
        guard let security = SmtpSettings.Security(storedValue: value(.connectionType)) else { throw corrupt(.connectionType, value(.connectionType)) }
        guard let authentication = SmtpSettings.Authentication(storedValue: value(.authenticationType)) else {
            throw corrupt(.authenticationType, value(.authenticationType))
        }
        guard let verification = SmtpSettings.Verification(storedValue: value(.tlsVerify), pin: value(.tlsPinSHA256)) else {
            throw value(.tlsVerify).lowercased() == "pinned" ? corrupt(.tlsPinSHA256, value(.tlsPinSHA256)) : corrupt(.tlsVerify, value(.tlsVerify))
        }
        func seconds(_ key: SettingsKey) throws(Incomplete) -> Int {
            guard let t = Int(value(key)), SettingsSchema.field(key)?.range?.contains(t) ?? true else { throw corrupt(key, value(key)) }
            return t
        }
        self.fromText = from
        self.fromAddress = parsedFrom
        self.host = parsedHost
        self.port = port
        self.connectionType = value(.connectionType)
        self.security = security
        self.authentication = authentication
        self.username = value(.username)
        self.verification = verification
        let ca = value(.tlsCAPEM)
        self.extraCAPEM = ca.isEmpty ? nil : ca
        self.connectTimeout = try seconds(.connectTimeout)
        self.commandTimeout = try seconds(.commandTimeout)
    }

    /// The whole-session deadline: connect plus a few commands, capped below nginx's
    /// `fastcgi_read_timeout` (180 s) so the browser always gets our answer.
    static func sessionDeadline(connect: Double, command: Double) -> Double {
        min(connect + 4 * command, 170)
    }

    /// The settings for one SMTP session. The password is not opened here:
    /// `openPassword` is called by the SMTP client only when it authenticates.
    /// - Parameter deniedNetworks: the responder's `smtp_denied_networks`, refused by the session.
    func smtpSettings(deniedNetworks: [IPNetwork] = [], openPassword: @escaping @Sendable () throws -> String) -> SmtpSettings {
        var settings = SmtpSettings(host: host, port: port, security: security)
        settings.authentication = authentication
        // Choosing Plain or Login by name is the explicit consent to a cleartext
        // mechanism (the save answer warns when no TLS is guaranteed); Auto never
        // picks one without TLS.
        settings.allowCleartextAuthentication = authentication == .plain || authentication == .login
        settings.username = username
        settings.password = openPassword
        settings.verification = verification
        settings.extraCAPEM = extraCAPEM
        settings.senderAddress = fromText
        settings.connectTimeout = Double(connectTimeout)
        settings.commandTimeout = Double(commandTimeout)
        settings.sessionTimeout = Self.sessionDeadline(connect: settings.connectTimeout, command: settings.commandTimeout)
        settings.deniedNetworks = deniedNetworks
        return settings
    }
}
