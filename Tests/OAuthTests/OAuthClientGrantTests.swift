import Foundation
import OAuth
import TestSupport
import XCTest

/// Each grant's request as it reaches a real HTTPS server (form fields, client_secret_post),
/// and the answers' parsing, against canned answers in Microsoft's and Google's formats.
final class OAuthClientGrantTests: XCTestCase {
    private static let shared = Result { try CannedHTTPSServer() }
    private var server: CannedHTTPSServer { get throws { try Self.shared.get() } }

    private func client(_ provider: OAuthProvider, token: String, device: String? = nil, revocation: String? = nil,
                        grant: OAuthGrant = .authorizationCode, secret: String? = "s3cret+/=") throws -> OAuthClient {
        let endpoints = OAuthEndpoints(authorization: try server.baseURL + "/authorize", token: token, device: device, revocation: revocation)
        return OAuthClient(OAuthClientConfig(provider: provider, endpoints: endpoints, clientID: "client-1", clientSecret: secret,
                                             grant: grant, caFile: try server.caFile, connectTimeout: 5, deadline: 10))
    }

    /// The last request whose path starts with `prefix` and carries `marker` in the body.
    private func lastRequest(marker: String) throws -> CannedHTTPSServer.Request {
        try XCTUnwrap(try server.requests().last { $0.body.contains(marker) })
    }

    private let tokenAnswer = #"{"access_token":"AT-1","token_type":"Bearer","expires_in":3599,"refresh_token":"RT-2","scope":"https://mail.google.com/"}"#

