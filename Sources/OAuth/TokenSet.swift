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

/// A successful token answer (RFC 6749 §5.1).
///
/// Its `description` never shows a token, so logging one by mistake leaks nothing.
public struct TokenSet: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The bearer token for XOAUTH2 / OAUTHBEARER.
    public var accessToken: String
    /// Seconds from issue until the access token expires. A server that omits
    /// `expires_in` is taken to mean one hour, the common default (RFC 6749 §5.1 leaves it open).
    public var expiresIn: Int
    /// A new refresh token, when the server issued (or rotated) one.
    public var refreshToken: String?
    /// The granted scope, when the server said (it may differ from the requested one).
    public var scope: String?
    /// Who signed in, from the id_token (`email`, else `preferred_username`, else `upn`).
    public var account: String?

    /// Makes a token set.
    public init(accessToken: String, expiresIn: Int, refreshToken: String? = nil, scope: String? = nil, account: String? = nil) {
        self.accessToken = accessToken
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
        self.scope = scope
        self.account = account
    }

    /// "TokenSet(access token: 1234 chars, expires in 3599 s, refresh token: yes, account: …)".
    public var description: String {
        "TokenSet(access token: \(accessToken.count) chars, expires in \(expiresIn) s, refresh token: \(refreshToken == nil ? "no" : "yes"), scope: \(scope ?? "-"), account: \(account ?? "-"))"
    }

    /// Same as `description`: no token in debugger output either.
    public var debugDescription: String { description }

    /// What `dump` and debuggers show: everything but the tokens.
    public var customMirror: Mirror {
        Mirror(self, children: ["expiresIn": expiresIn, "hasRefreshToken": refreshToken != nil,
                                "scope": scope as Any, "account": account as Any])
    }

    /// Parses a 2xx token answer.
    /// - Throws: `OAuthError` `protocol` when it is not JSON, has no `access_token`, or a
    ///   `token_type` other than Bearer (SMTP's SASL mechanisms carry bearer tokens only).
    static func parse(_ body: Data, status: Int, endpoint: String) throws -> TokenSet {
        guard let object = LooseJSON.object(body) else {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the token endpoint answered \(status) without a JSON object: check that the token endpoint URL is right")
        }
        guard let accessToken = object["access_token"]?.string, !accessToken.isEmpty else {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the token endpoint answered without an access_token: check that the token endpoint URL is right")
        }
        if let type = object["token_type"]?.string, type.lowercased() != "bearer" {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the token endpoint issued a \(type) token; SMTP needs a Bearer token: check the provider's client settings")
        }
        return TokenSet(accessToken: accessToken,
                        expiresIn: object["expires_in"]?.int ?? 3600,
                        refreshToken: object["refresh_token"]?.string.flatMap { $0.isEmpty ? nil : $0 },
                        scope: object["scope"]?.string,
                        account: object["id_token"]?.string.flatMap(IDToken.account))
    }
}

/// The payload of an OpenID Connect id_token, decoded without checking the signature:
/// it came straight from the token endpoint over verified TLS (OIDC Core §3.1.3.7), and
/// only names the account for display.
enum IDToken {
    /// `email`, else `preferred_username`, else `upn`; nil for anything malformed.
    static func account(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
              let claims = LooseJSON.object(payload)
        else { return nil }
        for claim in ["email", "preferred_username", "upn"] {
            if let value = claims[claim]?.string, !value.isEmpty { return value }
        }
        return nil
    }
}

/// An RFC 8628 device authorization answer: what to show the person, and what to poll with.
public struct DeviceAuthorization: Sendable, Equatable, CustomStringConvertible {
    /// The secret the client polls with (never shown).
    public var deviceCode: String
    /// The short code the person types at `verificationURI`.
    public var userCode: String
    /// Where the person goes (Google calls it `verification_url`).
    public var verificationURI: String
    /// The same with the code filled in, when the server offers it.
    public var verificationURIComplete: String?
    /// Seconds to wait between polls (5 when the server does not say, RFC 8628 §3.2).
    public var interval: Int
    /// Seconds until the codes expire.
    public var expiresIn: Int

