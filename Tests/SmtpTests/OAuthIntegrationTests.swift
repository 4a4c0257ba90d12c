import Foundation
import Smtp
import TestSupport
import XCTest

/// A JWT-sized access token (Microsoft's are 1–2 KB): long AUTH lines must pass.
func jwtLikeToken(_ seed: String = UUID().uuidString) -> String {
    let body = Data((seed + String(repeating: "-claims", count: 160)).utf8).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    return "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + body + ".c2lnbmF0dXJl"
}

/// XOAUTH2 and OAUTHBEARER against the real aiosmtpd OAuth fixture, as Exchange Online
/// and as Gmail, in its `--tokens-file` mode; messages checked in its spool.
final class OAuthIntegrationTests: XCTestCase {
    private let user = "alice@example.test"

    private func settings(_ server: OAuthSmtpTestServer, _ mechanism: SmtpSettings.Authentication, token: String,
                          security: SmtpSettings.Security = .startTLSRequired, user: String? = nil) throws -> SmtpSettings {
        try loopbackSettings(port: server.port, security: security, host: "localhost") {
            $0.authentication = mechanism
            $0.username = user ?? self.user
            $0.accessToken = { token }
            $0.senderAddress = user ?? self.user
        }
    }

    private func send(_ settings: SmtpSettings, subject: String = "OAuth") throws -> SmtpDeliveryReport {
        try SmtpClient.send(envelope: Envelope(from: settings.senderAddress ?? user, recipients: ["ops@example.test"]),
                            message: testMessage(from: settings.senderAddress ?? user, to: "ops@example.test", subject: subject), settings: settings)
    }