    func testClientCredentialsSendsTheSecretInTheBodyWithTheDefaultScope() throws {
        let tokenURL = try server.answerURL(status: 200, body: #"{"access_token":"AT-app","token_type":"Bearer","expires_in":3599,"ext_expires_in":3599}"#)
        let tokens = try client(.microsoft, token: tokenURL, grant: .clientCredentials).clientCredentials()
        XCTAssertEqual(tokens, TokenSet(accessToken: "AT-app", expiresIn: 3599))
        let form = try lastRequest(marker: "client_credentials").form
        XCTAssertEqual(form, ["grant_type": "client_credentials", "scope": "https://outlook.office365.com/.default",
                              "client_id": "client-1", "client_secret": "s3cret+/="])
    }

    func testMicrosoftErrorAnswerBecomesAADSTSCodeWithHint() throws {
        let body = #"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app 'client-1' are expired.","error_codes":[7000222],"timestamp":"2026-01-01 00:00:00Z","trace_id":"t","correlation_id":"c"}"#
        do {
            _ = try client(.microsoft, token: try server.answerURL(status: 401, body: body), grant: .clientCredentials).clientCredentials()
            XCTFail("expected an error")
        } catch let error as OAuthError {
            XCTAssertEqual(error.kind, .authRejected)
            XCTAssertEqual(error.code, "AADSTS7000222")
            XCTAssertEqual(error.httpStatus, 401)
            XCTAssertTrue(error.hint.contains("add a new client secret"), error.hint)
            XCTAssertFalse(error.description.contains("s3cret"))
        }
    }

    func testCodeExchangeSendsVerifierAndRedirectURI() throws {
        let tokens = try client(.google, token: try server.answerURL(status: 200, body: tokenAnswer))
            .exchangeCode("code-123", verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", redirectURI: "https://admin.example/cb")
        XCTAssertEqual(tokens.refreshToken, "RT-2")
        XCTAssertEqual(try lastRequest(marker: "code-123").form, [
            "grant_type": "authorization_code", "code": "code-123", "redirect_uri": "https://admin.example/cb",
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "client_id": "client-1", "client_secret": "s3cret+/="])
    }

    func testRefreshSendsScopeToMicrosoftOnlyAndReturnsTheRotatedToken() throws {
        let url = try server.answerURL(status: 200, body: tokenAnswer)
        XCTAssertEqual(try client(.microsoft, token: url).refresh(refreshToken: "RT-ms").refreshToken, "RT-2")
        XCTAssertEqual(try lastRequest(marker: "RT-ms").form["scope"], "https://outlook.office.com/SMTP.Send offline_access openid email")
        _ = try client(.google, token: url).refresh(refreshToken: "RT-google")
        let google = try lastRequest(marker: "RT-google").form
        XCTAssertNil(google["scope"])
        XCTAssertEqual(google["grant_type"], "refresh_token")
        XCTAssertEqual(google["client_secret"], "s3cret+/=")
    }

    func testGoogleRevokedRefreshTokenNamesTheFix() throws {
        let url = try server.answerURL(status: 400, body: #"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#)
        XCTAssertThrowsError(try client(.google, token: url).refresh(refreshToken: "RT-dead")) { error in
            let error = error as? OAuthError
            XCTAssertEqual(error?.code, "invalid_grant")
            XCTAssertEqual(error?.kind, .authRejected)
            XCTAssertTrue(error?.hint.contains("7 days") ?? false)
        }
    }

    func testDeviceFlowPendingSlowDownThenGranted() throws {
        let server = try server
        let deviceURL = server.answerURL(status: 200, body: #"{"device_code":"DC-1","user_code":"WDJB-MJHT","verification_uri":"https://example.test/device","expires_in":900,"interval":1}"#)
        let tokenURL = server.sequenceURL(key: "device-\(UUID().uuidString)", steps: [
            (400, #"{"error":"authorization_pending"}"#), (400, #"{"error":"slow_down"}"#), (200, tokenAnswer)])
        let client = try client(.generic, token: tokenURL, device: deviceURL)
        let start = try client.startDeviceAuthorization()
        XCTAssertEqual(start.userCode, "WDJB-MJHT")
        XCTAssertEqual(start.interval, 1)
        XCTAssertEqual(try lastRequest(marker: "scope=&client_id=client-1").form, ["scope": "", "client_id": "client-1", "client_secret": "s3cret+/="])
        XCTAssertEqual(try client.pollDeviceAuthorization(deviceCode: start.deviceCode), .pending)
        XCTAssertEqual(try client.pollDeviceAuthorization(deviceCode: start.deviceCode), .slowDown)
        guard case .granted(let tokens) = try client.pollDeviceAuthorization(deviceCode: start.deviceCode) else {
            return XCTFail("expected tokens")
        }
        XCTAssertEqual(tokens.accessToken, "AT-1")
        let poll = try lastRequest(marker: "DC-1").form
        XCTAssertEqual(poll["grant_type"], "urn:ietf:params:oauth:grant-type:device_code")
        XCTAssertEqual(poll["client_secret"], "s3cret+/=")
    }

    func testExpiredDeviceCodeIsATimeoutAndAPublicClientSendsNoSecret() throws {
        let url = try server.answerURL(status: 400, body: #"{"error":"expired_token","error_description":"AADSTS70020: The provided value for the input parameter 'device_code' is not valid.","error_codes":[70020]}"#)
        XCTAssertThrowsError(try client(.microsoft, token: url, secret: nil).pollDeviceAuthorization(deviceCode: "DC-ms")) { error in
            XCTAssertEqual((error as? OAuthError)?.kind, .timeout)
            XCTAssertTrue((error as? OAuthError)?.hint.contains("start the device sign-in again") ?? false)
        }
        XCTAssertEqual(try lastRequest(marker: "DC-ms").form, ["grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                                                               "device_code": "DC-ms", "client_id": "client-1"])
    }

    func testRevocationPostsTheTokenAndMicrosoftHasNone() throws {
        let revoke = try server.answerURL(status: 200, body: "")
        XCTAssertEqual(try client(.google, token: revoke, revocation: revoke).revoke(token: "RT-bye"), .revoked)
        XCTAssertEqual(try lastRequest(marker: "RT-bye").form["token_type_hint"], "refresh_token")
        XCTAssertEqual(try client(.microsoft, token: revoke).revoke(token: "RT-ms"), .unsupported)
        let refused = try server.answerURL(status: 400, body: #"{"error":"unsupported_token_type"}"#)
        XCTAssertThrowsError(try client(.generic, token: revoke, revocation: refused).revoke(token: "x"))
    }

    func testHTMLErrorPageIsJudgedByStatus() throws {
        let url = try server.answerURL(status: 503, body: "<html>down</html>", contentType: "text/html")
        XCTAssertThrowsError(try client(.generic, token: url).refresh(refreshToken: "r")) { error in
            XCTAssertEqual((error as? OAuthError)?.kind, .rejectedTemporary)
            XCTAssertEqual((error as? OAuthError)?.httpStatus, 503)
        }
    }
}
