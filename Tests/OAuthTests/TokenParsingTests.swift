@testable import OAuth
import XCTest

/// Token answers, id_tokens and provider error bodies, parsed without the network.
final class TokenParsingTests: XCTestCase {
    private func idToken(_ claims: [String: Any]) throws -> String {
        let header = Base64URL.encode(Array(#"{"alg":"RS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(Array(try JSONSerialization.data(withJSONObject: claims)))
        return "\(header).\(payload).c2lnbmF0dXJl"
    }

    private func body(_ object: [String: Any]) throws -> Data { try JSONSerialization.data(withJSONObject: object) }

    func testTokenAnswerWithRefreshTokenScopeAndAccount() throws {
        let answer = try body(["access_token": "at-1", "token_type": "Bearer", "expires_in": 3599, "refresh_token": "rt-1",
                               "scope": "https://outlook.office.com/SMTP.Send",
                               "id_token": try idToken(["preferred_username": "alice@contoso.example", "upn": "other@x"])])
        let tokens = try TokenSet.parse(answer, status: 200, endpoint: "https://t.example")
        XCTAssertEqual(tokens, TokenSet(accessToken: "at-1", expiresIn: 3599, refreshToken: "rt-1",
                                        scope: "https://outlook.office.com/SMTP.Send", account: "alice@contoso.example"))
    }

    func testAccountPrefersEmailThenPreferredUsernameThenUPN() throws {
        XCTAssertEqual(IDToken.account(try idToken(["email": "e@x", "preferred_username": "p@x", "upn": "u@x"])), "e@x")
        XCTAssertEqual(IDToken.account(try idToken(["upn": "u@x"])), "u@x")
        XCTAssertNil(IDToken.account(try idToken(["sub": "123"])))
        XCTAssertNil(IDToken.account("not-a-jwt"))
        XCTAssertNil(IDToken.account("a.%%%.c"))
    }

    func testMissingExpiryMeansOneHourAndStringNumbersAreRead() throws {
        XCTAssertEqual(try TokenSet.parse(try body(["access_token": "a", "token_type": "bearer"]), status: 200, endpoint: "e").expiresIn, 3600)
        XCTAssertEqual(try TokenSet.parse(try body(["access_token": "a", "expires_in": "120"]), status: 200, endpoint: "e").expiresIn, 120)
    }

    func testAnswersThatAreNotBearerTokensAreProtocolErrors() throws {
        for bad in [Data("<html>".utf8), try body(["token_type": "Bearer"]), try body(["access_token": "a", "token_type": "mac"])] {
            XCTAssertThrowsError(try TokenSet.parse(bad, status: 200, endpoint: "e")) {
                XCTAssertEqual(($0 as? OAuthError)?.kind, .protocol)
            }
        }
    }

    func testDeviceAuthorizationAcceptsGooglesVerificationURL() throws {
        let google = try DeviceAuthorization.parse(try body(["device_code": "d", "user_code": "ABC-DEF", "verification_url": "https://www.google.com/device",
                                                             "expires_in": 1800, "interval": 5]), status: 200, endpoint: "e")
        XCTAssertEqual(google, DeviceAuthorization(deviceCode: "d", userCode: "ABC-DEF", verificationURI: "https://www.google.com/device", interval: 5, expiresIn: 1800))
        let microsoft = try DeviceAuthorization.parse(try body(["device_code": "d", "user_code": "X", "verification_uri": "https://microsoft.com/devicelogin",
                                                                "expires_in": 900]), status: 200, endpoint: "e")
        XCTAssertEqual(microsoft.interval, 5)
        XCTAssertThrowsError(try DeviceAuthorization.parse(try body(["user_code": "X"]), status: 200, endpoint: "e"))
    }

    // MARK: - Error bodies into OAuthError with the right hint

    private func microsoftError(_ code: Int, _ error: String, request: OAuthRequest = .clientCredentials, status: Int = 401) throws -> OAuthError {
        let answer = try XCTUnwrap(ProviderErrorBody.parse(try body([
            "error": error, "error_description": "AADSTS\(code): Something. Trace ID: 1 Correlation ID: 2 Timestamp: 2026-01-01",
            "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z", "trace_id": "1", "correlation_id": "2"])))
        return OAuthHints.error(for: answer, httpStatus: status, provider: .microsoft, request: request, endpoint: "https://login.example/t")
    }

    func testMicrosoftCodesNameTheFixInTheEntraAdminCenter() throws {
        let wrongSecret = try microsoftError(7000215, "invalid_client")
        XCTAssertEqual(wrongSecret.code, "AADSTS7000215")
        XCTAssertEqual(wrongSecret.oauthError, "invalid_client")
        XCTAssertEqual(wrongSecret.kind, .authRejected)
        XCTAssertEqual(wrongSecret.httpStatus, 401)
        XCTAssertTrue(wrongSecret.hint.contains("Certificates & secrets") && wrongSecret.hint.contains("Value (not its Secret ID)"), wrongSecret.hint)

        let expired = try microsoftError(7000222, "invalid_client")
        XCTAssertTrue(expired.hint.contains("expired") && expired.hint.contains("add a new client secret"), expired.hint)

        let notFound = try microsoftError(700016, "unauthorized_client", status: 400)
        XCTAssertEqual(notFound.kind, .authRejected)
        XCTAssertTrue(notFound.hint.contains("Application (client) ID") && notFound.hint.contains("Directory (tenant) ID"), notFound.hint)

        let appConsent = try microsoftError(65001, "invalid_grant", status: 400)
        XCTAssertTrue(appConsent.hint.contains("SMTP.SendAsApp") && appConsent.hint.contains("Grant admin consent"), appConsent.hint)
        let userConsent = try microsoftError(65001, "invalid_grant", request: .authorizationCode, status: 400)
        XCTAssertTrue(userConsent.hint.contains("SMTP.Send,") && userConsent.hint.contains("API permissions"), userConsent.hint)

        let password = try microsoftError(50126, "invalid_grant", request: .authorizationCode, status: 400)
        XCTAssertTrue(password.hint.contains("password"), password.hint)
        XCTAssertEqual(password.code, "AADSTS50126")
    }

    func testMicrosoftCodeIsReadFromTheDescriptionWhenErrorCodesIsMissing() throws {
        let answer = try XCTUnwrap(ProviderErrorBody.parse(try body(["error": "invalid_client",
                                                                     "error_description": "AADSTS7000222: The provided client secret keys for app 'x' are expired."])))
        XCTAssertEqual(answer.errorCodes, [7000222])
        XCTAssertEqual(answer.mostSpecificCode, "AADSTS7000222")
    }

    func testGoogleInvalidGrantOnRefreshExplainsRevocationAndTestingMode() throws {
        let answer = try XCTUnwrap(ProviderErrorBody.parse(Data(#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#.utf8)))
        let error = OAuthHints.error(for: answer, httpStatus: 400, provider: .google, request: .refresh, endpoint: "https://oauth2.googleapis.com/token")
        XCTAssertEqual(error.kind, .authRejected)
        XCTAssertEqual(error.code, "invalid_grant")
        XCTAssertEqual(error.errorDescription, "Token has been expired or revoked.")
        XCTAssertTrue(error.hint.contains("sign in with Google again"), error.hint)
        XCTAssertTrue(error.hint.contains("7 days") && error.hint.contains("In production") && error.hint.contains("OAuth consent screen"), error.hint)

        let unauthorized = OAuthHints.error(for: ProviderErrorBody(error: "unauthorized_client", errorDescription: "Unauthorized", errorCodes: []),
                                            httpStatus: 401, provider: .google, request: .refresh, endpoint: nil)
        XCTAssertEqual(unauthorized.kind, .authRejected)
        XCTAssertTrue(unauthorized.hint.contains("APIs & Services → Credentials") && unauthorized.hint.contains("Web application"), unauthorized.hint)
    }

    func testEveryRFC6749ErrorHasItsOwnHintAndKind() {
        let expected: [(String, OAuthError.Kind, String)] = [
            ("invalid_request", .rejectedPermanent, "malformed"),
            ("invalid_client", .authRejected, "client secret is wrong"),
            ("invalid_grant", .authRejected, "refresh token is expired or revoked"),
            ("unauthorized_client", .authRejected, "may not use this grant"),
            ("unsupported_grant_type", .rejectedPermanent, "does not support this grant"),
            ("invalid_scope", .rejectedPermanent, "scope"),
            ("access_denied", .authRejected, "declined"),
            ("server_error", .rejectedTemporary, "try again"),
            ("temporarily_unavailable", .rejectedTemporary, "try again"),
            ("expired_token", .timeout, "device code expired"),
            ("unsupported_token_type", .rejectedPermanent, "cannot revoke"),
        ]
        for (code, kind, phrase) in expected {
            let error = OAuthHints.error(for: ProviderErrorBody(error: code, errorDescription: nil, errorCodes: []),
                                         httpStatus: 400, provider: .generic, request: .refresh, endpoint: nil)
            XCTAssertEqual(error.kind, kind, code)
            XCTAssertTrue(error.hint.contains(phrase), "\(code): \(error.hint)")
        }
        XCTAssertFalse(OAuthError(kind: .timeout, code: "expired_token", hint: "").isTransient)
        XCTAssertTrue(OAuthError(kind: .rejectedTemporary, code: "server_error", hint: "").isTransient)
    }

    func testNonOAuthBodiesAreJudgedByStatus() {
        XCTAssertNil(ProviderErrorBody.parse(Data("<html>Bad Gateway</html>".utf8)))
        XCTAssertEqual(OAuthHints.error(forStatus: 503, endpoint: "e").kind, .rejectedTemporary)
        XCTAssertEqual(OAuthHints.error(forStatus: 401, endpoint: "e").kind, .authRejected)
        XCTAssertEqual(OAuthHints.error(forStatus: 404, endpoint: "e").kind, .rejectedPermanent)
    }

    func testAuthorizationCallbackErrorsGetHints() {
        let denied = OAuthError.authorizationResponse(error: "access_denied", description: "The user denied", provider: .microsoft)
        XCTAssertEqual(denied.kind, .authRejected)
        XCTAssertTrue(denied.hint.contains("declined"))
        let mismatch = OAuthError.authorizationResponse(error: "redirect_uri_mismatch", description: nil, provider: .google)
        XCTAssertTrue(mismatch.hint.contains("Authorized redirect URIs"), mismatch.hint)
    }

    func testErrorEncodesTheDiagnosisFields() throws {
        let error = OAuthError(kind: .authRejected, code: "AADSTS7000215", oauthError: "invalid_client", errorDescription: "AADSTS7000215: Invalid client secret provided.",
                               httpStatus: 401, endpoint: "https://login.example/t", hint: "h")
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(error)) as? [String: Any]
        XCTAssertEqual(object?["kind"] as? String, "auth_rejected")
        XCTAssertEqual(object?["code"] as? String, "AADSTS7000215")
        XCTAssertEqual(object?["error"] as? String, "invalid_client")
        XCTAssertEqual(object?["http_status"] as? Int, 401)
        XCTAssertEqual(object?["transient"] as? Bool, false)
        XCTAssertTrue(error.description.contains("auth_rejected, AADSTS7000215, HTTP 401"))
    }
}
