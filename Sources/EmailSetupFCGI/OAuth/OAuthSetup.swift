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
import OAuth
import Smtp

/// What the responder's configuration adds to OAuth 2.0: where the page lives (for the
/// redirect URI), an endpoint base override and extra CAs for the token endpoints.
struct OAuthOptions: Sendable {
    /// `public_url` without a trailing slash; nil: browser sign-in is off.
    var publicURL: String?
    /// `oauth_base_override` (tests, sovereign clouds).
    var baseOverride: String?
    /// `oauth_ca_file`.
    var caFile: String?

    /// `<public_url>/api/setup/oauth/callback`: registered at the provider; never
    /// built from the request's Host, so a forged Host cannot redirect a code elsewhere.
    var redirectURI: String? { publicURL.map { $0 + "/api/setup/oauth/callback" } }
}

/// The OAuth 2.0 part of the saved settings, ready to talk to the provider: one
/// reading of the `oauth_*` labels, used by test emails, sign-in and the CLI alike.
struct OAuthSetup: Sendable {
    var provider: OAuthProvider
    /// `authorization_code` (a person signed in; renews by refresh token) or
    /// `client_credentials` (app-only).
    var grant: OAuthGrant
    var client: OAuthClient
    /// The mailbox the token sends as (`smtp_username`).
    var mailbox: String
    /// Names the access-token cache row: a change of provider, tenant, application,
    /// endpoint, grant, scope or mailbox never reuses another's token.
    var cacheKey: String

    /// True when the saved sign-in method uses an OAuth token.
    static func isOAuth(_ values: [String: String]) -> Bool {
        SettingsEnumerations.oauthAuthenticationTypes.contains(values[SettingsKey.authenticationType.rawValue] ?? "")
    }

    /// True when sessions should get a token source: an OAuth sign-in method, or `Auto`
    /// with OAuth configured and usable (an app secret, or someone signed in), so that
    /// `Auto` prefers OAuth whenever the server offers it (issue 13).
    static func providesToken(_ values: [String: String]) -> Bool {
        if isOAuth(values) { return true }
        guard values[SettingsKey.authenticationType.rawValue] == "Auto",
              !(values[SettingsKey.oauthClientID.rawValue] ?? "").isEmpty else { return false }
        if values[SettingsKey.oauthGrant.rawValue] == "client_credentials" {
            return !(values[SettingsKey.oauthClientSecret.rawValue] ?? "").isEmpty
        }
        return !(values[SettingsKey.SignIn.refreshToken] ?? "").isEmpty
    }

    /// Reads the saved values. The client secret is opened here (call it on the thread
    /// that talks to the provider, just before it does).
    /// - Throws: `OAuthError` (`invalid_input`) for settings the provider cannot use.
    init(values: [String: String], openSecret: (String) throws -> String, options: OAuthOptions,
         abort: SessionAbort? = nil) throws {
        func value(_ key: SettingsKey) -> String { values[key.rawValue] ?? key.defaultValue ?? "" }
        guard let provider = OAuthProvider(storedValue: value(.oauthProvider)) else {
            throw OAuthError(kind: .invalidInput, hint: "the saved OAuth provider \(value(.oauthProvider)) is unknown: choose Microsoft, Google or Generic")
        }
        let grant: OAuthGrant = value(.oauthGrant) == "client_credentials" ? .clientCredentials : .authorizationCode
        let generic = OAuthEndpoints(authorization: value(.oauthAuthorizationEndpoint), token: value(.oauthTokenEndpoint),
                                     device: value(.oauthDeviceEndpoint).isEmpty ? nil : value(.oauthDeviceEndpoint),
                                     revocation: value(.oauthRevocationEndpoint).isEmpty ? nil : value(.oauthRevocationEndpoint))
        let endpoints = try OAuthEndpoints.derived(provider: provider, tenant: value(.oauthTenant), generic: generic,
                                                   baseOverride: options.baseOverride)
        let sealedSecret = value(.oauthClientSecret)
        let secret = sealedSecret.isEmpty ? nil : try openSecret(sealedSecret)
        guard !value(.oauthClientID).isEmpty else {
            throw OAuthError(kind: .invalidInput, hint: "no application (client) ID is saved: enter the one the provider shows for your app registration")
        }
        let config = OAuthClientConfig(provider: provider, endpoints: endpoints, clientID: value(.oauthClientID), clientSecret: secret,
                                       scope: value(.oauthScope), grant: grant, caFile: options.caFile, connectTimeout: 10, deadline: 20,
                                       shouldAbort: abort.map { abort in { @Sendable in abort.hasHungUp } })
        self.provider = provider
        self.grant = grant
        self.client = OAuthClient(config)
        self.mailbox = value(.username)
        let identity = [provider.rawValue, value(.oauthTenant), value(.oauthClientID), endpoints.token, grant.rawValue,
                        config.scope, mailbox].joined(separator: "\u{1F}")
        cacheKey = "v1:" + Self.digest(identity)
    }

    /// The scope a save would use by default for these values (for the page's placeholder).
    static func defaultScope(_ values: [String: String]) -> String {
        let provider = OAuthProvider(storedValue: values[SettingsKey.oauthProvider.rawValue] ?? "Microsoft") ?? .microsoft
        let grant: OAuthGrant = values[SettingsKey.oauthGrant.rawValue] == "client_credentials" ? .clientCredentials : .authorizationCode
        return OAuthClientConfig.defaultScope(provider: provider, grant: grant)
    }

    /// 64-bit FNV-1a twice (two seeds), hex: a short stable row name, not a secret.
    private static func digest(_ text: String) -> String {
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
            return hash
        }
        let a = fnv(0xcbf29ce484222325), b = fnv(0x84222325cbf29ce4)
        return String(a, radix: 16) + String(b, radix: 16)
    }
}

extension SmtpError {
    /// A token-side failure as the diagnosis of a test email or check: stage `oauth`,
    /// the kind as for SMTP, the provider's code (`invalid_grant`, `AADSTS7000215`) and
    /// its hint. A request abandoned because the client left stays recognisable.
    init(oauth error: OAuthError) {
        let kind: SmtpError.Kind
        var underlying: (any Error)? = error
        switch error.kind {
        case .aborted:
            kind = .timeout
            underlying = SessionAbandoned()
        case .unreachable:
            // The API's kinds have no "unreachable": no route or no such name is a refusal by the network.
            kind = .refused
        default:
            kind = SmtpError.Kind(rawValue: error.kind.rawValue) ?? .protocol
        }
        self.init(stage: .oauth, kind: kind, replyText: error.errorDescription, hint: error.hint, underlying: underlying)
        providerCode = error.code
    }
}
