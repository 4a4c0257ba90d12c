import Foundation
import TestSupport
import XCTest

/// The test authorization server (Tests/Fixtures/oauth) driven with curl the way an
/// OAuth client would: every grant, the flavours' error bodies, the test controls and
/// the statistics. The product's OAuth client and SMTP tests rely on all of this.
final class OAuthServerFixtureTests: XCTestCase {
    let redirect = "https://127.0.0.1/oauth/callback"
    let outlookScope = "https://outlook.office.com/SMTP.Send offline_access openid email"

    /// `form` plus the client's id and secret (client_secret_post).
    func withClient(_ server: OAuthTestServer, _ form: [(String, String)]) -> [(String, String)] {
        form + [("client_id", server.clientID), ("client_secret", server.clientSecret)]
    }

    /// The AADSTS number of a Microsoft error body, after checking the body's shape.
    func aadsts(_ response: OAuthTestServer.Response, file: StaticString = #filePath, line: UInt = #line) -> Int? {
        guard let json = response.json else { XCTFail("not JSON: \(response.body)", file: file, line: line); return nil }
        for key in ["error", "error_description", "timestamp", "trace_id", "correlation_id"] {
            XCTAssertNotNil(json[key] as? String, "\(key) missing in \(response.body)", file: file, line: line)
        }
        let code = (json["error_codes"] as? [Int])?.first
        if let code {
            XCTAssertTrue((json["error_description"] as? String ?? "").hasPrefix("AADSTS\(code): "), response.body, file: file, line: line)
        }
        return code
    }

    /// An authorize URL as a client builds it (PKCE S256 and state).
    func authorizeURL(_ server: OAuthTestServer, challenge: String, state: String, scope: String,
                      extra: [URLQueryItem] = []) -> String {
        var components = URLComponents(string: server.authorizationURL)!
        components.queryItems = [
            URLQueryItem(name: "client_id", value: server.clientID), URLQueryItem(name: "response_type", value: "code"),
            URLQueryItem(name: "redirect_uri", value: redirect), URLQueryItem(name: "scope", value: scope),
            URLQueryItem(name: "state", value: state), URLQueryItem(name: "code_challenge", value: challenge),
            URLQueryItem(name: "code_challenge_method", value: "S256"),
        ] + extra
        // "+" and "/" in values must not read as space or path on the server side.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.string!
    }

