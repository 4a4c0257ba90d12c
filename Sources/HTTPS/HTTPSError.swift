#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one error type of the `HTTPS` module: how a request failed (`kind`, raw values
/// shared with `SmtpError.Kind` and `OAuthError.Kind` where they mean the same), the
/// URL, libcurl's own message and a one-line `hint` a person can act on. Callers
/// (OAuth, Discovery) carry it into their own error type with their own words.
///
/// ```swift
/// do { _ = try HTTPSClient().get(url, accept: "application/xml") }
/// catch { print(error.kind.rawValue, error.hint) }   // error: HTTPSError
/// ```
public struct HTTPSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// No answer within the connect timeout or the deadline.
        case timeout
        /// The connection was actively refused (nothing listens).
        case refused
        /// The host name does not resolve, or no route leads to the host.
        case unreachable
        /// The server's certificate failed verification (chain, name, dates).
        case tlsVerify = "tls_verify"
        /// The TLS handshake failed for another reason (plain text on the port, old protocol…).
        case tlsHandshake = "tls_handshake"
        /// The body is larger than the caller's limit (announced or while reading).
        case tooLarge = "too_large"
        /// The server answered 3xx; redirects are never followed (`location` says where to).
        case redirect
        /// HTTP broke in another way.
        case `protocol`
        /// Refused locally before anything reached the wire (not https, bad URL, CA file).
        case invalidInput = "invalid_input"
        /// The caller's abort check said stop (the client went away).
        case aborted
    }

    /// What went wrong.
    public var kind: Kind
    /// The HTTP status, when an answer arrived (redirects).
    public var httpStatus: Int?
    /// The URL requested.
    public var url: String
    /// The redirect target, for kind `redirect`.
    public var location: String?
    /// libcurl's message, when it gave one.
    public var detail: String?
    /// One line a person can act on.
    public var hint: String

    /// Makes an error.
    public init(kind: Kind, httpStatus: Int? = nil, url: String, location: String? = nil, detail: String? = nil, hint: String) {
        self.kind = kind
        self.httpStatus = httpStatus
        self.url = url
        self.location = location
        self.detail = detail
        self.hint = hint
    }

    /// "HTTPS request failed (tls_verify): … — hint".
    public var description: String {
        var text = "HTTPS request failed (\(kind.rawValue)\(httpStatus.map { ", HTTP \($0)" } ?? ""))"
        if let detail, !detail.isEmpty { text += ": " + detail }
        return text + " — " + hint
    }
}

/// The answer of an HTTPS request: status and body (at most the client's size limit).
public struct HTTPSResponse: Sendable, Equatable {
    /// The HTTP status code (200, 400, …).
    public var status: Int
    /// The body bytes.
    public var body: Data
    /// The Content-Type header, if the server sent one.
    public var contentType: String?

    /// Makes one.
    public init(status: Int, body: Data, contentType: String?) {
        self.status = status
        self.body = body
        self.contentType = contentType
    }
}