    /// Neither the token nor any base64 form of it, alone or in an initial response.
    private func assertNoToken(_ texts: [String], token: String, user: String, port: Int, file: StaticString = #filePath, line: UInt = #line) {
        let secrets = [token, Data(token.utf8).base64EncodedString(),
                       Data("user=\(user)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8).base64EncodedString(),
                       Data("n,a=\(user),\u{1}host=localhost\u{1}port=\(port)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8).base64EncodedString()]
        for text in texts {
            for secret in secrets { XCTAssertFalse(text.contains(secret), "token leaked into: \(text.prefix(300))", file: file, line: line) }
        }
    }

    func testBothMechanismsDeliverThroughBothFlavours() throws {
        let token = jwtLikeToken()
        for (flavor, mode) in [(OAuthSmtpTestServer.Flavor.exchange, OAuthSmtpTestServer.Mode.starttls), (.gmail, .implicit)] {
            let server = try OAuthSmtpTestServer(flavor: flavor, mode: mode, tokens: .map([token: user]))
            let security: SmtpSettings.Security = mode == .implicit ? .implicitTLS : .startTLSRequired
            for mechanism in [SmtpSettings.Authentication.xoauth2, .oauthBearer] {
                let report = try send(settings(server, mechanism, token: token, security: security), subject: "\(flavor) \(mechanism)")
                XCTAssertEqual(report.server.authMechanism, mechanism == .xoauth2 ? "XOAUTH2" : "OAUTHBEARER")
                let success = flavor == .exchange ? "S: 235 2.7.0 Authentication successful" : "S: 235 2.7.0 Accepted"
                XCTAssertTrue(report.transcript.text.contains(success), report.transcript.text)
                XCTAssertTrue(report.transcript.text.contains("C: AUTH \(report.server.authMechanism ?? "") <redacted>"))
                assertNoToken([report.transcript.text], token: token, user: user, port: server.port)
            }
            let received = try server.waitForMessages(count: 2)
            XCTAssertEqual(received.map(\.mechanism), ["XOAUTH2", "OAUTHBEARER"])
            XCTAssertEqual(received.map(\.user), [user, user])
            XCTAssertTrue(received.allSatisfy(\.tls))
            XCTAssertEqual(received[0].mailFrom, user)
            XCTAssertTrue(received[1].text.contains("Subject: \(flavor) oauthBearer\r\n"), received[1].text)
        }
    }

    /// An app-only token (client credentials) sends as any mailbox it was granted, and only those.
    func testAppOnlyTokenSendsAsItsMailboxesAndAutoPrefersOAUTHBEARER() throws {
        let token = jwtLikeToken()
        let server = try OAuthSmtpTestServer(flavor: .exchange, tokens: .map([token: nil]), mailboxes: ["shared@example.test"])
        let report = try send(settings(server, .auto, token: token, user: "shared@example.test"))
        XCTAssertEqual(report.server.authMechanism, "OAUTHBEARER")
        XCTAssertEqual(try server.waitForMessages(count: 1)[0].user, "shared@example.test")
        assertSmtpError(try send(settings(server, .xoauth2, token: token, user: "other@example.test")), stage: .auth, kind: .authRejected)
    }

    /// Gmail's failure: the 334 JSON challenge, the client's answer, then 535 5.7.8.
    func testBadTokenAtGmailIsTheJSONExchange() throws {
        let good = jwtLikeToken(), revoked = jwtLikeToken()
        let server = try OAuthSmtpTestServer(flavor: .gmail, tokens: .map([good: user]))
        for (mechanism, answer) in [(SmtpSettings.Authentication.xoauth2, "C: \n"), (.oauthBearer, "C: AQ==\n")] {
            assertSmtpError(try send(settings(server, mechanism, token: revoked)), stage: .auth, kind: .authRejected) { error in
                XCTAssertEqual(error.replyCode, 535)
                XCTAssertEqual(error.enhancedCode, "5.7.8")
                XCTAssertEqual(error.replyText, "Username and Password not accepted. Learn more at\n https://support.google.com/mail/?p=BadCredentials fixture - gsmtp")
                XCTAssertEqual(error.hint, "the server refused the access token (535 5.7.8; status 400, scope https://mail.google.com/): it expired, was revoked or lacks the scope https://mail.google.com/, or User name is not the account that signed in; sign in with OAuth 2.0 again")
                let text = error.transcript.text + "\n"
                XCTAssertTrue(text.contains(#"*: the server's OAuth error: {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#), text)
                XCTAssertTrue(text.contains(answer), text)
                self.assertNoToken([error.transcript.text, error.description, error.hint], token: revoked, user: self.user, port: server.port)
            }
        }
        // A good token for another user is refused the same way.
        assertSmtpError(try send(settings(server, .xoauth2, token: good, user: "mallory@example.test")), stage: .auth, kind: .authRejected)
        XCTAssertEqual(server.messageCount, 0)
    }

    /// Exchange Online's failure: 535 5.7.3 at once, with the hint to enable Authenticated SMTP.
    func testBadTokenAtExchangeNamesAuthenticatedSMTP() throws {
        let token = jwtLikeToken()
        let server = try OAuthSmtpTestServer(flavor: .exchange, tokens: .map([token: user]))
        try server.setTokens([:])   // revoked while the server runs
        for mechanism in [SmtpSettings.Authentication.xoauth2, .oauthBearer] {
            assertSmtpError(try send(settings(server, mechanism, token: token)), stage: .auth, kind: .authRejected) { error in
                XCTAssertEqual(error.replyCode, 535)
                XCTAssertEqual(error.enhancedCode, "5.7.3")
                XCTAssertEqual(error.replyText, "Authentication unsuccessful [SN2PR00CA0018.namprd00.prod.outlook.com]")
                XCTAssertTrue(error.hint.hasPrefix("the access token was refused: SMTP AUTH is disabled for this mailbox or tenant: enable Authenticated SMTP (535 5.7.3)"), error.hint)
                self.assertNoToken([error.transcript.text, error.description, error.hint], token: token, user: self.user, port: server.port)
            }
        }
    }

    /// A password against Exchange Online after the basic-auth retirement: switch to OAuth 2.0.
    func testPasswordAgainstExchangeSaysSwitchToOAuth() throws {
        let disabled = try OAuthSmtpTestServer(flavor: .exchange, tokens: .map([:]), basicAuth: .disabled)
        let unsupported = try OAuthSmtpTestServer(flavor: .exchange, tokens: .map([:]), basicAuth: .unsupported)
        for (server, code, enhanced) in [(disabled, 535, "5.7.139"), (unsupported, 550, "5.7.30")] {
            for mechanism in [SmtpSettings.Authentication.plain, .login] {
                let settings = try loopbackSettings(port: server.port, security: .startTLSRequired, host: "localhost") {
                    $0.authentication = mechanism
                    $0.username = self.user
                    $0.password = { "Winter2026!" }
                }
                assertSmtpError(try send(settings), stage: .auth, kind: .authRejected) { error in
                    XCTAssertEqual(error.replyCode, code)
                    XCTAssertEqual(error.enhancedCode, enhanced)
                    XCTAssertTrue(error.hint.hasSuffix("switch Sign-in method to OAuth 2.0"), error.hint)
                    XCTAssertFalse(error.transcript.text.contains("Winter2026!"))
                }
            }
        }
    }
}
