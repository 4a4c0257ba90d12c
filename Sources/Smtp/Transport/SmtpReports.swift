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

/// What the server announced in its EHLO reply (RFC 5321 4.1.1.1).
public struct SmtpCapabilities: Sendable, Equatable, Encodable {
    /// Keyword (upper-cased) → parameters, e.g. "SIZE" → "35882577", "AUTH" → "PLAIN LOGIN".
    public var keywords: [String: String] = [:]
    /// False when the server refused EHLO and the client fell back to HELO.
    public var extended = true

    /// Makes capabilities from EHLO reply lines (the first line is the greeting).
    public init(ehloLines: [String] = []) {
        for line in ehloLines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let keyword = parts.first else { continue }
            let key = keyword.uppercased()
            let value = parts.count > 1 ? String(parts[1]) : ""
            // "AUTH=LOGIN PLAIN" (old syntax) adds to AUTH.
            if key.hasPrefix("AUTH=") {
                let mechanisms = String(key.dropFirst(5)) + (value.isEmpty ? "" : " " + value)
                keywords["AUTH"] = ((keywords["AUTH"].map { $0 + " " } ?? "") + mechanisms)
            } else if key == "AUTH", let existing = keywords["AUTH"] {
                keywords["AUTH"] = existing + " " + value
            } else {
                keywords[key] = value
            }
        }
    }

    /// PIPELINING (RFC 2920).
    public var pipelining: Bool { keywords["PIPELINING"] != nil }
    /// STARTTLS (RFC 3207).
    public var startTLS: Bool { keywords["STARTTLS"] != nil }
    /// SMTPUTF8 (RFC 6531).
    public var smtpUTF8: Bool { keywords["SMTPUTF8"] != nil }
    /// 8BITMIME (RFC 6152).
    public var eightBitMIME: Bool { keywords["8BITMIME"] != nil }
    /// ENHANCEDSTATUSCODES (RFC 2034).
    public var enhancedStatusCodes: Bool { keywords["ENHANCEDSTATUSCODES"] != nil }
    /// The SIZE limit in bytes (RFC 1870); nil when absent or 0 (no limit).
    public var maximumSize: Int? {
        guard let value = keywords["SIZE"], let size = Int(value.trimmingWhitespace()), size > 0 else { return nil }
        return size
    }
    /// AUTH mechanisms offered, upper-cased, in the server's order.
    public var authMechanisms: [String] {
        var seen: [String] = []
        for mechanism in (keywords["AUTH"] ?? "").split(separator: " ").map({ $0.uppercased() }) where !seen.contains(mechanism) {
            seen.append(mechanism)
        }
        return seen
    }

    private enum CodingKeys: String, CodingKey {
        case keywords, extended, pipelining, startTLS = "starttls", smtpUTF8 = "smtputf8", eightBitMIME = "8bitmime"
        case enhancedStatusCodes = "enhancedstatuscodes", maximumSize = "size", authMechanisms = "auth"
    }

    /// Encodes the keywords and the parsed extensions.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(keywords, forKey: .keywords)
        try c.encode(extended, forKey: .extended)
        try c.encode(pipelining, forKey: .pipelining)
        try c.encode(startTLS, forKey: .startTLS)
        try c.encode(smtpUTF8, forKey: .smtpUTF8)
        try c.encode(eightBitMIME, forKey: .eightBitMIME)
        try c.encode(enhancedStatusCodes, forKey: .enhancedStatusCodes)
        try c.encode(maximumSize, forKey: .maximumSize)
        try c.encode(authMechanisms, forKey: .authMechanisms)
    }
}

/// What is known about the server once a session is set up.
public struct SmtpServerInfo: Sendable, Encodable {
    /// The address actually connected to ("192.0.2.1", "2001:db8::1").
    public var remoteAddress: String
    /// The greeting's text.
    public var greeting: String
    /// The capabilities of the last EHLO (after STARTTLS, when used).
    public var capabilities: SmtpCapabilities
    /// The leaf certificate, when TLS is in use.
    public var certificate: SmtpCertificate?
    /// "TLSv1.3", when TLS is in use.
    public var tlsVersion: String?
    /// The negotiated cipher, when TLS is in use.
    public var cipher: String?
    /// The AUTH mechanism that succeeded, if any ("CRAM-MD5").
    public var authMechanism: String?

    private enum CodingKeys: String, CodingKey {
        case remoteAddress = "remote_address", greeting, capabilities, certificate
        case tlsVersion = "tls_version", cipher, authMechanism = "auth_mechanism"
    }
}

/// The outcome for one recipient of a message.
public struct SmtpRecipientOutcome: Sendable, Encodable {
    /// The envelope address.
    public var address: String
    /// True when the server accepted the RCPT and the message was delivered to it.
    public var delivered: Bool
    /// Why not, when not.
    public var error: SmtpError?

    private enum CodingKeys: String, CodingKey { case address, delivered, error }
}

/// The result of a successful `send`: the server took the message for at least one
/// recipient (see `recipients` for any it refused).
public struct SmtpDeliveryReport: Sendable, Encodable {
    /// Each envelope recipient's outcome, in envelope order.
    public var recipients: [SmtpRecipientOutcome]
    /// The reply to the end of data, e.g. "250 2.0.0 Ok: queued as 4Xy…".
    public var reply: SmtpReply
    /// Bytes sent as message content (after CRLF normalisation and dot-stuffing).
    public var bytesSent: Int
    /// Milliseconds per stage ("connect", "tls", "ehlo", "auth", "mail", "rcpt", "data", …).
    public var timingsMilliseconds: [String: Double]
    /// The conversation of this message (and of the set-up, for the first message).
    public var transcript: SmtpTranscript
    /// Server, TLS and capabilities.
    public var server: SmtpServerInfo

    /// True when every recipient was delivered.
    public var allDelivered: Bool { recipients.allSatisfy(\.delivered) }

    private enum CodingKeys: String, CodingKey {
        case recipients, reply, bytesSent = "bytes_sent", timingsMilliseconds = "timings_ms", transcript, server
    }

    /// Encodes the report; the transcript as an array of lines.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(recipients, forKey: .recipients)
        try c.encode("\(reply.code)" + (reply.enhancedCode.map { " " + $0 } ?? "") + " " + reply.text, forKey: .reply)
        try c.encode(bytesSent, forKey: .bytesSent)
        try c.encode(timingsMilliseconds, forKey: .timingsMilliseconds)
        try c.encode(transcript.lines, forKey: .transcript)
        try c.encode(server, forKey: .server)
    }
}

/// The result of a successful `check`: connected, TLS, EHLO, AUTH and QUIT all passed.
public struct SmtpCheckReport: Sendable, Encodable {
    /// Server, TLS and capabilities.
    public var server: SmtpServerInfo
    /// Milliseconds per stage.
    public var timingsMilliseconds: [String: Double]
    /// The conversation, credentials redacted.
    public var transcript: SmtpTranscript

    private enum CodingKeys: String, CodingKey { case server, timingsMilliseconds = "timings_ms", transcript }

    /// Encodes the report; the transcript as an array of lines.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(server, forKey: .server)
        try c.encode(timingsMilliseconds, forKey: .timingsMilliseconds)
        try c.encode(transcript.lines, forKey: .transcript)
    }
}