    /// The payload of a JWT, decoded without checking its signature.
    func jwtPayload(_ token: String) throws -> [String: Any] {
        var part = String(token.split(separator: ".")[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while part.count % 4 != 0 { part += "=" }
        return try XCTUnwrap(JSONSerialization.jsonObject(with: XCTUnwrap(Data(base64Encoded: part))) as? [String: Any])
    }

    func testMicrosoftClientCredentialsAndSecretErrors() throws {
        let server = try OAuthTestServer(flavor: .microsoft, redirectURIs: [redirect],
                                         additionalClients: [.init(id: "no-consent-app", secret: "s", consent: false)])
        let scope = [("grant_type", "client_credentials"), ("scope", "https://outlook.office365.com/.default")]

        let granted = try server.post(server.tokenURL, form: withClient(server, scope))
        XCTAssertEqual(granted.status, 200, granted.body)
        XCTAssertEqual(granted.json?["token_type"] as? String, "Bearer")
        XCTAssertEqual(granted.json?["expires_in"] as? Int, 3600)
        XCTAssertGreaterThanOrEqual((granted.json?["access_token"] as? String ?? "").count, 32)
        XCTAssertNil(granted.json?["refresh_token"], "client credentials get no refresh token")

        // HTTP Basic client authentication works as well.
        let basic = try server.post(server.tokenURL, form: scope, basicAuth: (server.clientID, server.clientSecret))
        XCTAssertEqual(basic.status, 200, basic.body)

        let wrongSecret = try server.post(server.tokenURL, form: scope + [("client_id", server.clientID), ("client_secret", "nope")])
        XCTAssertEqual(wrongSecret.status, 401)
        XCTAssertEqual(wrongSecret.json?["error"] as? String, "invalid_client")
        XCTAssertEqual(aadsts(wrongSecret), 7000215)

        let unknown = try server.post(server.tokenURL, form: scope + [("client_id", "not-registered"), ("client_secret", "x")])
        XCTAssertEqual(aadsts(unknown), 700016)
        XCTAssertTrue((unknown.json?["error_description"] as? String ?? "").contains("'\(server.tenant)'"), unknown.body)

        let noConsent = try server.post(server.tokenURL, form: scope + [("client_id", "no-consent-app"), ("client_secret", "s")])
        XCTAssertEqual(noConsent.json?["error"] as? String, "invalid_grant")
        XCTAssertEqual(aadsts(noConsent), 65001)

        let wrongTenant = try server.post(server.baseURL + "/other-tenant/oauth2/v2.0/token", form: withClient(server, scope))
        XCTAssertEqual(aadsts(wrongTenant), 90002)

        try server.expireSecret()
        let expired = try server.post(server.tokenURL, form: withClient(server, scope))
        XCTAssertEqual(expired.json?["error"] as? String, "invalid_client")
        XCTAssertEqual(aadsts(expired), 7000222)

        try server.reset()
        try server.setTokenLifetime(seconds: 120)
        let renewed = try server.post(server.tokenURL, form: withClient(server, scope))
        XCTAssertEqual(renewed.status, 200, renewed.body)
        XCTAssertEqual(renewed.json?["expires_in"] as? Int, 120)

        let stats = try server.stats()
        XCTAssertEqual(stats.tokenRequests["client_credentials"], 1, "reset zeroes the counters; one request since")
        XCTAssertEqual(stats.tokensIssued["client_credentials"], 1)
        XCTAssertFalse(server.log.contains(server.clientSecret), "the log never shows the secret")
        for answer in [granted, basic, renewed] {
            XCTAssertFalse(server.log.contains(answer.json?["access_token"] as? String ?? "?"), "the log never shows a token")
        }
    }

    func testMicrosoftAuthorizationCodeWithPKCERefreshRotationAndRevocation() throws {
        let server = try OAuthTestServer(flavor: .microsoft, redirectURIs: [redirect])
        let verifier = "v" + UUID().uuidString + UUID().uuidString
        let url = authorizeURL(server, challenge: try OAuthTestServer.pkceChallenge(for: verifier), state: "st-42",
                               scope: outlookScope)

        let page = try server.get(url)
        XCTAssertEqual(page.status, 200)
        for marker in ["name=\"username\"", "name=\"password\"", "id=\"approve\"", "id=\"deny\""] {
            XCTAssertTrue(page.body.contains(marker), "consent page lacks \(marker)")
        }

        let wrongPassword = try server.consent(at: url, password: "wrong")
        XCTAssertEqual(wrongPassword.status, 200)
        XCTAssertTrue(wrongPassword.body.contains("AADSTS50126"), "the page shows the bad credentials")

        let denied = try server.consent(at: url, approve: false)
        XCTAssertEqual(denied.status, 302)
        XCTAssertEqual(denied.redirectParameters["error"], "access_denied")
        XCTAssertEqual(denied.redirectParameters["state"], "st-42")

        let approved = try server.consent(at: url)
        XCTAssertEqual(approved.status, 302, approved.body)
        XCTAssertTrue(approved.headers["location"]?.hasPrefix(redirect + "?") ?? false)
        XCTAssertEqual(approved.redirectParameters["state"], "st-42")
        let code = try XCTUnwrap(approved.redirectParameters["code"])

        let exchange = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect)]
        let badVerifier = try server.post(server.tokenURL, form: withClient(server, exchange + [("code_verifier", verifier + "x")]))
        XCTAssertEqual(badVerifier.json?["error"] as? String, "invalid_grant")
        XCTAssertEqual(aadsts(badVerifier), 501481)

        let tokens = try server.post(server.tokenURL, form: withClient(server, exchange + [("code_verifier", verifier)]))
        XCTAssertEqual(tokens.status, 200, tokens.body)
        let access = try XCTUnwrap(tokens.json?["access_token"] as? String)
        let refresh = try XCTUnwrap(tokens.json?["refresh_token"] as? String, "offline_access gives a refresh token")
        let claims = try jwtPayload(XCTUnwrap(tokens.json?["id_token"] as? String))
        XCTAssertEqual(claims["email"] as? String, server.user.email)
        XCTAssertEqual(claims["preferred_username"] as? String, server.user.username)

        let reused = try server.post(server.tokenURL, form: withClient(server, exchange + [("code_verifier", verifier)]))
        XCTAssertEqual(aadsts(reused), 54005, "a code is single-use")

        let active = try server.post(server.introspectionURL, form: [("token", access)])
        XCTAssertEqual(active.json?["active"] as? Bool, true)
        XCTAssertEqual(active.json?["username"] as? String, server.user.email)
        XCTAssertEqual(active.json?["client_id"] as? String, server.clientID)

        let rotated = try server.post(server.tokenURL, form: withClient(server, [("grant_type", "refresh_token"), ("refresh_token", refresh)]))
        XCTAssertEqual(rotated.status, 200, rotated.body)
        let newRefresh = try XCTUnwrap(rotated.json?["refresh_token"] as? String)
        XCTAssertNotEqual(newRefresh, refresh)
        let oldAgain = try server.post(server.tokenURL, form: withClient(server, [("grant_type", "refresh_token"), ("refresh_token", refresh)]))
        XCTAssertEqual(oldAgain.json?["error"] as? String, "invalid_grant")
        XCTAssertEqual(aadsts(oldAgain), 70008)

        try server.revokeAll()
        let inactive = try server.post(server.introspectionURL, form: [("token", rotated.json?["access_token"] as? String ?? "")])
        XCTAssertEqual(inactive.json?["active"] as? Bool, false)
        let afterRevoke = try server.post(server.tokenURL, form: withClient(server, [("grant_type", "refresh_token"), ("refresh_token", newRefresh)]))
        XCTAssertEqual(aadsts(afterRevoke), 70008)

        let missingChallenge = try server.get(url.replacingOccurrences(of: "code_challenge", with: "x_challenge"))
        XCTAssertEqual(missingChallenge.status, 302, "PKCE is required")
        XCTAssertEqual(missingChallenge.redirectParameters["error"], "invalid_request")

        let stats = try server.stats()
        XCTAssertEqual(stats.tokenRequests["authorization_code"], 3)
        XCTAssertEqual(stats.tokenRequests["refresh_token"], 3)
        XCTAssertEqual(stats.tokensIssued["refresh_token"], 1)
        XCTAssertEqual(stats.introspections, 2)
        for secret in [code, access, refresh, newRefresh, server.clientSecret, server.user.password] {
            XCTAssertFalse(server.log.contains(secret), "the log shows a secret value")
        }
    }

