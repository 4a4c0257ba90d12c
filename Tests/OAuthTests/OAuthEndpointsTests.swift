import OAuth
import XCTest

final class OAuthEndpointsTests: XCTestCase {
    func testMicrosoftEndpointsArePerTenantWithoutRevocation() throws {
        let endpoints = try OAuthEndpoints.derived(provider: .microsoft, tenant: "contoso.onmicrosoft.com")
        let base = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0"
        XCTAssertEqual(endpoints, OAuthEndpoints(authorization: base + "/authorize", token: base + "/token",
                                                 device: base + "/devicecode", revocation: nil))
    }

    func testGoogleEndpoints() throws {
        let endpoints = try OAuthEndpoints.derived(provider: .google)
        XCTAssertEqual(endpoints.authorization, "https://accounts.google.com/o/oauth2/v2/auth")
        XCTAssertEqual(endpoints.token, "https://oauth2.googleapis.com/token")
        XCTAssertEqual(endpoints.device, "https://oauth2.googleapis.com/device/code")
        XCTAssertEqual(endpoints.revocation, "https://oauth2.googleapis.com/revoke")
    }

    func testBaseOverrideReplacesSchemeHostAndPortAndKeepsPaths() throws {
        let microsoft = try OAuthEndpoints.derived(provider: .microsoft, tenant: "9188040d-6c67-4c5b-b112-36a304b66dad",
                                                   baseOverride: "https://127.0.0.1:8443")
        XCTAssertEqual(microsoft.token, "https://127.0.0.1:8443/9188040d-6c67-4c5b-b112-36a304b66dad/oauth2/v2.0/token")
        XCTAssertEqual(microsoft.device, "https://127.0.0.1:8443/9188040d-6c67-4c5b-b112-36a304b66dad/oauth2/v2.0/devicecode")
        let google = try OAuthEndpoints.derived(provider: .google, baseOverride: "https://localhost:9443/")
        XCTAssertEqual(google, OAuthEndpoints(authorization: "https://localhost:9443/o/oauth2/v2/auth",
                                              token: "https://localhost:9443/token",
                                              device: "https://localhost:9443/device/code",
                                              revocation: "https://localhost:9443/revoke"))
        let sovereign = try OAuthEndpoints.derived(provider: .microsoft, tenant: "common", baseOverride: "https://login.microsoftonline.us")
        XCTAssertEqual(sovereign.authorization, "https://login.microsoftonline.us/common/oauth2/v2.0/authorize")
    }

    func testBadOverridesAndTenantsAreInvalidInput() {
        for override in ["http://127.0.0.1:8443", "https://127.0.0.1:8443/prefix", "127.0.0.1:8443", "https://user@host"] {
            XCTAssertThrowsError(try OAuthEndpoints.derived(provider: .google, baseOverride: override), override) {
                XCTAssertEqual(($0 as? OAuthError)?.kind, .invalidInput)
            }
        }
        for tenant in [nil, "", "contoso/../evil", "a b", "-x", "tenant?x=1"] as [String?] {
            XCTAssertThrowsError(try OAuthEndpoints.derived(provider: .microsoft, tenant: tenant), String(describing: tenant)) {
                XCTAssertEqual(($0 as? OAuthError)?.kind, .invalidInput)
                XCTAssertTrue(($0 as? OAuthError)?.hint.contains("tenant") ?? false)
            }
        }
    }

    func testGenericEndpointsAreTakenAsGivenButMustBeHTTPS() throws {
        let given = OAuthEndpoints(authorization: "https://idp.example/authorize", token: "https://idp.example/token",
                                   device: "https://idp.example/device", revocation: "https://idp.example/revoke")
        XCTAssertEqual(try OAuthEndpoints.derived(provider: .generic, generic: given), given)
        XCTAssertThrowsError(try OAuthEndpoints.derived(provider: .generic))
        var plain = given
        plain.token = "http://idp.example/token"
        XCTAssertThrowsError(try OAuthEndpoints.derived(provider: .generic, generic: plain)) {
            XCTAssertEqual(($0 as? OAuthError)?.kind, .invalidInput)
            XCTAssertTrue(($0 as? OAuthError)?.hint.contains("token endpoint") ?? false)
        }
    }

    func testProviderStoredValues() {
        XCTAssertEqual(OAuthProvider(storedValue: "microsoft"), .microsoft)
        XCTAssertEqual(OAuthProvider(storedValue: "Google"), .google)
        XCTAssertEqual(OAuthProvider(storedValue: "GENERIC"), .generic)
        XCTAssertNil(OAuthProvider(storedValue: "yahoo"))
    }
}
