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

/// How the SMTP sender gets its tokens.
public enum OAuthGrant: String, Sendable, Codable, CaseIterable {
    /// App-only (Microsoft 365): client ID + secret, no user, no refresh token.
    case clientCredentials = "client_credentials"
    /// A person signs in once (browser, PKCE); the refresh token renews access tokens.
    case authorizationCode = "authorization_code"
    /// The same, signed in on another device (RFC 8628); stored as `authorization_code`.
    case deviceCode = "device_code"
}

/// Everything the client needs to talk to one authorization server.
///
/// Its `description` never shows the client secret.
public struct OAuthClientConfig: Sendable, CustomStringConvertible {
    /// Whose server (for defaults and hints).
    public var provider: OAuthProvider
    /// Where to send requests.
    public var endpoints: OAuthEndpoints
    /// The registered application's client ID.
    public var clientID: String
    /// The client secret (confidential clients); nil for a public client.
    public var clientSecret: String?
    /// Space-separated scopes; see ``defaultScope(provider:grant:)``.
    public var scope: String
    /// PEM file of extra trusted CAs for the endpoints (a private CA).
    public var caFile: String?
    /// Seconds to connect (TCP + TLS).
    public var connectTimeout: Double
    /// Seconds for each whole request.
    public var deadline: Double
    /// Called while waiting; `true` abandons the request with kind `aborted`.
    public var shouldAbort: (@Sendable () -> Bool)?

    /// Makes a configuration; `scope` defaults to the provider's SMTP scope for `grant`.
    public init(provider: OAuthProvider, endpoints: OAuthEndpoints, clientID: String, clientSecret: String? = nil,
                scope: String? = nil, grant: OAuthGrant = .authorizationCode, caFile: String? = nil,
                connectTimeout: Double = 10, deadline: Double = 30, shouldAbort: (@Sendable () -> Bool)? = nil) {
        self.provider = provider
        self.endpoints = endpoints
        self.clientID = clientID
        self.clientSecret = clientSecret.flatMap { $0.isEmpty ? nil : $0 }
        let trimmed = scope?.trimmingWhitespace() ?? ""
        self.scope = trimmed.isEmpty ? Self.defaultScope(provider: provider, grant: grant) : trimmed
        self.caFile = caFile.flatMap { $0.isEmpty ? nil : $0 }
        self.connectTimeout = connectTimeout
        self.deadline = deadline
        self.shouldAbort = shouldAbort
    }

    /// The scope SMTP sending needs: Microsoft app-only `https://outlook.office365.com/.default`;
    /// Microsoft delegated `https://outlook.office.com/SMTP.Send offline_access openid email`;
    /// Google `https://mail.google.com/ openid email`; Generic none (the settings say).
    public static func defaultScope(provider: OAuthProvider, grant: OAuthGrant) -> String {
        switch (provider, grant) {
        case (.microsoft, .clientCredentials): return "https://outlook.office365.com/.default"
        case (.microsoft, _): return "https://outlook.office.com/SMTP.Send offline_access openid email"
        case (.google, _): return "https://mail.google.com/ openid email"
        case (.generic, _): return ""
        }
    }

    /// Provider, client ID, scope and endpoints; the secret only as set / not set.
    public var description: String {
        "OAuthClientConfig(provider: \(provider.rawValue), client ID: \(clientID), secret: \(clientSecret == nil ? "not set" : "set"), scope: \(scope), token endpoint: \(endpoints.token))"
    }
}

/// The answer of one device-flow poll (RFC 8628 §3.4–3.5).
public enum DevicePollResult: Sendable, Equatable {
    /// Not approved yet: poll again after the interval.
    case pending
    /// Polling too fast: add 5 seconds to the interval, then poll again.
    case slowDown
    /// Approved: the tokens.
    case granted(TokenSet)
}

/// What revocation did.
public enum RevocationOutcome: Sendable, Equatable {
    /// The server accepted the revocation (RFC 7009 also answers 200 for unknown tokens).
    case revoked
    /// The server says the token was already invalid (Google answers `invalid_token`
    /// with 400 where RFC 7009 §2.2 answers 200): nothing is left to revoke.
    case alreadyInvalid
    /// The provider has no revocation endpoint (Microsoft): forgetting the token is all one can do.
    case unsupported
}

/// The OAuth 2.0 grants SMTP sign-in uses, against one authorization server. Knows
/// nothing of storage: callers keep refresh tokens, states and verifiers.
///
/// Client authentication is `client_secret_post` (the secret in the form body), which
/// Microsoft and Google both accept; all requests are synchronous and bounded by the
/// config's timeouts.
///
/// ```swift
/// let endpoints = try OAuthEndpoints.derived(provider: .microsoft, tenant: tenantID)
/// let client = OAuthClient(OAuthClientConfig(provider: .microsoft, endpoints: endpoints,
///                                            clientID: id, clientSecret: secret, grant: .clientCredentials))
/// let tokens = try client.clientCredentials()   // tokens.accessToken → XOAUTH2
/// ```
public struct OAuthClient: Sendable {
    /// The configuration.
    public var config: OAuthClientConfig

    /// Makes a client.
    public init(_ config: OAuthClientConfig) {
        self.config = config
    }

    private var http: HTTPSClient {
        HTTPSClient(caFile: config.caFile, connectTimeout: config.connectTimeout, deadline: config.deadline,
                    shouldAbort: config.shouldAbort, userAgent: "EmailSetup-OAuth/1")
    }

    /// App-only token (client credentials grant, RFC 6749 §4.4).
    /// - Throws: `OAuthError`; e.g. AADSTS7000222 when the secret expired.
    public func clientCredentials() throws -> TokenSet {
        try requestToken([("grant_type", "client_credentials"), ("scope", config.scope)] + clientAuthentication(),
                         request: .clientCredentials)
    }

