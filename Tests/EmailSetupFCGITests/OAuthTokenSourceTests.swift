@testable import EmailSetupFCGI
import OAuth
@testable import Smtp
import Storage
import XCTest
import Synchronization

/// The responder's side of OAuth 2.0 without a provider: which settings get a token
/// source, the cache in front of the token endpoint, and how a token-side failure
/// becomes the diagnosis of a test email. (Against a real authorization server:
/// Tests/EndToEndTests/OAuthEndToEndTests.swift and CLIOAuthTests.swift.)
final class OAuthTokenSourceTests: XCTestCase {
    /// Microsoft app-only, its endpoints on a loopback port where nothing listens: any
    /// request to the provider fails at once with `refused`.
    let values: [String: String] = [
        "from_address": "app@example.com", "smtp_host": "smtp.office365.com", "smtp_port": "587",
        "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "XOAUTH2", "smtp_username": "app@example.com",
        "oauth_provider": "Microsoft", "oauth_grant": "client_credentials", "oauth_tenant": "contoso.onmicrosoft.com",
        "oauth_client_id": "11111111-2222-3333-4444-555555555555", "oauth_client_secret": "sealed:app-secret",
    ]
    let options = OAuthOptions(publicURL: "https://admin.example.com/email", baseOverride: "https://127.0.0.1:1", caFile: nil)

    func source(_ store: MemorySettingsRepository, values: [String: String]? = nil) throws -> AccessTokenSource {
        let vault = PlainVault()
        let setup = try OAuthSetup(values: values ?? self.values, openSecret: { try vault.openStored($0) }, options: options)
        return AccessTokenSource(setup: setup, vault: vault, store: store)
    }

    func testACachedTokenWithTimeLeftIsUsedWithoutAskingTheProvider() throws {
        let store = MemorySettingsRepository()
        let tokens = try source(store)
        store.tokenCache[tokens.setup.cacheKey] = ("sealed:cached-token", 3600, 0)
        XCTAssertEqual(try tokens.token(), "cached-token")
    }

    func testAnExpiringTokenIsRenewedAndAFailedRenewalIsAnOAuthDiagnosis() throws {
        let store = MemorySettingsRepository()
        let tokens = try source(store)
        store.tokenCache[tokens.setup.cacheKey] = ("sealed:old-token", 30, -3570)  // an hour-long token with 30 s left: under the 120 s margin
        XCTAssertThrowsError(try tokens.token()) { error in
            let smtp = error as? SmtpError
            XCTAssertEqual(smtp?.stage, .oauth, "\(error)")
            XCTAssertEqual(smtp?.kind, .refused, "\(error)")
            XCTAssertFalse(smtp?.hint.isEmpty ?? true)
        }
    }

    func testSignedOutAuthorizationCodeNamesHowToSignIn() throws {
        let store = MemorySettingsRepository()
        var v = values
        v["oauth_grant"] = "authorization_code"
        XCTAssertThrowsError(try source(store, values: v).token()) { error in
            let smtp = error as? SmtpError
            XCTAssertEqual(smtp?.stage, .oauth)
            XCTAssertEqual(smtp?.providerCode, "not_signed_in")
            XCTAssertTrue(smtp?.hint.contains("Sign in with Microsoft") ?? false, smtp?.hint ?? "")
        }
    }

    func testTheCacheKeyChangesWithTheApplicationTenantScopeAndMailbox() throws {
        let store = MemorySettingsRepository()
        let base = try source(store).setup.cacheKey
        for (key, value) in [("oauth_client_id", "other"), ("oauth_tenant", "fabrikam.example"), ("oauth_scope", "x"),
                             ("smtp_username", "other@example.com"), ("oauth_grant", "authorization_code")] {
            var v = values
            v[key] = value
            XCTAssertNotEqual(try source(store, values: v).setup.cacheKey, base, key)
        }
        XCTAssertEqual(try source(store).setup.cacheKey, base, "stable for the same settings")
    }

    func testAutoGetsATokenSourceOnlyWhenOAuthIsUsable() {
        var v = values
        v["smtp_authentication_type"] = "Auto"
        XCTAssertTrue(OAuthSetup.providesToken(v), "app secret set")
        v["oauth_client_secret"] = ""
        XCTAssertFalse(OAuthSetup.providesToken(v))
        v["oauth_grant"] = "authorization_code"
        XCTAssertFalse(OAuthSetup.providesToken(v), "nobody signed in")
        v["oauth_refresh_token"] = "sealed:refresh"
        XCTAssertTrue(OAuthSetup.providesToken(v))
        v["smtp_authentication_type"] = "Plain"
        XCTAssertFalse(OAuthSetup.providesToken(v))
    }

    func testATestEmailWithOAuthSettingsGetsItsTokenFromTheCacheOnThePoolThread() throws {
        let store = MemorySettingsRepository()
        store.values = values
        store.version = 3
        let smtp = ScriptedSmtp()
        var handler = APIHandler(repository: store, vault: PlainVault(), logger: .quiet)
        handler.smtp = smtp
        handler.oauthOptions = options
        let key = try source(store).setup.cacheKey
        store.tokenCache[key] = ("sealed:pool-token", 3600, 0)
        XCTAssertEqual(handler.answer(post("/api/setup/email_check", "{}")).status, 200)
        XCTAssertEqual(smtp.checks, 1)
        XCTAssertEqual(try smtp.lastSettings?.accessToken?(), "pool-token")
        XCTAssertEqual(smtp.lastSettings?.authentication, .xoauth2)
    }

