/// Everything a session needs to reach and log in to one SMTP server.
///
/// The password is a closure, called only at the moment of authentication (and never
/// when `authentication` is `.none`), so a sealed secret is opened as late as possible.
/// The OAuth 2.0 access token likewise (`accessToken`), called only for XOAUTH2 or
/// OAUTHBEARER.
///
/// ```swift
/// var settings = SmtpSettings(host: "smtp.example.com", port: 587, security: .startTLSRequired)
/// settings.authentication = .auto
/// settings.username = "app@example.com"
/// settings.password = { try secrets.open("smtp_password") }
/// settings.senderAddress = "app@example.com"
///
/// // OAuth 2.0 (Microsoft 365, Google): the user name is the mailbox the token sends as.
/// settings.authentication = .xoauth2
/// settings.accessToken = { try tokenCache.currentAccessToken() }
/// ```
public struct SmtpSettings: Sendable {
    /// How the connection is protected.
    public enum Security: String, Sendable, Codable, CaseIterable {
        /// Plain SMTP, never TLS.
        case none
        /// STARTTLS when the server offers it, else plain (stored `None`).
        case startTLSOpportunistic = "starttls-opportunistic"
        /// STARTTLS or nothing: stops before AUTH when it is not offered or fails (stored `STARTTLS`).
        case startTLSRequired = "starttls"
        /// TLS from the first byte, usually port 465 (stored `SSL`/`TLS`).
        case implicitTLS = "ssl"
    }

    /// Which AUTH mechanism to use.
    public enum Authentication: String, Sendable, Codable, CaseIterable {
        /// No AUTH.
        case none
        /// AUTH PLAIN (RFC 4616): cleartext, needs TLS unless `allowCleartextAuthentication`.
        case plain
        /// AUTH LOGIN: cleartext, needs TLS unless `allowCleartextAuthentication`.
        case login
        /// AUTH CRAM-MD5 (RFC 2195): the password never crosses the wire.
        case cramMD5 = "cram-md5"
        /// AUTH XOAUTH2 (Google, Microsoft): the user name and an OAuth 2.0 access token
        /// from `accessToken`. The token is a bearer credential: needs TLS unless
        /// `allowCleartextAuthentication`.
        case xoauth2
        /// AUTH OAUTHBEARER (RFC 7628): the standard form of XOAUTH2, same token, same rule on TLS.
        case oauthBearer = "oauthbearer"
        /// With an `accessToken` source: OAUTHBEARER > XOAUTH2 when the server offers one.
        /// Otherwise the strongest password mechanism the server offers: CRAM-MD5 > PLAIN >
        /// LOGIN, never a cleartext mechanism without TLS unless `allowCleartextAuthentication`.
        case auto
    }

    /// How the server certificate is checked.
    public enum Verification: Sendable, Equatable {
        /// Chain to the system CA store (plus `extraCAPEM`) and the host name or IP.
        case full
        /// The SHA-256 of the leaf certificate's DER equals this (64 hex digits); no chain check.
        case pinned(sha256: String)
        /// No check at all (encryption without authentication of the server).
        case none
    }