    /// The URL to send the browser to (RFC 6749 §4.1.1 with PKCE S256, RFC 7636 §4.3).
    /// Google also gets `access_type=offline` and `prompt=consent`, without which it
    /// issues no refresh token on a repeated sign-in.
    /// - Parameters:
    ///   - state: single-use value (``OAuthState/random()``), checked at the callback.
    ///   - codeChallenge: ``PKCE/challenge``.
    ///   - redirectURI: the callback URL, registered at the provider, built from the public URL.
    public func authorizationURL(state: String, codeChallenge: String, redirectURI: String) throws -> String {
        try config.endpoints.validate()
        var fields = [("response_type", "code"), ("client_id", config.clientID), ("redirect_uri", redirectURI),
                      ("scope", config.scope), ("state", state), ("code_challenge", codeChallenge),
                      ("code_challenge_method", "S256")]
        if config.provider == .google { fields += [("access_type", "offline"), ("prompt", "consent")] }
        let separator = config.endpoints.authorization.contains("?") ? "&" : "?"
        return config.endpoints.authorization + separator + FormEncoding.encode(fields)
    }

    /// Exchanges the code from the callback for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).
    public func exchangeCode(_ code: String, verifier: String, redirectURI: String) throws -> TokenSet {
        try requestToken([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
                          ("code_verifier", verifier)] + clientAuthentication(), request: .authorizationCode)
    }

    /// A new access token from a refresh token (RFC 6749 §6). When the answer carries a
    /// new refresh token (rotation), the caller must store it: the old one may be dead.
    /// Microsoft gets the scope again (its v2.0 endpoint asks for it); others get none,
    /// which RFC 6749 §6 reads as "the scope originally granted".
    public func refresh(refreshToken: String) throws -> TokenSet {
        var fields = [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]
        if config.provider == .microsoft { fields.append(("scope", config.scope)) }
        return try requestToken(fields + clientAuthentication(), request: .refresh)
    }

    /// Starts a device sign-in (RFC 8628 §3.1): show `userCode` and `verificationURI`.
    /// A confidential client authenticates here as at the token endpoint (RFC 8628 §3.1
    /// applies RFC 6749 §3.2.1); a public client (no secret) sends its `client_id` only.
    public func startDeviceAuthorization() throws -> DeviceAuthorization {
        guard let endpoint = config.endpoints.device else {
            throw OAuthError(kind: .invalidInput, hint: "this provider has no device authorization endpoint: enter it in the settings, or sign in from the settings page")
        }
        let response = try post(endpoint, [("scope", config.scope)] + clientAuthentication())
        guard (200..<300).contains(response.status) else {
            throw errorAnswer(response, endpoint: endpoint, request: .deviceAuthorization)
        }
        return try DeviceAuthorization.parse(response.body, status: response.status, endpoint: endpoint)
    }

    /// Polls once for the device sign-in's tokens (RFC 8628 §3.4), with the same client
    /// authentication as every token request.
    /// - Throws: `OAuthError` for `access_denied`, `expired_token` and every other error.
    public func pollDeviceAuthorization(deviceCode: String) throws -> DevicePollResult {
        var fields = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", deviceCode)]
        fields += clientAuthentication()
        let response = try post(config.endpoints.token, fields)
        if (200..<300).contains(response.status) {
            return .granted(try TokenSet.parse(response.body, status: response.status, endpoint: config.endpoints.token))
        }
        switch ProviderErrorBody.parse(response.body)?.error {
        case "authorization_pending": return .pending
        case "slow_down": return .slowDown
        default: throw errorAnswer(response, endpoint: config.endpoints.token, request: .devicePoll)
        }
    }

    /// Revokes a token at the provider (RFC 7009), by default a refresh token, which
    /// also ends its access tokens at Google. Microsoft has no revocation endpoint.
    public func revoke(token: String, tokenTypeHint: String = "refresh_token") throws -> RevocationOutcome {
        guard let endpoint = config.endpoints.revocation else { return .unsupported }
        let response = try post(endpoint, [("token", token), ("token_type_hint", tokenTypeHint)] + clientAuthentication())
        if (200..<300).contains(response.status) { return .revoked }
        if ["invalid_token", "invalid_grant"].contains(ProviderErrorBody.parse(response.body)?.error) { return .alreadyInvalid }
        throw errorAnswer(response, endpoint: endpoint, request: .revocation)
    }

    // MARK: - Requests

    private func clientAuthentication() -> [(String, String)] {
        [("client_id", config.clientID)] + (config.clientSecret.map { [("client_secret", $0)] } ?? [])
    }

    private func requestToken(_ fields: [(String, String)], request: OAuthRequest) throws -> TokenSet {
        let endpoint = config.endpoints.token
        let response = try post(endpoint, fields)
        guard (200..<300).contains(response.status) else {
            throw errorAnswer(response, endpoint: endpoint, request: request)
        }
        return try TokenSet.parse(response.body, status: response.status, endpoint: endpoint)
    }

    private func post(_ endpoint: String, _ fields: [(String, String)]) throws -> HTTPSResponse {
        try config.endpoints.validate()
        do {
            return try http.postForm(endpoint, fields: fields)
        } catch {
            throw OAuthError(error)
        }
    }

    private func errorAnswer(_ response: HTTPSResponse, endpoint: String, request: OAuthRequest) -> OAuthError {
        guard let answer = ProviderErrorBody.parse(response.body) else {
            return OAuthHints.error(forStatus: response.status, endpoint: endpoint)
        }
        return OAuthHints.error(for: answer, httpStatus: response.status, provider: config.provider,
                                request: request, endpoint: endpoint)
    }
}