    /// Makes a device authorization.
    public init(deviceCode: String, userCode: String, verificationURI: String, verificationURIComplete: String? = nil,
                interval: Int = 5, expiresIn: Int) {
        self.deviceCode = deviceCode
        self.userCode = userCode
        self.verificationURI = verificationURI
        self.verificationURIComplete = verificationURIComplete
        self.interval = interval
        self.expiresIn = expiresIn
    }

    /// Without the device code.
    public var description: String {
        "DeviceAuthorization(user code: \(userCode), at: \(verificationURI), interval: \(interval) s, expires in: \(expiresIn) s)"
    }

    static func parse(_ body: Data, status: Int, endpoint: String) throws -> DeviceAuthorization {
        guard let object = LooseJSON.object(body),
              let deviceCode = object["device_code"]?.string, let userCode = object["user_code"]?.string,
              let uri = (object["verification_uri"] ?? object["verification_url"])?.string
        else {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the device authorization endpoint answered without device_code, user_code and verification_uri: check its URL")
        }
        return DeviceAuthorization(deviceCode: deviceCode, userCode: userCode, verificationURI: uri,
                                   verificationURIComplete: object["verification_uri_complete"]?.string,
                                   interval: max(1, object["interval"]?.int ?? 5),
                                   expiresIn: object["expires_in"]?.int ?? 900)
    }
}

/// The error answer of an authorization server (RFC 6749 §5.2), with Microsoft's extras.
struct ProviderErrorBody: Equatable {
    /// `error`: "invalid_grant", …
    var error: String
    /// `error_description`, if any.
    var errorDescription: String?
    /// Microsoft's `error_codes` ([7000215]); also read from "AADSTS7000215:" in the description.
    var errorCodes: [Int]

    /// nil when the body is not a JSON object with a string `error`.
    static func parse(_ body: Data) -> ProviderErrorBody? {
        guard let object = LooseJSON.object(body), let error = object["error"]?.string, !error.isEmpty
        else { return nil }
        let description = object["error_description"]?.string
        var codes: [Int] = []
        if case .array(let values)? = object["error_codes"] { codes = values.compactMap(\.int) }
        if codes.isEmpty, let description, let code = aadstsCode(in: description) { codes = [code] }
        return ProviderErrorBody(error: error, errorDescription: description, errorCodes: codes)
    }

    /// "AADSTS7000215" when Microsoft sent a code, else the RFC error.
    var mostSpecificCode: String { errorCodes.first.map { "AADSTS\($0)" } ?? error }
}

/// The number after the first "AADSTS" followed by digits in `text` ("AADSTS7000215: …").
private func aadstsCode(in text: String) -> Int? {
    for part in text.components(separatedBy: "AADSTS").dropFirst() {
        let digits = part.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty { return Int(digits) }
    }
    return nil
}

/// A JSON value as authorization servers send it, read with FoundationEssentials'
/// JSONDecoder (JSONSerialization needs full Foundation: docs/DECISIONS.md, "CGI start-up").
enum LooseJSON: Decodable, Equatable {
    case string(String), number(Double), bool(Bool), null, array([LooseJSON]), object([String: LooseJSON])

    init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer()
        if value.decodeNil() {
            self = .null
        } else if let bool = try? value.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? value.decode(Double.self) {
            self = .number(number)
        } else if let text = try? value.decode(String.self) {
            self = .string(text)
        } else if let array = try? value.decode([LooseJSON].self) {
            self = .array(array)
        } else {
            self = .object(try value.decode([String: LooseJSON].self))
        }
    }

    /// The members of `data` when it is a JSON object; nil otherwise.
    static func object(_ data: Data) -> [String: LooseJSON]? {
        try? JSONDecoder().decode([String: LooseJSON].self, from: data)
    }

    /// The text of a string.
    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// A whole number, or a number sent as a string ("3600"), as some servers do.
    var int: Int? {
        switch self {
        case .number(let number): return number.isFinite && abs(number) < 1e15 ? Int(number) : nil
        case .string(let text): return Int(text)
        default: return nil
        }
    }
}
