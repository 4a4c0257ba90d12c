import Smtp

/// Where a candidate or a finding came from.
public enum DiscoverySource: String, Sendable, Codable {
    /// RFC 6186/8314 SRV records.
    case srv
    /// A Thunderbird autoconfig document.
    case autoconfig
    /// The MX host's provider, recognised.
    case mx
    /// A guessed host name (`smtp.<domain>`, `mail.<domain>`) on the usual ports.
    case probe

    var rank: Int {
        switch self {
        case .srv: return 0
        case .autoconfig: return 1
        case .mx: return 2
        case .probe: return 3
        }
    }
}

/// One source tried: what was asked, what it gave, or why it gave nothing.
public struct SourceResult: Sendable, Equatable, Encodable {
    /// The kind of source.
    public var source: DiscoverySource
    /// What was asked ("SRV _submissions._tcp.example.org", the autoconfig URL, …).
    public var tried: String
    /// What it gave, one line each ("smtp.example.org:465 SSL/TLS").
    public var found: [String]
    /// Why it gave nothing usable, or nil ("no such record" is not an error: `found` is empty).
    public var error: String?
}

/// What a probe of one candidate verified.
public struct Verification: Sendable, Equatable, Encodable {
    /// The server greeted (220) and answered EHLO.
    public var greeting: Bool
    /// TLS was negotiated (implicit or STARTTLS).
    public var tls: Bool
    /// The certificate is valid for the host (chain, name, dates); nil without TLS.
    public var certificateValid: Bool?
    /// AUTH mechanisms offered (after TLS), upper-cased.
    public var authMechanisms: [String]
    /// Why the probe failed, when it did.
    public var error: String?
    /// The certificate's SHA-256 when TLS was reached (the pin for an invalid one).
    public var certificateSHA256: String?

    private enum CodingKeys: String, CodingKey {
        case greeting, tls, certificateValid = "certificate_valid", authMechanisms = "auth_mechanisms", error
        case certificateSHA256 = "certificate_sha256"
    }

    /// Nothing verified yet (not probed).
    public static let none = Verification(greeting: false, tls: false, certificateValid: nil, authMechanisms: [], error: nil)
}

/// A host, port and connection security to try, with what a source says about sign-in.
public struct Candidate: Sendable, Equatable, Encodable {
    /// The host name (ASCII).
    public var host: String
    /// The port.
    public var port: Int
    /// `.implicitTLS`, `.startTLSRequired` or `.none` (plain).
    public var security: SmtpSettings.Security
    /// The stored sign-in method proposed for it (`Auto`, `XOAUTH2`, `None`…).
    public var authentication: String
    /// The user name a source gave (expanded), if any.
    public var username: String?
    /// `oauth_provider` when the source knows it.
    public var oauthProvider: String?
    /// Where it came from.
    public var source: DiscoverySource
    /// What probing verified.
    public var verified: Verification

    /// `SSL`, `STARTTLS` or `None`: the stored `smtp_connection_type`.
    public var connectionType: String {
        switch security {
        case .implicitTLS: return "SSL"
        case .startTLSRequired: return "STARTTLS"
        case .none, .startTLSOpportunistic: return "None"
        }
    }

    /// "smtp.example.org:465 SSL/TLS".
    public var label: String {
        "\(host):\(port) " + (security == .implicitTLS ? "SSL/TLS" : security == .startTLSRequired ? "STARTTLS" : "without encryption")
    }

    /// True when a probe confirmed it works (TLS with a valid or pinned certificate, or plain SMTP).
    public var usable: Bool { verified.greeting && verified.error == nil }

    private enum CodingKeys: String, CodingKey {
        case host, port, smtpConnectionType = "smtp_connection_type", smtpAuthenticationType = "smtp_authentication_type"
        case verified, source, username = "smtp_username"
    }

    /// `{host, port, smtp_connection_type, smtp_authentication_type, smtp_username?, verified, source}`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(host, forKey: .host)
        try c.encode(port, forKey: .port)
        try c.encode(connectionType, forKey: .smtpConnectionType)
        try c.encode(authentication, forKey: .smtpAuthenticationType)
        try c.encodeIfPresent(username, forKey: .username)
        try c.encode(verified, forKey: .verified)
        try c.encode(source, forKey: .source)
    }
}

/// The settings discovery proposes: the form's fields, never saved by discovery.
public struct Proposal: Sendable, Equatable, Encodable {
    /// `smtp_host`.
    public var host: String
    /// `smtp_port`.
    public var port: Int
    /// `smtp_connection_type`: `SSL`, `STARTTLS`, `None`.
    public var connectionType: String
    /// `smtp_authentication_type`.
    public var authentication: String
    /// `smtp_tls_verify`: `Full`, or `Pinned` when the certificate is not valid for the host.
    public var tlsVerify: String
    /// `smtp_tls_pin_sha256` with `Pinned`.
    public var pin: String?
    /// `smtp_username`, when known.
    public var username: String?
    /// `oauth_provider` when the sign-in is OAuth and the provider is known.
    public var oauthProvider: String?

    private enum CodingKeys: String, CodingKey {
        case host = "smtp_host", port = "smtp_port", connectionType = "smtp_connection_type"
        case authentication = "smtp_authentication_type", tlsVerify = "smtp_tls_verify", pin = "smtp_tls_pin_sha256"
        case username = "smtp_username", oauthProvider = "oauth_provider"
    }

    /// The form's keys; absent ones left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(host, forKey: .host)
        try c.encode(port, forKey: .port)
        try c.encode(connectionType, forKey: .connectionType)
        try c.encode(authentication, forKey: .authentication)
        try c.encode(tlsVerify, forKey: .tlsVerify)
        try c.encodeIfPresent(pin, forKey: .pin)
        try c.encodeIfPresent(username, forKey: .username)
        try c.encodeIfPresent(oauthProvider, forKey: .oauthProvider)
    }
}

/// The answer of a discovery: every source tried, every candidate with what was
/// verified, and the best verified combination (or nil, with the reason in `explanation`).
public struct DiscoveryReport: Sendable, Equatable, Encodable {
    /// The address as given (ASCII domain).
    public var address: String
    /// Its domain (ASCII).
    public var domain: String
    /// Milliseconds the discovery took.
    public var elapsedMilliseconds: Int
    /// Each source tried.
    public var sources: [SourceResult]
    /// Each candidate, best first.
    public var candidates: [Candidate]
    /// The best verified combination, or nil.
    public var proposal: Proposal?
    /// One or two sentences a person can act on.
    public var explanation: String

    private enum CodingKeys: String, CodingKey {
        case address, domain, elapsedMilliseconds = "elapsed_ms", sources, candidates, proposal, explanation
    }

    /// The HTTP answer's `data` object; `proposal` is null when nothing was verified.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(address, forKey: .address)
        try c.encode(domain, forKey: .domain)
        try c.encode(elapsedMilliseconds, forKey: .elapsedMilliseconds)
        try c.encode(sources, forKey: .sources)
        try c.encode(candidates, forKey: .candidates)
        try c.encode(proposal, forKey: .proposal)
        try c.encode(explanation, forKey: .explanation)
    }
}
