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
import HTTPS

/// The one error type of the `OAuth` module: how a call to an authorization server
/// failed (`kind`), the provider's error code, and a one-line `hint` that names the fix
/// and where in the provider's admin page to make it.
///
/// Kinds match `SmtpError.Kind` by raw value (`timeout`, `refused`, `tls_verify`,
/// `auth_rejected`, …) so a caller can carry it into an SMTP diagnosis with stage `oauth`.
/// No field ever holds a secret or a token: descriptions come from the provider's
/// `error_description` or from libcurl's message about the connection.
///
/// ```swift
/// do {
///     let tokens = try OAuthClient(config).refresh(refreshToken: stored)
/// } catch let error as OAuthError {
///     print(error.kind.rawValue, error.code ?? "-", error.hint)
/// }
/// ```
public struct OAuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// No answer within the connect timeout or the deadline; also an expired device code.
        case timeout
        /// The connection was actively refused (nothing listens).
        case refused
        /// The host name does not resolve, or no route leads to the host.
        case unreachable
        /// The server's certificate failed verification (chain, name, dates).
        case tlsVerify = "tls_verify"
        /// The TLS handshake failed for another reason (plain text on the port, old protocol…).
        case tlsHandshake = "tls_handshake"
        /// The server refused the client or the grant (wrong secret, revoked refresh token…).
        case authRejected = "auth_rejected"
        /// The server broke HTTP or OAuth: not JSON, no access token, oversized, redirected.
        case `protocol`
        /// A 4xx answer that retrying unchanged will not fix (bad scope, wrong grant type…).
        case rejectedPermanent = "rejected_permanent"
        /// A 5xx or 429 answer, `server_error`, `temporarily_unavailable`: try again later.
        case rejectedTemporary = "rejected_temporary"
        /// Refused locally before anything reached the wire (bad endpoint URL, tenant, CA file).
        case invalidInput = "invalid_input"
        /// The caller's abort check said stop (the client went away).
        case aborted
    }

    /// What went wrong.
    public var kind: Kind
    /// The most specific code known: "AADSTS7000215" for Microsoft, else the RFC 6749
    /// `error` ("invalid_grant"), else nil (a connection failure).
    public var code: String?
    /// The RFC 6749 `error` field of the answer ("invalid_client"), when there was one.
    public var oauthError: String?
    /// The provider's `error_description`, or libcurl's message for a connection failure.
    public var errorDescription: String?
    /// The HTTP status of the answer, when one arrived.
    public var httpStatus: Int?
    /// The endpoint that was called (never carries a secret: all secrets go in the body).
    public var endpoint: String?
    /// One line a person can act on.
    public var hint: String

    /// Makes an error.
    public init(kind: Kind, code: String? = nil, oauthError: String? = nil, errorDescription: String? = nil,
                httpStatus: Int? = nil, endpoint: String? = nil, hint: String) {
        self.kind = kind
        self.code = code
        self.oauthError = oauthError
        self.errorDescription = errorDescription
        self.httpStatus = httpStatus
        self.endpoint = endpoint
        self.hint = hint
    }

    /// True when trying again later, unchanged, may succeed (timeouts, refused
    /// connections, 5xx/429, `temporarily_unavailable`).
    public var isTransient: Bool {
        switch kind {
        case .timeout, .refused, .unreachable, .rejectedTemporary: return code != "expired_token"
        default: return false
        }
    }

    /// One line: "OAuth token request failed (auth_rejected, AADSTS7000215, HTTP 401): … — hint".
    public var description: String {
        var context = [kind.rawValue]
        if let code { context.append(code) }
        if let httpStatus { context.append("HTTP \(httpStatus)") }
        var text = "OAuth request failed (\(context.joined(separator: ", ")))"
        if let errorDescription, !errorDescription.isEmpty {
            text += ": " + errorDescription.split(whereSeparator: \.isNewline).joined(separator: " ")
        }
        return text + " — " + hint
    }
}

extension OAuthError: Encodable {
    private enum CodingKeys: String, CodingKey {
        case kind, code, error, errorDescription = "error_description", httpStatus = "http_status"
        case endpoint, hint, transient
    }

    /// Encodes `kind`, `code`, `error`, `error_description`, `http_status`, `endpoint`,
    /// `hint` and `transient` (absent values as null).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(code, forKey: .code)
        try container.encode(oauthError, forKey: .error)
        try container.encode(errorDescription, forKey: .errorDescription)
        try container.encode(httpStatus, forKey: .httpStatus)
        try container.encode(endpoint, forKey: .endpoint)
        try container.encode(hint, forKey: .hint)
        try container.encode(isTransient, forKey: .transient)
    }
}

extension OAuthError {
    /// The error for an authorization response that came back with `error=` on the
    /// redirect URI (RFC 6749 §4.1.2.1: `access_denied`, `invalid_scope`, …), with the
    /// provider's hint. The callback endpoint calls this; no HTTP request is involved.
    ///
    /// - Parameters:
    ///   - error: the `error` query parameter.
    ///   - description: the `error_description` query parameter, if any.
    ///   - provider: who answered, for provider-specific hints.
    public static func authorizationResponse(error: String, description: String?, provider: OAuthProvider) -> OAuthError {
        let answer = ProviderErrorBody(error: error, errorDescription: description, errorCodes: [])
        return OAuthHints.error(for: answer, httpStatus: nil, provider: provider, request: .authorization, endpoint: nil)
    }
}

extension OAuthError {
    /// The OAuth words for a failed HTTPS exchange with an authorization server: the
    /// same kind (an oversized answer and a redirect are `protocol`), libcurl's message
    /// as the description, and hints that name the OAuth settings.
    public init(_ error: HTTPSError) {
        let kind: Kind
        var hint = error.hint
        switch error.kind {
        case .timeout: kind = .timeout
        case .refused: kind = .refused
        case .unreachable: kind = .unreachable
        case .tlsVerify: kind = .tlsVerify
        case .tlsHandshake: kind = .tlsHandshake
        case .tooLarge:
            kind = .protocol
            hint += "; a token answer is a few KiB"
        case .redirect:
            kind = .protocol
            hint = "the endpoint answered a redirect (HTTP \(error.httpStatus ?? 0)\(error.location.map { " to \($0)" } ?? "")); redirects are not followed: enter the final https URL of the endpoint"
        case .protocol: kind = .protocol
        case .invalidInput: kind = .invalidInput
        case .aborted:
            kind = .aborted
            hint = "the request to the authorization server was abandoned: the client went away"
        }
        if error.kind == .tlsVerify { hint = hint.replacing("if the server uses a private CA", with: "if the authorization server uses a private CA") }
        self.init(kind: kind, errorDescription: error.detail, httpStatus: error.httpStatus, endpoint: error.url, hint: hint)
    }
}
