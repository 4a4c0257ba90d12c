import Foundation

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
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the token endpoint answered \(status) without a JSON object: check that the token endpoint URL is right")
        }
        guard let accessToken = object["access_token"] as? String, !accessToken.isEmpty else {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the token endpoint answered without an access_token: check that the token endpoint URL is right")
        }
        if let type = object["token_type"] as? String, type.lowercased() != "bearer" {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the token endpoint issued a \(type) token; SMTP needs a Bearer token: check the provider's client settings")
        }
        return TokenSet(accessToken: accessToken,
                        expiresIn: jsonInt(object["expires_in"]) ?? 3600,
                        refreshToken: (object["refresh_token"] as? String).flatMap { $0.isEmpty ? nil : $0 },
                        scope: object["scope"] as? String,
                        account: (object["id_token"] as? String).flatMap(IDToken.account))
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
              let claims = try? JSONSerialization.jsonObject(with: payload) as? [String: Any]
        else { return nil }
        for claim in ["email", "preferred_username", "upn"] {
            if let value = claims[claim] as? String, !value.isEmpty { return value }
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
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let deviceCode = object["device_code"] as? String, let userCode = object["user_code"] as? String,
              let uri = (object["verification_uri"] ?? object["verification_url"]) as? String
        else {
            throw OAuthError(kind: .protocol, httpStatus: status, endpoint: endpoint,
                             hint: "the device authorization endpoint answered without device_code, user_code and verification_uri: check its URL")
        }
        return DeviceAuthorization(deviceCode: deviceCode, userCode: userCode, verificationURI: uri,
                                   verificationURIComplete: object["verification_uri_complete"] as? String,
                                   interval: max(1, jsonInt(object["interval"]) ?? 5),
                                   expiresIn: jsonInt(object["expires_in"]) ?? 900)
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
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let error = object["error"] as? String, !error.isEmpty
        else { return nil }
        let description = object["error_description"] as? String
        var codes = (object["error_codes"] as? [Any] ?? []).compactMap(jsonInt)
        if codes.isEmpty, let description, let range = description.range(of: #"AADSTS[0-9]+"#, options: .regularExpression) {
            codes = Int(description[range].dropFirst("AADSTS".count)).map { [$0] } ?? []
        }
        return ProviderErrorBody(error: error, errorDescription: description, errorCodes: codes)
    }

    /// "AADSTS7000215" when Microsoft sent a code, else the RFC error.
    var mostSpecificCode: String { errorCodes.first.map { "AADSTS\($0)" } ?? error }
}

/// JSON numbers arrive as NSNumber, and some servers send "3600" as a string.
private func jsonInt(_ value: Any?) -> Int? {
    switch value {
    case let number as NSNumber: return number.intValue
    case let text as String: return Int(text)
    default: return nil
    }
}