    /// Host name, IPv4 or IPv6 literal (with or without brackets). The client connects
    /// to its canonical form (``HostName/ascii``) and refuses what ``HostName`` refuses.
    public var host: String
    /// TCP port, 1–65535.
    public var port: Int
    /// Plain, STARTTLS (opportunistic or required) or implicit TLS.
    public var security: Security
    /// AUTH mechanism.
    public var authentication: Authentication = .none
    /// Login name (UTF-8); no CR, LF or NUL.
    public var username: String = ""
    /// Called once, when AUTH needs the password.
    public var password: @Sendable () throws -> String = { "" }
    /// The OAuth 2.0 access token source; nil means none. Called once, at AUTH, only for
    /// XOAUTH2 or OAUTHBEARER. A thrown ``SmtpError`` (stage `.oauth` from a token
    /// endpoint, say) is rethrown with the session's transcript; any other error becomes
    /// stage `.oauth`, kind `.protocol`.
    public var accessToken: (@Sendable () throws -> String)?
    /// Certificate check.
    public var verification: Verification = .full
    /// Extra trusted CA certificates (PEM), for full verification.
    public var extraCAPEM: String?
    /// The sender address; its domain is the default EHLO name.
    public var senderAddress: String?
    /// EHLO name; default: the sender's domain, else the machine's host name.
    public var ehloName: String?
    /// Seconds for each connection attempt (each address of the host).
    public var connectTimeout: Double = 10
    /// Seconds for each command's reply (and the TLS handshake).
    public var commandTimeout: Double = 30
    /// Seconds for a whole session (connect to QUIT); on a reused connection, for the
    /// set-up and then for each message.
    public var sessionTimeout: Double = 120
    /// Allows PLAIN and LOGIN over a connection without TLS. Off by default.
    public var allowCleartextAuthentication = false
    /// Ends the session at once when the caller goes away (see ``SessionAbort``).
    public var abort: SessionAbort?
    /// Told each step as the session begins it (see ``SmtpProgress``); nil: nobody watches.
    public var progress: SmtpProgress?
    /// Set when `sessionTimeout` was lowered to a limit of the caller's (e.g. the
    /// responder's `smtp_session_limit`): the timeout hint names it, so a person
    /// knows which setting stopped the session.
    public var sessionLimitName: String?
    /// Destinations never connected to: every address the host resolves to is checked
    /// after resolution, and one inside these networks is skipped; when none is left
    /// the session fails at `.connect` with kind `.invalidInput`. Empty by default.
    public var deniedNetworks: [IPNetwork] = []
    /// Addresses to connect to instead of resolving `host` with the system resolver
    /// (discovery resolves with its own DNS servers); `host` stays what is verified and
    /// sent as SNI and EHLO context. Nil (the default) resolves `host`.
    public var connectAddresses: [String]?

    /// Makes settings with the defaults of DESIGN.md (timeouts 10 s / 30 s, full verification).
    public init(host: String, port: Int, security: Security) {
        self.host = host
        self.port = port
        self.security = security
    }

    /// Makes settings from parsed values (what a settings form validated): the host in
    /// the form the client connects to, the port already known to be in range.
    public init(host: HostName, port: PortNumber, security: Security) {
        self.init(host: host.ascii, port: Int(port.value), security: security)
    }

    /// The EHLO name to use: `ehloName`, else the sender's ASCII domain, else the host name.
    public var effectiveEHLOName: String {
        if let name = ehloName, !name.isEmpty { return name }
        if let sender = senderAddress, let at = sender.lastIndex(of: "@") {
            let domain = String(sender[sender.index(after: at)...])
            if !domain.isEmpty, domain.utf8.allSatisfy({ $0 < 0x80 && $0 > 0x20 }) { return domain }
        }
        return SocketStream.machineHostName() ?? "localhost"
    }
}

// The stored values of DESIGN.md's `information` table, mapped in one place.
extension SmtpSettings.Security {
    /// From `smtp_connection_type`: `None` (STARTTLS if offered), `STARTTLS` (required),
    /// `SSL` or `TLS` (implicit TLS). Case-insensitive; nil for anything else.
    ///
    /// ```swift
    /// let security = SmtpSettings.Security(storedValue: "STARTTLS")   // .startTLSRequired
    /// ```
    public init?(storedValue: String) {
        switch storedValue.lowercased() {
        case "none": self = .startTLSOpportunistic
        case "starttls": self = .startTLSRequired
        case "ssl", "tls": self = .implicitTLS
        default: return nil
        }
    }
}

extension SmtpSettings.Authentication {
    /// From `smtp_authentication_type`: `None`, `Plain`, `Login`, `Cram_MD5`, `XOAUTH2`,
    /// `OAUTHBEARER`, `Auto`. Case-insensitive; nil for anything else.
    public init?(storedValue: String) {
        switch storedValue.lowercased() {
        case "none": self = .none
        case "plain": self = .plain
        case "login": self = .login
        case "cram_md5", "cram-md5": self = .cramMD5
        case "xoauth2": self = .xoauth2
        case "oauthbearer": self = .oauthBearer
        case "auto": self = .auto
        default: return nil
        }
    }
}

extension SmtpSettings.Verification {
    /// From `smtp_tls_verify` (`Full`, `Pinned`, `None`) and `smtp_tls_pin_sha256`.
    /// Nil for an unknown mode, or `Pinned` without a 64-hex-digit pin.
    public init?(storedValue: String, pin: String) {
        switch storedValue.lowercased() {
        case "full": self = .full
        case "none": self = .none
        case "pinned":
            guard let normalized = SmtpClient.normalizedPin(pin) else { return nil }
            self = .pinned(sha256: normalized)
        default: return nil
        }
    }
}
