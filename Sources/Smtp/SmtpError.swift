#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one error type of the `Smtp` module: where a session failed (`stage`), how
/// (`kind`), what the server said, and a one-line `hint` a person can act on.
///
/// Transient failures (4xx replies, timeouts) are split from permanent ones (5xx,
/// verification failures), as lettre does, through ``isTransient`` and ``isPermanent``.
/// It encodes to the diagnosis shape of the HTTP API and CLI (`stage`, `kind`, `code`,
/// `enhanced_code`, `reply_text`, `hint`, `certificate`, `transcript`).
///
/// ```swift
/// do {
///     _ = try SmtpClient.check(settings)
/// } catch let error as SmtpError {
///     print(error.stage.rawValue, error.kind.rawValue, error.hint)
/// }
/// ```
public struct SmtpError: Error, Sendable, CustomStringConvertible {
    /// The step of the session that failed.
    public enum Stage: String, Sendable, Codable, CaseIterable {
        /// Resolving the host name.
        case dns
        /// Opening the TCP connection.
        case connect
        /// The TLS handshake and certificate verification (implicit TLS or after STARTTLS).
        case tls
        /// Waiting for the server's 220 greeting.
        case greeting
        /// EHLO (or the HELO fallback).
        case ehlo
        /// The STARTTLS command (offered? accepted?).
        case starttls
        /// AUTH.
        case auth
        /// Getting the OAuth 2.0 access token (the token side: token endpoint, sign-in).
        case oauth
        /// MAIL FROM (and RSET, and local checks of the message before it).
        case mail
        /// RCPT TO.
        case rcpt
        /// DATA, the content and the reply to the end of data.
        case data
        /// QUIT.
        case quit
    }

    /// What went wrong, independent of the stage.
    ///
    /// The kinds of DESIGN.md, plus one: a name that does not resolve is `dns` /
    /// `rejected_permanent`, no route is `connect` / `refused` (the network answered "no").
    /// - `invalid_input`: refused locally before anything reached the wire (CR/LF in an
    ///   address, bad CA PEM, bad pin…), so a caller can answer 400 / exit 2, not 502 / 3.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// No answer within the connect/command timeout or the session deadline.
        case timeout
        /// The connection was actively refused (nothing listens).
        case refused
        /// The certificate failed verification (chain, name, dates, or pin).
        case tlsVerify = "tls_verify"
        /// Encryption could not be set up: the TLS handshake failed (plain text on a TLS
        /// port, old protocol, weak key, closed…), or STARTTLS is required and not offered.
        case tlsHandshake = "tls_handshake"
        /// The server refused the credentials.
        case authRejected = "auth_rejected"
        /// A needed extension or mechanism is missing (AUTH, SMTPUTF8, 8BITMIME…).
        case mechanismUnsupported = "mechanism_unsupported"
        /// A 5xx reply (or a local refusal that retrying cannot fix, such as SIZE).
        case rejectedPermanent = "rejected_permanent"
        /// A 4xx reply: try again later.
        case rejectedTemporary = "rejected_temporary"
        /// The server broke the protocol: garbage, an overlong line, a closed connection.
        case `protocol`
        /// Refused locally before anything reached the wire (bad address, PEM, pin…).
        case invalidInput = "invalid_input"
    }

    /// The step of the session that failed.
    public var stage: Stage
    /// What went wrong.
    public var kind: Kind
    /// The server's reply code (e.g. 535), when a reply caused the failure.
    public var replyCode: Int?
    /// The RFC 3463 enhanced status code (e.g. "5.7.8"), when the server sent one.
    public var enhancedCode: String?
    /// The server's reply text (all lines joined by "\n"), when a reply caused the failure.
    public var replyText: String?
    /// One line a person can act on.
    public var hint: String
    /// For stage `oauth`: the authorization server's error code ("invalid_grant",
    /// "AADSTS7000215"); the API reports it as the diagnosis `code`.
    public var providerCode: String?
    /// The server's certificate, whenever the TLS handshake got that far.
    public var certificate: SmtpCertificate?
    /// The session up to the failure, credentials redacted.
    public var transcript: SmtpTranscript
    /// The lower-level cause (an errno, an OpenSSL error queue), when there is one.
    public var underlying: (any Error)?
    /// Another port or connection security that was tried after the failure and works
    /// (see ``SmtpAdvice``); nil when none was tried or none worked.
    public var suggestion: SmtpSuggestion?

    /// Makes an error; the session fills in the certificate and transcript.
    public init(
        stage: Stage, kind: Kind, replyCode: Int? = nil, enhancedCode: String? = nil,
        replyText: String? = nil, hint: String, certificate: SmtpCertificate? = nil,
        transcript: SmtpTranscript = SmtpTranscript(), underlying: (any Error)? = nil
    ) {
        self.stage = stage
        self.kind = kind
        self.replyCode = replyCode
        self.enhancedCode = enhancedCode
        self.replyText = replyText
        self.hint = hint
        self.certificate = certificate
        self.transcript = transcript
        self.underlying = underlying
    }

    /// True when trying again later may succeed: a 4xx reply, a timeout, a refused
    /// connection (or no route). A name that does not exist (`dns`/`rejected_permanent`)
    /// is permanent: retrying will not create it (a resolver that failed temporarily,
    /// EAI_AGAIN, is `dns`/`timeout`).
    public var isTransient: Bool {
        switch kind {
        case .rejectedTemporary, .timeout, .refused: return true
        default:
            if let code = replyCode { return (400..<500).contains(code) }
            return false
        }
    }

    /// True when trying again unchanged will fail the same way (5xx, verification, input).
    public var isPermanent: Bool { !isTransient }

    /// One line: "SMTP auth failed (auth_rejected): 535 5.7.8 … — credentials rejected (535 5.7.8)".
    public var description: String {
        var text = "SMTP \(stage.rawValue) failed (\(kind.rawValue))"
        if let code = replyCode {
            text += ": \(code)"
            if let enhanced = enhancedCode { text += " \(enhanced)" }
            if let reply = replyText, !reply.isEmpty { text += " \(reply.replacingNewlines())" }
        }
        return text + " — " + hint
    }
}

