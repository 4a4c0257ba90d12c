import Smtp

/// Mail providers recognised by the domain's MX hosts, and the submission settings
/// each documents for its customers. Only providers whose MX names say who they are
/// (and the page's presets) are here; a match is a candidate that is still probed
/// before it is proposed.
public struct KnownProvider: Sendable, Equatable {
    /// "Microsoft 365".
    public var name: String
    /// The submission host.
    public var host: String
    /// Its port.
    public var port: Int
    /// Its connection security.
    public var security: SmtpSettings.Security
    /// The stored sign-in method the provider wants (`XOAUTH2`, `Auto`).
    public var authentication: String
    /// The user name: nil when it is an account-specific login, else a template
    /// (`%EMAILADDRESS%`) or a literal (`apikey`).
    public var username: String?
    /// `oauth_provider` for the form when the sign-in is OAuth (`Microsoft`, `Google`).
    public var oauthProvider: String?

    /// The provider whose MX host `exchange` is, if any.
    public static func recognise(mx exchange: String) -> KnownProvider? {
        let host = exchange.lowercased().trimmingTrailingDot
        func under(_ suffix: String) -> Bool { host == suffix || host.hasSuffix("." + suffix) }
        if under("mail.protection.outlook.com") {
            return KnownProvider(name: "Microsoft 365", host: "smtp.office365.com", port: 587, security: .startTLSRequired,
                                 authentication: "XOAUTH2", username: "%EMAILADDRESS%", oauthProvider: "Microsoft")
        }
        if under("aspmx.l.google.com") || under("googlemail.com") || host == "smtp.google.com" {
            return KnownProvider(name: "Google Workspace", host: "smtp.gmail.com", port: 587, security: .startTLSRequired,
                                 authentication: "XOAUTH2", username: "%EMAILADDRESS%", oauthProvider: "Google")
        }
        // Amazon SES receiving: inbound-smtp.<region>.amazonaws.com → email-smtp.<region>.amazonaws.com.
        if host.hasPrefix("inbound-smtp."), host.hasSuffix(".amazonaws.com") {
            let region = host.dropFirst("inbound-smtp.".count).dropLast(".amazonaws.com".count)
            if !region.isEmpty, !region.contains(".") {
                return KnownProvider(name: "Amazon SES", host: "email-smtp.\(region).amazonaws.com", port: 587,
                                     security: .startTLSRequired, authentication: "Auto", username: nil, oauthProvider: nil)
            }
        }
        if under("sendgrid.net") {
            return KnownProvider(name: "SendGrid", host: "smtp.sendgrid.net", port: 587, security: .startTLSRequired,
                                 authentication: "Auto", username: "apikey", oauthProvider: nil)
        }
        if under("eu.mailgun.org") {
            return KnownProvider(name: "Mailgun (EU)", host: "smtp.eu.mailgun.org", port: 587, security: .startTLSRequired,
                                 authentication: "Auto", username: nil, oauthProvider: nil)
        }
        if under("mailgun.org") {
            return KnownProvider(name: "Mailgun", host: "smtp.mailgun.org", port: 587, security: .startTLSRequired,
                                 authentication: "Auto", username: nil, oauthProvider: nil)
        }
        return nil
    }
}

extension String {
    var trimmingTrailingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}
