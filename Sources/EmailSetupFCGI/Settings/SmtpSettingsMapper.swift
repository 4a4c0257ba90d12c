import Smtp

/// Turns the stored settings (the `information` labels) into the Smtp module's
/// `SmtpSettings`, through the typed ``EmailSettings``. The password is not opened
/// here: `openPassword` is called by the SMTP client only at the moment it authenticates.
enum SmtpSettingsMapper {
    /// Why stored settings cannot be used for a session (never saved, or a saved value
    /// that does not parse).
    typealias Incomplete = EmailSettings.Incomplete

    /// The whole-session deadline (``EmailSettings/sessionDeadline(connect:command:)``).
    static func sessionDeadline(connect: Double, command: Double) -> Double {
        EmailSettings.sessionDeadline(connect: connect, command: command)
    }

    /// - Parameter deniedNetworks: the responder's `smtp_denied_networks`, refused by the session.
    /// - Throws: ``Incomplete`` naming the field that is missing or no longer valid.
    static func smtpSettings(from values: [String: String], deniedNetworks: [IPNetwork] = [],
                             openPassword: @escaping @Sendable () throws -> String) throws(Incomplete) -> SmtpSettings {
        try EmailSettings(stored: values).smtpSettings(deniedNetworks: deniedNetworks, openPassword: openPassword)
    }
}