    func testGetShowsWhoSignedInAndNeverASecret() throws {
        let store = MemorySettingsRepository()
        store.values = values.merging(["oauth_refresh_token": "sealed:refresh-token", "oauth_account": "app@example.com",
                                       "oauth_signed_in_at": "2026-12-01T10:00:00Z"]) { $1 }
        var handler = APIHandler(repository: store, vault: PlainVault(), logger: .quiet)
        handler.oauthOptions = options
        let r = handler.handle(get("/api/setup/email_smtp"))
        let text = String(decoding: r.body, as: UTF8.self)
        XCTAssertEqual(r.status, 200, text)
        XCTAssertEqual(r.json["data"]?["oauth_account"], "app@example.com")
        XCTAssertEqual(r.json["data"]?["oauth_client_secret_set"], .bool(true))
        XCTAssertEqual(r.json["data"]?["oauth_redirect_uri"], "https://admin.example.com/email/api/setup/oauth/callback")
        for secret in ["app-secret", "refresh-token", "oauth_refresh_token"] {
            XCTAssertFalse(text.contains(secret), "\(secret) in \(text)")
        }
    }

    func testStartNeedsPublicURLAndBindsTheStateToTheUser() throws {
        let store = MemorySettingsRepository()
        store.values = values.merging(["oauth_grant": "authorization_code"]) { $1 }
        var handler = APIHandler(repository: store, vault: PlainVault(), logger: .quiet)
        handler.oauthStore = store
        XCTAssertEqual(handler.handle(post("/api/setup/oauth/start", "")).status, 409, "no public_url configured")
        handler.oauthOptions = options
        let r = handler.handle(post("/api/setup/oauth/start", ""))
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        guard case .string(let url)? = r.json["data"]?["authorization_url"] else { return XCTFail("no authorization_url") }
        let query = APIHandler.formFields(URLComponents(string: url)?.percentEncodedQuery ?? "")
        XCTAssertEqual(query["redirect_uri"], "https://admin.example.com/email/api/setup/oauth/callback")
        XCTAssertEqual(query["code_challenge_method"], "S256")
        let state = try XCTUnwrap(query["state"])
        XCTAssertEqual(store.pending[state]?.actor, "admin")
        XCTAssertNil(try store.pendingSignIn(handle: state, kind: "code", actor: "Admin", consume: false), "another user")
    }

    func testOnlyARefusedCachedTokenIsRenewedAndTriedOnceMore() throws {
        let store = MemorySettingsRepository()
        let refusal = SmtpError(stage: .auth, kind: .authRejected, replyCode: 535, enhancedCode: "5.7.3", hint: "refused")
        for cached in [true, false] {
            let asked = Mutex<[String?]>([])
            let tokens: TokenSource = { _, _, refused in
                asked.withLock { $0.append(refused) }
                return AccessTokenSource.Issued(value: refused == nil ? "first" : "second", fromCache: cached && refused == nil)
            }
            var sessions: [String] = []
            XCTAssertThrowsError(try APIHandler.withAccessToken(tokens, SmtpSettings(host: "h", port: 587, security: .startTLSRequired),
                                                                store, nil) { settings -> Int in
                sessions.append(try settings.accessToken?() ?? "")
                throw refusal
            })
            XCTAssertEqual(sessions, cached ? ["first", "second"] : ["first"], "cached: \(cached)")
            XCTAssertEqual(asked.withLock { $0 }, cached ? [nil, "first"] : [nil])
        }
    }

    func testASaveThatChangesTheApplicationForgetsTheSignInAndOneThatDoesNotKeepsIt() throws {
        let store = MemorySettingsRepository()
        store.values = values.merging(["oauth_grant": "authorization_code", "oauth_refresh_token": "sealed:refresh",
                                       "oauth_account": "app@example.com", "oauth_signed_in_at": "2026-12-01T10:00:00Z"]) { $1 }
        var handler = APIHandler(repository: store, vault: PlainVault(), logger: .quiet)
        handler.oauthStore = store
        let kept = handler.handle(post("/api/setup/email_smtp", #"{"data":{"smtp_port":"25"}}"#))
        XCTAssertEqual(kept.status, 200, String(decoding: kept.body, as: UTF8.self))
        XCTAssertEqual(store.values["oauth_refresh_token"], "sealed:refresh")
        let changed = handler.handle(post("/api/setup/email_smtp", #"{"data":{"oauth_client_id":"another-app"}}"#))
        XCTAssertEqual(changed.status, 200, String(decoding: changed.body, as: UTF8.self))
        XCTAssertEqual(store.values["oauth_refresh_token"], "")
        XCTAssertEqual(changed.json["data"]?["oauth_account"], "", "the answer shows the sign-in is gone")
        XCTAssertEqual(store.auditRows.last?.action, "oauth.forget")
    }
}
