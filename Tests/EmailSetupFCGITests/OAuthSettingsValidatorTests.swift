@testable import EmailSetupFCGI
import Smtp
import XCTest

/// The OAuth 2.0 fields of a save (issue 13): what each sign-in needs, all errors at
/// once, canonical spellings, and the client secret handled like the password.
final class OAuthSettingsValidatorTests: XCTestCase {
    let validator = SettingsValidator()
    let base: [(String, JSONValue)] = [("from_address", "app@example.com"), ("smtp_host", "smtp.office365.com"),
                                       ("smtp_port", "587"), ("smtp_connection_type", "STARTTLS")]

    func validate(_ extra: [(String, JSONValue)], stored: [String: String] = [:]) -> Result<ValidatedSettings, SettingsRefusal> {
        validator.validate(base + extra, stored: stored)
    }

    func errors(_ result: Result<ValidatedSettings, SettingsRefusal>) -> [String: String] {
        guard case .failure(let error) = result else { return [:] }
        return Dictionary(error.errors, uniquingKeysWith: { a, _ in a })
    }

    func testMicrosoftSignInNeedsMailboxClientAndTenantAllAtOnce() {
        let e = errors(validate([("smtp_authentication_type", "xoauth2")]))
        XCTAssertEqual(Set(e.keys), ["smtp_username", "oauth_client_id", "oauth_tenant"], "\(e)")
        XCTAssertTrue(e["smtp_username"]?.contains("mailbox") ?? false, "\(e)")
    }

    func testACompleteMicrosoftSignInIsCanonicalAndNeedsNoPassword() throws {
        let v = try validate([("smtp_authentication_type", "oauthbearer"), ("smtp_username", "app@contoso.com"),
                              ("oauth_provider", "microsoft"), ("oauth_grant", "client_credentials"),
                              ("oauth_tenant", "contoso.onmicrosoft.com"), ("oauth_client_id", "1111-2222"),
                              ("oauth_client_secret", "Y2lwaGVy")]).get()
        XCTAssertEqual(v.values["smtp_authentication_type"], "OAUTHBEARER")
        XCTAssertEqual(v.values["oauth_provider"], "Microsoft")
        XCTAssertEqual(v.clientSecret, .encrypted("Y2lwaGVy"))
        XCTAssertNil(v.values["oauth_client_secret"], "a secret is never stored as given")
        XCTAssertFalse(v.warnings.contains { $0.0 == "smtp_password" }, "OAuth needs no password: \(v.warnings)")
    }

    func testAppOnlyWithoutASecretWarnsAndGoogleHasNoAppOnly() throws {
        let v = try validate([("smtp_authentication_type", "XOAUTH2"), ("smtp_username", "a@contoso.com"),
                              ("oauth_grant", "client_credentials"), ("oauth_tenant", "contoso.onmicrosoft.com"),
                              ("oauth_client_id", "id")]).get()
        XCTAssertTrue(v.warnings.contains { $0.0 == "oauth_client_secret" }, "\(v.warnings)")
        let google = errors(validate([("smtp_authentication_type", "XOAUTH2"), ("smtp_username", "a@gmail.com"),
                                      ("oauth_provider", "Google"), ("oauth_grant", "client_credentials"), ("oauth_client_id", "id")]))
        XCTAssertNotNil(google["oauth_grant"], "\(google)")
    }

    func testGenericNeedsHTTPSEndpointsAndBadValuesAreRefused() {
        let e = errors(validate([("smtp_authentication_type", "XOAUTH2"), ("smtp_username", "a@example.org"),
                                 ("oauth_provider", "Generic"), ("oauth_client_id", "id"),
                                 ("oauth_token_endpoint", "http://idp.example.org/token"),
                                 ("oauth_tenant", "bad tenant!")]))
        XCTAssertTrue(e["oauth_token_endpoint"]?.contains("https://") ?? false, "\(e)")
        XCTAssertNotNil(e["oauth_authorization_endpoint"], "\(e)")
        XCTAssertNotNil(e["oauth_tenant"], "\(e)")
        XCTAssertNotNil(errors(validate([("oauth_provider", "Yahoo")]))["oauth_provider"])
    }

    func testReadOnlyFieldsFromGetAreIgnored() throws {
        XCTAssertNoThrow(try validate([("oauth_account", "x@example.com"), ("oauth_client_secret_set", true),
                                       ("oauth_redirect_uri", "https://x"), ("oauth_signed_in_at", "")]).get())
        XCTAssertNotNil(errors(validate([("oauth_refresh_token", "stolen")]))["oauth_refresh_token"], "never writable")
    }
}
