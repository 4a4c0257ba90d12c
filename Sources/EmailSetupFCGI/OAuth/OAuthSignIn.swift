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
import Storage

/// The sign-in flows, shared by the API (browser, device) and the command line:
/// authorization code with PKCE and a single-use `state` bound to the administrator,
/// the device flow (RFC 8628), and sign-out with revocation. What a sign-in leaves
/// behind is the sealed refresh token, the account and the time, in `information`.
struct OAuthSignIn {
    var setup: OAuthSetup
    var vault: PasswordVault
    var store: OAuthTokenStore
    /// Who signs in (the `state` and the device handle are bound to this user).
    var actor: String
    var remoteAddress: String?

    /// A `state` or device handle lives this long (seconds): the issue's ten minutes.
    static let pendingLifetime = 600

    /// A new authorization URL for the browser; remembers the PKCE verifier under a
    /// fresh `state` for `pendingLifetime` seconds.
    func start(redirectURI: String) throws -> String {
        let pkce = try PKCE.generate()
        let state = try OAuthState.random()
        try store.putPendingSignIn(handle: state, kind: "code", actor: actor, sealed: try vault.seal(pkce.verifier),
                                   lifetime: Self.pendingLifetime)
        return try setup.client.authorizationURL(state: state, codeChallenge: pkce.challenge, redirectURI: redirectURI)
    }

    /// Finishes a browser sign-in: the `state` must be one this user started, unused
    /// and fresh (it is used up here either way); the code is exchanged and the
    /// refresh token stored. Returns the account that signed in.
    func finish(code: String, state: String, redirectURI: String) throws -> String {
        guard let sealed = try store.pendingSignIn(handle: state, kind: "code", actor: actor, consume: true) else {
            throw OAuthError(kind: .invalidInput, code: "invalid_state",
                             hint: "this sign-in has expired (after 10 minutes), was finished already, or was started by another administrator: press Sign in again")
        }
        let tokens = try setup.client.exchangeCode(code, verifier: try vault.openStored(sealed), redirectURI: redirectURI)
        return try record(tokens, how: "browser")
    }

    /// Starts a device sign-in; the handle identifies it for `poll(handle:)`.
    func startDevice() throws -> (handle: String, authorization: DeviceAuthorization) {
        let authorization = try setup.client.startDeviceAuthorization()
        let handle = try OAuthState.random()
        try store.putPendingSignIn(handle: handle, kind: "device", actor: actor, sealed: try vault.seal(authorization.deviceCode),
                                   lifetime: min(Self.pendingLifetime, max(60, authorization.expiresIn)))
        return (handle, authorization)
    }

    /// What one poll of a device sign-in found.
    enum PollOutcome: Equatable {
        case pending(slowDown: Bool)
        case signedIn(account: String)
    }

    /// Asks the provider once whether the person approved the device sign-in.
    func poll(handle: String) throws -> PollOutcome {
        guard let sealed = try store.pendingSignIn(handle: handle, kind: "device", actor: actor, consume: false) else {
            throw OAuthError(kind: .invalidInput, code: "invalid_handle",
                             hint: "this device sign-in has expired or was finished already: start it again")
        }
        do {
            switch try setup.client.pollDeviceAuthorization(deviceCode: try vault.openStored(sealed)) {
            case .pending: return .pending(slowDown: false)
            case .slowDown: return .pending(slowDown: true)
            case .granted(let tokens):
                _ = try store.pendingSignIn(handle: handle, kind: "device", actor: actor, consume: true)
                return .signedIn(account: try record(tokens, how: "device"))
            }
        } catch let error as OAuthError {
            // Denied or expired: this handle is done.
            _ = try? store.pendingSignIn(handle: handle, kind: "device", actor: actor, consume: true)
            throw error
        }
    }

    /// Revokes the refresh token where the provider can (Microsoft cannot; its tokens
    /// end with the app's consent), then forgets it. Returns whether it was revoked.
    func signOut() throws -> Bool {
        var revoked = false
        if let sealed = try store.currentRefreshToken(), !sealed.isEmpty, setup.client.config.endpoints.revocation != nil {
            revoked = (try? setup.client.revoke(token: try vault.openStored(sealed))) == .revoked
        }
        try store.writeSignIn([SettingsKey.SignIn.refreshToken: "", SettingsKey.SignIn.account: "", SettingsKey.SignIn.signedInAt: ""],
                              action: "oauth.sign_out", actor: actor, remoteAddress: remoteAddress,
                              detail: #"{"revoked":\#(revoked)}"#)
        return revoked
    }

    /// Stores what a sign-in returned; the account is the id_token's, else the mailbox.
    private func record(_ tokens: TokenSet, how: String) throws -> String {
        guard let refresh = tokens.refreshToken, !refresh.isEmpty else {
            throw OAuthError(kind: .protocol, code: "no_refresh_token",
                             hint: setup.provider == .microsoft
                                ? "Microsoft returned no refresh token: add offline_access to the scope"
                                : "the provider returned no refresh token: the app must ask for offline access")
        }
        let account = tokens.account ?? setup.mailbox
        let now = UTCTime.iso8601(Date())
        try store.writeSignIn([SettingsKey.SignIn.refreshToken: try vault.seal(refresh), SettingsKey.SignIn.account: account,
                               SettingsKey.SignIn.signedInAt: now],
                              action: "oauth.sign_in", actor: actor, remoteAddress: remoteAddress,
                              detail: String(decoding: JSONValue.object([("account", .string(account)), ("via", .string(how))]).serialized(),
                                             as: UTF8.self))
        return account
    }
}