    func testDeviceFlowPendingSlowDownApproveGranted() throws {
        let server = try OAuthTestServer(flavor: .microsoft, deviceInterval: 1)
        let start = try server.post(server.deviceURL, form: withClient(server, [("scope", outlookScope)]))
        XCTAssertEqual(start.status, 200, start.body)
        let deviceCode = try XCTUnwrap(start.json?["device_code"] as? String)
        let userCode = try XCTUnwrap(start.json?["user_code"] as? String)
        XCTAssertEqual(start.json?["verification_uri"] as? String, server.deviceVerificationURL)
        XCTAssertEqual(start.json?["interval"] as? Int, 1)
        XCTAssertNotNil(start.json?["expires_in"] as? Int)

        let poll = withClient(server, [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", deviceCode)])
        let pending = try server.post(server.tokenURL, form: poll)
        XCTAssertEqual(pending.json?["error"] as? String, "authorization_pending")
        XCTAssertEqual(aadsts(pending), 70016)
        let tooFast = try server.post(server.tokenURL, form: poll)
        XCTAssertEqual(tooFast.json?["error"] as? String, "slow_down", "two polls within the interval")

        let verifyPage = try server.get(server.deviceVerificationURL + "?user_code=" + userCode)
        XCTAssertTrue(verifyPage.body.contains("id=\"user_code\"") && verifyPage.body.contains(userCode))
        try server.approveDevice(userCode: userCode)
        let granted = try server.post(server.tokenURL, form: poll)
        XCTAssertEqual(granted.status, 200, granted.body)
        XCTAssertNotNil(granted.json?["access_token"] as? String)
        XCTAssertNotNil(granted.json?["refresh_token"] as? String)

        // Through the verification page, and a denial.
        let second = try server.post(server.deviceURL, form: withClient(server, [("scope", outlookScope)]))
        let secondCode = try XCTUnwrap(second.json?["user_code"] as? String)
        let wrong = try server.post(server.deviceVerificationURL, form: [("user_code", secondCode), ("username", server.user.username),
                                                                         ("password", "nope"), ("action", "approve")])
        XCTAssertTrue(wrong.body.contains("AADSTS50126"))
        _ = try server.post(server.deviceVerificationURL, form: [("user_code", secondCode), ("username", server.user.username),
                                                                 ("password", server.user.password), ("action", "deny")])
        let declined = try server.post(server.tokenURL, form: withClient(server, [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", second.json?["device_code"] as? String ?? "")]))
        XCTAssertEqual(declined.json?["error"] as? String, "access_denied")

        let third = try server.post(server.deviceURL, form: withClient(server, [("scope", outlookScope)]))
        try server.expireDevice()
        let expired = try server.post(server.tokenURL, form: withClient(server, [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", third.json?["device_code"] as? String ?? "")]))
        XCTAssertEqual(expired.json?["error"] as? String, "expired_token")

        let stats = try server.stats()
        XCTAssertEqual(stats.deviceAuthorizations, 3)
        XCTAssertEqual(stats.tokenRequests["device_code"], 5)
        XCTAssertEqual(stats.tokensIssued["device_code"], 1)
    }

    func testGenericRevocationThenIntrospectionInactive() throws {
        let server = try OAuthTestServer(flavor: .generic)
        let token = try server.post(server.tokenURL, form: withClient(server, [("grant_type", "client_credentials")]))
        XCTAssertEqual(token.status, 200, token.body)
        let access = try XCTUnwrap(token.json?["access_token"] as? String)
        XCTAssertEqual(try server.post(server.introspectionURL, form: [("token", access)]).json?["active"] as? Bool, true)

        let revocation = try XCTUnwrap(server.revocationURL)
        let wrongClient = try server.post(revocation, form: [("token", access), ("client_id", server.clientID), ("client_secret", "no")])
        XCTAssertEqual(wrongClient.status, 401)
        XCTAssertEqual(wrongClient.json?["error"] as? String, "invalid_client")
        XCTAssertEqual(try server.post(server.introspectionURL, form: [("token", access)]).json?["active"] as? Bool, true)

        let revoked = try server.post(revocation, form: withClient(server, [("token", access)]))
        XCTAssertEqual(revoked.status, 200, revoked.body)
        XCTAssertEqual(try server.post(server.introspectionURL, form: [("token", access)]).json?["active"] as? Bool, false)
        XCTAssertEqual(try server.stats().revocations, 1)
    }

    func testGoogleErrorShapes() throws {
        let server = try OAuthTestServer(flavor: .google, redirectURIs: [redirect])
        let verifier = String(repeating: "g", count: 50)
        let url = authorizeURL(server, challenge: try OAuthTestServer.pkceChallenge(for: verifier), state: "s",
                               scope: "https://mail.google.com/ openid email",
                               extra: [URLQueryItem(name: "access_type", value: "offline")])
        let code = try XCTUnwrap(try server.consent(at: url).redirectParameters["code"])
        let tokens = try server.post(server.tokenURL, form: withClient(server, [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect), ("code_verifier", verifier)]))
        XCTAssertEqual(tokens.status, 200, tokens.body)
        let refresh = try XCTUnwrap(tokens.json?["refresh_token"] as? String, "access_type=offline gives a refresh token")

        let refreshForm = [("grant_type", "refresh_token"), ("refresh_token", refresh)]
        let wrongSecret = try server.post(server.tokenURL, form: refreshForm + [("client_id", server.clientID), ("client_secret", "no")])
        XCTAssertEqual(wrongSecret.status, 401)
        XCTAssertEqual(wrongSecret.json?["error"] as? String, "invalid_client")
        XCTAssertNil(wrongSecret.json?["error_codes"], "Google bodies have no AADSTS codes")

        let unknown = try server.post(server.tokenURL, form: refreshForm + [("client_id", "nobody"), ("client_secret", "no")])
        XCTAssertEqual(unknown.json?["error_description"] as? String, "The OAuth client was not found.")

        // Google's /revoke takes the token alone.
        let revoked = try server.post(try XCTUnwrap(server.revocationURL), form: [("token", refresh)])
        XCTAssertEqual(revoked.status, 200, revoked.body)
        let afterRevoke = try server.post(server.tokenURL, form: withClient(server, refreshForm))
        XCTAssertEqual(afterRevoke.status, 400)
        XCTAssertEqual(afterRevoke.json?["error"] as? String, "invalid_grant")
        XCTAssertEqual(afterRevoke.json?["error_description"] as? String, "Token has been expired or revoked.")
        let again = try server.post(try XCTUnwrap(server.revocationURL), form: [("token", refresh)])
        XCTAssertEqual(again.json?["error"] as? String, "invalid_token")

        let device = try server.post(server.deviceURL, form: withClient(server, [("scope", "email")]))
        XCTAssertNotNil(device.json?["verification_url"] as? String, "Google names it verification_url")
        let pending = try server.post(server.tokenURL, form: withClient(server, [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device.json?["device_code"] as? String ?? "")]))
        XCTAssertEqual(pending.status, 428)
        XCTAssertEqual(pending.json?["error"] as? String, "authorization_pending")

        let appOnly = try server.post(server.tokenURL, form: withClient(server, [("grant_type", "client_credentials")]))
        XCTAssertEqual(appOnly.json?["error"] as? String, "unsupported_grant_type")

        let stats = try server.stats()
        XCTAssertEqual(stats.tokenRequests["refresh_token"], 3)
        XCTAssertEqual(stats.revocations, 1, "the refused second revocation is not counted")
    }
}
