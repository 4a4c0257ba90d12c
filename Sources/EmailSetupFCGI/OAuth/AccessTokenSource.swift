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
import Storage

/// Gives an SMTP session its access token: from the cache shared by every responder
/// (sealed, in MariaDB) while it has more than `renewBefore` seconds left, else
/// renewed under the cache row's lock — by client credentials (app-only) or by the
/// stored refresh token (a person signed in), storing a rotated refresh token in the
/// same transaction. Processes that wait for the lock find the renewed token and use
/// it, so an expiring token costs one request to the provider, not one per process.
struct AccessTokenSource {
    var setup: OAuthSetup
    var vault: PasswordVault
    var store: OAuthTokenStore
    /// Renew this long before the provider's expiry, so a token never expires mid-session
    /// (at most half the token's lifetime: see `isFresh`).
    var renewBefore: Double = 120

    /// The token, or a thrown `SmtpError` with stage `oauth` (what the Smtp session
    /// expects from its token source).
    /// - Parameter replacing: a token the SMTP server just refused although it had time
    ///   left (revoked at the provider): it is renewed instead of used again, unless
    ///   another process already replaced it.
    func token(replacing refused: String? = nil) throws -> String {
        try issued(replacing: refused).value
    }

    /// A token, and whether it came from the cache (a refused cached token is worth one
    /// renewal; a refused fresh one is not, the refusal is about something else).
    struct Issued {
        var value: String
        var fromCache: Bool
    }

    /// ``token(replacing:)`` with its provenance.
    func issued(replacing refused: String? = nil) throws -> Issued {
        do {
            if refused == nil, let cached = try store.cachedAccessToken(key: setup.cacheKey), !cached.sealed.isEmpty,
               Self.isFresh(cached, renewBefore: renewBefore) {
                return Issued(value: try vault.openStored(cached.sealed), fromCache: true)
            }
            var fetched = false
            let sealed: String = try store.withAccessTokenLock(key: setup.cacheKey) { current in
                if let current, Self.isFresh(current, renewBefore: renewBefore),
                   refused == nil || (try? vault.openStored(current.sealed)) != refused {
                    return .keep(current.sealed)
                }
                fetched = true
                let fresh = try fetch()
                let sealed = try vault.seal(fresh.accessToken)
                var signIn: [String: String] = [:]
                if let rotated = fresh.refreshToken { signIn[SettingsKey.SignIn.refreshToken] = try vault.seal(rotated) }
                return .store(sealed: sealed, expiresIn: fresh.expiresIn, signIn: signIn, sealed)
            }
            return Issued(value: try vault.openStored(sealed), fromCache: !fetched)
        } catch let error as OAuthError {
            throw SmtpError(oauth: error)
        } catch let error as SmtpError {
            throw error
        } catch {
            throw SmtpError(stage: .oauth, kind: .protocol,
                            hint: "the access token could not be read or stored (\(error)); the server log has details", underlying: error)
        }
    }

    /// Whether a cached token is good to use without renewing: more than `renewBefore`
    /// seconds left, or, for a provider that grants less than twice that, more than half
    /// its lifetime. Without the second rule a token shorter-lived than the margin would
    /// be renewed by every session, and every process that waited for the row lock
    /// would renew it again right after the one that just did: a herd, one at a time.
    static func isFresh(_ token: CachedAccessToken, renewBefore: Double) -> Bool {
        guard let left = token.secondsLeft else { return false }
        guard let age = token.age else { return left > renewBefore }
        return left > min(renewBefore, (left + max(0, age)) / 2)
    }

    /// One request to the token endpoint (called under the cache row's lock).
    private func fetch() throws -> TokenSet {
        switch setup.grant {
        case .clientCredentials:
            return try setup.client.clientCredentials()
        default:
            guard let sealed = try store.currentRefreshToken(), !sealed.isEmpty else {
                throw OAuthError(kind: .authRejected, code: "not_signed_in",
                                 hint: "nobody is signed in for OAuth 2.0 yet: press \"Sign in with \(setup.provider.displayName)\" on the settings page (or run emailsetup oauth login --stored)")
            }
            return try setup.client.refresh(refreshToken: try vault.openStored(sealed))
        }
    }
}

extension OAuthProvider {
    /// The name people know the provider by, for buttons and hints.
    var displayName: String {
        switch self {
        case .microsoft: return "Microsoft"
        case .google: return "Google"
        case .generic: return "your identity provider"
        }
    }
}