extension SmtpError: Encodable {
    private enum CodingKeys: String, CodingKey {
        case ok, stage, kind, code, enhancedCode = "enhanced_code", replyText = "reply_text"
        case hint, certificate, transcript, transient, underlying, suggestion
    }

    /// Encodes the diagnosis: `ok` (false), `stage`, `kind`, `code`, `enhanced_code`,
    /// `reply_text`, `hint`, `transient`, `certificate`, `transcript` (array of lines), `underlying`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(false, forKey: .ok)
        try container.encode(stage, forKey: .stage)
        try container.encode(kind, forKey: .kind)
        try container.encode(replyCode, forKey: .code)
        try container.encode(enhancedCode, forKey: .enhancedCode)
        try container.encode(replyText, forKey: .replyText)
        try container.encode(hint, forKey: .hint)
        try container.encode(isTransient, forKey: .transient)
        try container.encode(certificate, forKey: .certificate)
        try container.encode(transcript.lines, forKey: .transcript)
        try container.encodeIfPresent(underlying.map { String(describing: $0) }, forKey: .underlying)
        try container.encodeIfPresent(suggestion, forKey: .suggestion)
    }
}

/// The server certificate as the TLS handshake presented it (the leaf).
public struct SmtpCertificate: Sendable, Equatable, Codable {
    /// Subject distinguished name, RFC 2253 style ("CN=mail.example.org,O=Example").
    public var subject: String
    /// Issuer distinguished name.
    public var issuer: String
    /// Start of validity, ISO 8601 UTC ("2025-01-01T00:00:00Z").
    public var notBefore: String
    /// End of validity, ISO 8601 UTC.
    public var notAfter: String
    /// SHA-256 of the certificate's DER encoding, 64 lowercase hex digits (the pin).
    public var sha256Fingerprint: String
    /// Subject alternative names, e.g. ["DNS:mail.example.org", "IP:192.0.2.1"].
    public var subjectAlternativeNames: [String]

    /// Makes a certificate description.
    public init(subject: String, issuer: String, notBefore: String, notAfter: String, sha256Fingerprint: String, subjectAlternativeNames: [String]) {
        self.subject = subject
        self.issuer = issuer
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.sha256Fingerprint = sha256Fingerprint
        self.subjectAlternativeNames = subjectAlternativeNames
    }

    private enum CodingKeys: String, CodingKey {
        case subject, issuer, notBefore = "not_before", notAfter = "not_after"
        case sha256Fingerprint = "sha256_fingerprint", subjectAlternativeNames = "subject_alt_names"
    }

    /// JSON-ready dictionary with the same keys as the `Codable` form.
    public var dictionary: [String: Any] {
        [
            "subject": subject, "issuer": issuer, "not_before": notBefore, "not_after": notAfter,
            "sha256_fingerprint": sha256Fingerprint, "subject_alt_names": subjectAlternativeNames,
        ]
    }

    /// The DNS names and IP addresses the certificate is valid for, for hints.
    var names: [String] {
        let sans = subjectAlternativeNames.map { san -> String in
            if let colon = san.firstIndex(of: ":") { return String(san[san.index(after: colon)...]) }
            return san
        }
        if !sans.isEmpty { return sans }
        // No SAN: fall back to the subject CN.
        for part in subject.split(separator: ",") where part.hasPrefix("CN=") {
            return [String(part.dropFirst(3))]
        }
        return []
    }
}

extension String {
    func replacingNewlines() -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " / ")
    }
}
