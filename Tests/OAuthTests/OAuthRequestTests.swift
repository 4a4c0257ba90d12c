@testable import OAuth
import HTTPS
import XCTest

/// Request building without the network: authorization URLs, form encoding, scopes.
final class OAuthRequestTests: XCTestCase {
    private func query(_ url: String) -> [String: String] {
        var result: [String: String] = [:]
        for item in URLComponents(string: url)?.queryItems ?? [] { result[item.name] = item.value ?? "" }
        return result
    }

    func testMicrosoftAuthorizationURLCarriesCodeFlowWithPKCE() throws {
        let endpoints = try OAuthEndpoints.derived(provider: .microsoft, tenant: "contoso.onmicrosoft.com")
        let client = OAuthClient(OAuthClientConfig(provider: .microsoft, endpoints: endpoints, clientID: "app-id"))
        let url = try client.authorizationURL(state: "st4te", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                              redirectURI: "https://admin.example/api/setup/oauth/callback")
        XCTAssertTrue(url.hasPrefix("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?"))
        XCTAssertEqual(query(url), [
            "response_type": "code", "client_id": "app-id",
            "redirect_uri": "https://admin.example/api/setup/oauth/callback",
            "scope": "https://outlook.office.com/SMTP.Send offline_access openid email",
            "state": "st4te", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        ])
        // Spaces and reserved characters are percent-encoded, never left raw.
        XCTAssertTrue(url.contains("scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20offline_access"))
    }

    func testGoogleAuthorizationURLAsksForOfflineAccessAndConsent() throws {
        let client = OAuthClient(OAuthClientConfig(provider: .google, endpoints: try .derived(provider: .google), clientID: "x.apps.googleusercontent.com"))
        let url = try client.authorizationURL(state: "s", codeChallenge: "c", redirectURI: "https://a.example/cb")
        let items = query(url)
        XCTAssertEqual(items["access_type"], "offline")
        XCTAssertEqual(items["prompt"], "consent")
        XCTAssertEqual(items["scope"], "https://mail.google.com/ openid email")
        XCTAssertEqual(items["code_challenge_method"], "S256")
        XCTAssertEqual(items["response_type"], "code")
    }

    func testFormEncodingEscapesEverythingButUnreserved() {
        XCTAssertEqual(FormEncoding.encode([("client_secret", "a+b/c=d&e f~g.h_i-j"), ("scope", "x y")]),
                       "client_secret=a%2Bb%2Fc%3Dd%26e%20f~g.h_i-j&scope=x%20y")
        XCTAssertEqual(FormEncoding.escape("grüße"), "gr%C3%BC%C3%9Fe")
    }

    func testDefaultScopesPerProviderAndGrant() {
        XCTAssertEqual(OAuthClientConfig.defaultScope(provider: .microsoft, grant: .clientCredentials), "https://outlook.office365.com/.default")
        XCTAssertEqual(OAuthClientConfig.defaultScope(provider: .microsoft, grant: .authorizationCode),
                       "https://outlook.office.com/SMTP.Send offline_access openid email")
        XCTAssertEqual(OAuthClientConfig.defaultScope(provider: .microsoft, grant: .deviceCode),
                       "https://outlook.office.com/SMTP.Send offline_access openid email")
        XCTAssertEqual(OAuthClientConfig.defaultScope(provider: .google, grant: .authorizationCode), "https://mail.google.com/ openid email")
        let endpoints = OAuthEndpoints(authorization: "https://i.example/a", token: "https://i.example/t")
        XCTAssertEqual(OAuthClientConfig(provider: .generic, endpoints: endpoints, clientID: "c", scope: " smtp ").scope, "smtp")
        XCTAssertEqual(OAuthClientConfig(provider: .microsoft, endpoints: endpoints, clientID: "c", scope: "", grant: .clientCredentials).scope,
                       "https://outlook.office365.com/.default")
    }

    func testDescriptionsNeverShowSecretsOrTokens() throws {
        let endpoints = OAuthEndpoints(authorization: "https://i.example/a", token: "https://i.example/t")
        let config = OAuthClientConfig(provider: .generic, endpoints: endpoints, clientID: "c", clientSecret: "S3CRET-value")
        XCTAssertFalse(String(describing: config).contains("S3CRET"))
        let tokens = TokenSet(accessToken: "ACCESS-abc", expiresIn: 60, refreshToken: "REFRESH-xyz", account: "a@b.example")
        for text in [String(describing: tokens), String(reflecting: tokens), "\(tokens)"] {
            XCTAssertFalse(text.contains("ACCESS-abc"), text)
            XCTAssertFalse(text.contains("REFRESH-xyz"), text)
        }
        let device = DeviceAuthorization(deviceCode: "DEVICE-secret", userCode: "ABCD-EFGH", verificationURI: "https://v.example", expiresIn: 900)
        XCTAssertFalse(String(describing: device).contains("DEVICE-secret"))
    }
}
