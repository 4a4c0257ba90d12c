import Foundation
import XCTest
@testable import Smtp

/// XOAUTH2 and OAUTHBEARER byte for byte against the examples that Google's "XOAUTH2
/// protocol" page, Microsoft's "Authenticate an IMAP, POP or SMTP connection using
/// OAuth" and RFC 7628 publish, and the hints for their refusals.
final class OAuthMechanismTests: XCTestCase {
    func testXOAUTH2MatchesGoogleAndMicrosoftExamples() {
        // Google's page (and Microsoft's SMTP exchange, which reuses it).
        XCTAssertEqual(OAuthSASL.xoauth2(username: "someuser@example.com", token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
                       "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==")
        // Microsoft's SASL XOAUTH2 section.
        XCTAssertEqual(OAuthSASL.xoauth2(username: "test@contoso.onmicrosoft.com", token: "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA"),
                       "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ==")
    }

    func testOAUTHBEARERMatchesRFC7628SMTPExample() {
        let response = OAuthSASL.oauthBearer(username: "user@example.com", token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                                             host: "server.example.com", port: 587)
        XCTAssertEqual(response, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB")
        XCTAssertEqual(String(decoding: AuthEncoding.decodeBase64(response) ?? [], as: UTF8.self),
                       "n,a=user@example.com,\u{1}host=server.example.com\u{1}port=587\u{1}auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\u{1}\u{1}")
    }

    func testOAUTHBEARERGS2HeaderEscapesAndDropsIPv6Brackets() {
        let decoded = { (user: String, host: String) in
            String(decoding: AuthEncoding.decodeBase64(OAuthSASL.oauthBearer(username: user, token: "t", host: host, port: 25)) ?? [], as: UTF8.self)
        }
        XCTAssertEqual(decoded("a,b=c@example.com", "::1"), "n,a=a=2Cb=3Dc@example.com,\u{1}host=::1\u{1}port=25\u{1}auth=Bearer t\u{1}\u{1}")
        XCTAssertEqual(decoded("", "[::1]"), "n,,\u{1}host=::1\u{1}port=25\u{1}auth=Bearer t\u{1}\u{1}")
    }

    func testErrorChallengesDecode() {
        // RFC 7628 §4.4 (SMTP, failure).
        XCTAssertEqual(OAuthSASL.serverError(challenge: "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciBtYWMiLCJzY29wZSI6Imh0dHBzOi8vbWFpbC5leGFtcGxlLmNvbS8ifQ=="),
                       OAuthSASL.ServerError(status: "invalid_token", schemes: "bearer mac", scope: "https://mail.example.com/",
                                             json: #"{"status":"invalid_token","schemes":"bearer mac","scope":"https://mail.example.com/"}"#))
        // Google's SMTP error response (with its trailing newline).
        let google = OAuthSASL.serverError(challenge: "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K")
        XCTAssertEqual(google?.status, "401")
        XCTAssertEqual(google?.scope, "https://mail.google.com/")
        XCTAssertEqual(google?.json, #"{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}"#)
        XCTAssertNil(OAuthSASL.serverError(challenge: ""))
        XCTAssertNil(OAuthSASL.serverError(challenge: "VXNlcm5hbWU6"))
    }

    func testStoredValuesAndStage() {
        XCTAssertEqual(SmtpSettings.Authentication(storedValue: "XOAUTH2"), .xoauth2)
        XCTAssertEqual(SmtpSettings.Authentication(storedValue: "OAUTHBEARER"), .oauthBearer)
        XCTAssertEqual(SmtpSettings.Authentication(rawValue: "oauthbearer"), .oauthBearer)
        XCTAssertEqual(SmtpError.Stage.oauth.rawValue, "oauth")
    }

    private let context = Diagnosis.Context(host: "smtp.office365.com", port: 587, security: .startTLSRequired,
                                            commandTimeout: 10, connectTimeout: 10, sessionTimeout: 60)

    /// The replies of issue 13, as Microsoft words them.
    func testMicrosoftBasicAuthRetirementSaysSwitchToOAuth() {
        let disabled = Diagnosis.reply(SmtpReply(code: 535, enhancedCode: "5.7.139", lines: ["5.7.139 Authentication unsuccessful, basic authentication is disabled."]),
                                       stage: .auth, context: context)
        XCTAssertEqual(disabled.0, .authRejected)
        XCTAssertTrue(disabled.1.hasSuffix("switch Sign-in method to OAuth 2.0"), disabled.1)
        XCTAssertTrue(disabled.1.hasPrefix("the server no longer accepts passwords (535 5.7.139"), disabled.1)
        let unsupported = Diagnosis.reply(SmtpReply(code: 550, enhancedCode: "5.7.30", lines: ["5.7.30 Basic authentication is not supported for Client Submission."]),
                                          stage: .auth, context: context)
        XCTAssertEqual(unsupported.0, .authRejected)
        XCTAssertTrue(unsupported.1.contains("switch Sign-in method to OAuth 2.0"), unsupported.1)
        let tenant = Diagnosis.reply(SmtpReply(code: 535, enhancedCode: "5.7.139", lines: ["5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."]),
                                     stage: .auth, context: context)
        XCTAssertTrue(tenant.1.hasPrefix("SMTP AUTH is disabled for this mailbox or tenant: enable Authenticated SMTP (535 5.7.139)"), tenant.1)
        // A wrong password stays a wrong password.
        let wrong = Diagnosis.reply(SmtpReply(code: 535, enhancedCode: "5.7.139", lines: ["5.7.139 Authentication unsuccessful, the user credentials were incorrect."]),
                                    stage: .auth, context: context)
        XCTAssertTrue(wrong.1.hasPrefix("credentials rejected (535 5.7.139): check the user name and password"), wrong.1)
    }

    func testOAuthRefusalHints() {
        // Microsoft's documented SMTP failure.
        let exchange = Diagnosis.oauthReply(SmtpReply(code: 535, enhancedCode: "5.7.3", lines: ["5.7.3 Authentication unsuccessful [SN2PR00CA0018.namprd00.prod.outlook.com]"]),
                                            serverError: nil, context: context)
        XCTAssertEqual(exchange.0, .authRejected)
        XCTAssertTrue(exchange.1.contains("SMTP AUTH is disabled for this mailbox or tenant: enable Authenticated SMTP (535 5.7.3)"), exchange.1)
        let expired = Diagnosis.oauthReply(SmtpReply(code: 535, enhancedCode: "5.7.8", lines: ["5.7.8 x"]),
                                           serverError: .init(status: "invalid_token", schemes: "bearer", scope: "https://mail.example.com/", json: ""), context: context)
        XCTAssertEqual(expired.1, "the access token is invalid, expired or revoked (535 5.7.8; status invalid_token, scope https://mail.example.com/): sign in with OAuth 2.0 again")
        let scope = Diagnosis.oauthReply(SmtpReply(code: 535, lines: ["no"]),
                                         serverError: .init(status: "insufficient_scope", schemes: nil, scope: "https://mail.google.com/", json: ""), context: context)
        XCTAssertEqual(scope.1, "the access token lacks the permission to send mail (535; status insufficient_scope, scope https://mail.google.com/): grant the scope https://mail.google.com/ and sign in with OAuth 2.0 again")
        let gmail = Diagnosis.oauthReply(SmtpReply(code: 535, enhancedCode: "5.7.8", lines: ["5.7.8 Username and Password not accepted."]),
                                         serverError: .init(status: "400", schemes: "Bearer", scope: "https://mail.google.com/", json: ""), context: context)
        XCTAssertTrue(gmail.1.hasPrefix("the server refused the access token (535 5.7.8; status 400, scope https://mail.google.com/): it expired, was revoked or lacks the scope https://mail.google.com/"), gmail.1)
        XCTAssertEqual(Diagnosis.oauthReply(SmtpReply(code: 454, enhancedCode: "4.7.0", lines: ["try later"]), serverError: nil, context: context).0, .rejectedTemporary)
    }
}

/// OAuth sessions over the scripted peer: the exact bytes on the wire, the failure
/// exchange, redaction, Auto's choice and the token source's failures.
final class OAuthSessionTests: XCTestCase {
    /// Google's example user and token.
    private let user = "someuser@example.com"
    private let token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    private let googleEHLO = ["SIZE 35651584", "8BITMIME", "AUTH LOGIN PLAIN XOAUTH XOAUTH2", "ENHANCEDSTATUSCODES", "PIPELINING"]

    private func oauthSettings(_ mechanism: SmtpSettings.Authentication, token: String? = nil, calls: Counter? = nil,
                               _ configure: (inout SmtpSettings) -> Void = { _ in }) -> SmtpSettings {
        let value = token ?? self.token
        return scriptedSettings {
            $0.authentication = mechanism
            $0.username = user
            $0.accessToken = { calls?.increment(); return value }
            $0.password = { XCTFail("the password must not be read for OAuth"); return "" }
            $0.allowCleartextAuthentication = true
            configure(&$0)
        }
    }

    /// The token appears nowhere: not in clear, not as base64 of itself or of any initial response.
    private func assertNoToken(_ texts: [String], token: String, user: String, host: String = "scripted.test", port: Int = 25,
                               file: StaticString = #filePath, line: UInt = #line) {
        let secrets = [token, AuthEncoding.base64(Array(token.utf8)),
                       OAuthSASL.xoauth2(username: user, token: token), OAuthSASL.oauthBearer(username: user, token: token, host: host, port: port)]
        for text in texts {
            for secret in secrets { XCTAssertFalse(text.contains(secret), "leaked \(secret) in \(text)", file: file, line: line) }
        }
    }

    func testXOAUTH2SendsGooglesExampleAndRedactsIt() throws {
        let calls = Counter()
        let peer = ScriptedPeer.standard(ehlo: googleEHLO) { line in
            line == "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
                ? "235 2.7.0 Accepted\r\n" : (line.hasPrefix("AUTH") ? "535 5.7.8 wrong bytes\r\n" : nil)
        }
        let connection = try openScripted(peer, oauthSettings(.xoauth2, calls: calls))
        XCTAssertEqual(calls.value, 1)
        XCTAssertEqual(connection.server.authMechanism, "XOAUTH2")
        XCTAssertTrue(connection.transcript.lines.contains { $0.hasSuffix("C: AUTH XOAUTH2 <redacted>") }, connection.transcript.text)
        XCTAssertTrue(connection.transcript.text.contains("S: 235 2.7.0 Accepted"))
        assertNoToken([connection.transcript.text], token: token, user: user)
    }

    /// RFC 7628 §4.4's SMTP failure: the challenge verbatim, then "AQ==" from the client;
    /// the final reply is Gmail's documented one.
    func testOAUTHBEARERFailureExchangeAnswersWithX01AndReadsTheFinalReply() throws {
        let rfcUser = "user@example.com", rfcToken = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
        var sawAcknowledgement = false
        let peer = ScriptedPeer.standard(ehlo: ["AUTH GSSAPI OAUTHBEARER", "DSN"]) { line in
            switch line {
            case "AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB":
                return "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciBtYWMiLCJzY29wZSI6Imh0dHBzOi8vbWFpbC5leGFtcGxlLmNvbS8ifQ==\r\n"
            case "AQ==":
                sawAcknowledgement = true
                return "535-5.7.1 Username and Password not accepted. Learn more at\r\n535 5.7.1 https://support.google.com/mail/?p=BadCredentials hx9sm5317360pbc.68\r\n"
            default:
                return line.hasPrefix("AUTH") ? "535 5.7.8 wrong bytes\r\n" : nil
            }
        }
        var settings = oauthSettings(.oauthBearer, token: rfcToken) { $0.username = rfcUser }
        settings.host = "server.example.com"
        settings.port = 587
        XCTAssertThrowsError(try openScripted(peer, settings)) { error in
            guard let error = error as? SmtpError else { return XCTFail("\(error)") }
            XCTAssertTrue(sawAcknowledgement)
            XCTAssertEqual(error.stage, .auth)
            XCTAssertEqual(error.kind, .authRejected)
            XCTAssertEqual(error.replyCode, 535)
            XCTAssertNil(error.enhancedCode, "the RFC's server does not offer ENHANCEDSTATUSCODES")
            XCTAssertEqual(error.hint, "the access token is invalid, expired or revoked (535; status invalid_token, scope https://mail.example.com/): sign in with OAuth 2.0 again")
            let lines = error.transcript.lines
            XCTAssertTrue(lines.contains { $0.hasSuffix("C: AUTH OAUTHBEARER <redacted>") }, error.transcript.text)
            XCTAssertTrue(lines.contains { $0.hasSuffix(#"*: the server's OAuth error: {"status":"invalid_token","schemes":"bearer mac","scope":"https://mail.example.com/"}"#) }, error.transcript.text)
            XCTAssertTrue(lines.contains { $0.hasSuffix("C: AQ==") })
            let encoded = String(decoding: (try? JSONEncoder().encode(error)) ?? Data(), as: UTF8.self)
            self.assertNoToken([error.transcript.text, error.description, error.hint, encoded],
                               token: rfcToken, user: rfcUser, host: "server.example.com", port: 587)
        }
    }

    /// Google's documented SMTP error response for XOAUTH2: an empty line answers the challenge.
    func testXOAUTH2FailureExchangeAnswersWithAnEmptyLine() throws {
        var lines: [String] = []
        let peer = ScriptedPeer.standard(ehlo: googleEHLO) { line in
            if line.hasPrefix("AUTH XOAUTH2 ") {
                return "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K\r\n"
            }
            if line.isEmpty {
                lines.append(line)
                return "535-5.7.1 Username and Password not accepted. Learn more at\r\n535 5.7.1 https://support.google.com/mail/?p=BadCredentials hx9sm5317360pbc.68\r\n"
            }
            return nil
        }
        XCTAssertThrowsError(try openScripted(peer, oauthSettings(.xoauth2))) { error in
            guard let error = error as? SmtpError else { return XCTFail("\(error)") }
            XCTAssertEqual(lines, [""])
            XCTAssertEqual(error.replyText, "Username and Password not accepted. Learn more at\nhttps://support.google.com/mail/?p=BadCredentials hx9sm5317360pbc.68")
            XCTAssertEqual(error.hint, "the access token is invalid, expired or revoked (535 5.7.1; status 401, scope https://mail.google.com/): sign in with OAuth 2.0 again")
        }
        XCTAssertTrue(peer.receivedText.hasSuffix("cBAQ==\r\n\r\n"), "the empty response follows the AUTH line")
    }

    func testExchangeRefusalNamesAuthenticatedSMTPAndLeaksNothing() throws {
        let peer = ScriptedPeer.standard(ehlo: ["PIPELINING", "AUTH LOGIN XOAUTH2", "ENHANCEDSTATUSCODES"]) { line in
            line.hasPrefix("AUTH XOAUTH2 ") ? "535 5.7.3 Authentication unsuccessful [SN2PR00CA0018.namprd00.prod.outlook.com]\r\n" : nil
        }
        XCTAssertThrowsError(try openScripted(peer, oauthSettings(.xoauth2))) { error in
            guard let error = error as? SmtpError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.stage, .auth)
            XCTAssertEqual(error.kind, .authRejected)
            XCTAssertTrue(error.hint.contains("SMTP AUTH is disabled for this mailbox or tenant: enable Authenticated SMTP"), error.hint)
            let json = (try? JSONEncoder().encode(error)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            self.assertNoToken([error.transcript.text, error.description, error.hint, json], token: self.token, user: self.user)
        }
    }

    func testAutoPrefersOAuthWhenATokenSourceIsSet() throws {
        let bearer = ScriptedPeer.standard(ehlo: ["AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER"])
        let viaBearer = try openScripted(bearer, oauthSettings(.auto))
        XCTAssertEqual(viaBearer.server.authMechanism, "OAUTHBEARER")
        XCTAssertTrue(bearer.receivedText.contains("AUTH OAUTHBEARER " + OAuthSASL.oauthBearer(username: user, token: token, host: "scripted.test", port: 25) + "\r\n"))

        let xoauth = ScriptedPeer.standard(ehlo: ["AUTH PLAIN LOGIN XOAUTH2"])
        XCTAssertEqual(try openScripted(xoauth, oauthSettings(.auto)).server.authMechanism, "XOAUTH2")

        // A server without OAuth: today's rules, with the password.
        let passwords = ScriptedPeer.standard(ehlo: ["AUTH PLAIN LOGIN"])
        let calls = Counter()
        let fallback = try openScripted(passwords, oauthSettings(.auto, calls: calls) { $0.password = { "pw" } })
        XCTAssertEqual(fallback.server.authMechanism, "PLAIN")
        XCTAssertEqual(calls.value, 0, "the token source is called only for an OAuth mechanism")

        // Without a token source Auto never picks OAuth, even when it is all the server offers.
        XCTAssertThrowsError(try openScripted(ScriptedPeer.standard(ehlo: ["AUTH XOAUTH2"]), scriptedSettings {
            $0.authentication = .auto
            $0.username = "u"
        })) { error in
            XCTAssertEqual((error as? SmtpError)?.kind, .mechanismUnsupported)
            XCTAssertEqual((error as? SmtpError)?.hint, "the server offers AUTH XOAUTH2, none of CRAM-MD5, PLAIN, LOGIN")
        }
    }

    func testAThrowingTokenSourceIsStageOAuthWithTheTranscript() throws {
        let peer = ScriptedPeer.standard(ehlo: ["AUTH XOAUTH2"])
        let fromTokenEndpoint = SmtpError(stage: .oauth, kind: .authRejected, replyText: "invalid_grant", hint: "sign in again: the refresh token was revoked")
        XCTAssertThrowsError(try openScripted(peer, oauthSettings(.xoauth2) { $0.accessToken = { throw fromTokenEndpoint } })) { error in
            guard let error = error as? SmtpError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.stage, .oauth)
            XCTAssertEqual(error.kind, .authRejected)
            XCTAssertEqual(error.hint, "sign in again: the refresh token was revoked")
            XCTAssertTrue(error.transcript.text.contains("C: EHLO example.com"), "rethrown with the session's transcript")
        }
        XCTAssertFalse(peer.receivedText.contains("AUTH"))

        struct Offline: Error {}
        XCTAssertThrowsError(try openScripted(ScriptedPeer.standard(ehlo: ["AUTH XOAUTH2"]), oauthSettings(.xoauth2) { $0.accessToken = { throw Offline() } })) { error in
            XCTAssertEqual((error as? SmtpError)?.stage, .oauth)
            XCTAssertEqual((error as? SmtpError)?.kind, .protocol)
            XCTAssertTrue((error as? SmtpError)?.hint.hasPrefix("the OAuth 2.0 access token could not be obtained: Offline") ?? false)
        }
        for (source, hint) in [(nil as String?, "XOAUTH2 needs an OAuth 2.0 access token and none is configured: sign in with OAuth 2.0 first"),
                               ("", "the OAuth 2.0 access token is empty: sign in with OAuth 2.0 again"),
                               ("a b\r\nQUIT", "the OAuth 2.0 access token contains spaces, control or non-ASCII characters; refused before sending")] {
            let quiet = ScriptedPeer.standard(ehlo: ["AUTH XOAUTH2"])
            XCTAssertThrowsError(try openScripted(quiet, oauthSettings(.xoauth2) { settings in
                settings.accessToken = source.map { value in { @Sendable in value } }
            })) { error in
                XCTAssertEqual((error as? SmtpError)?.stage, .oauth)
                XCTAssertEqual((error as? SmtpError)?.kind, .invalidInput)
                XCTAssertEqual((error as? SmtpError)?.hint, hint)
            }
            XCTAssertFalse(quiet.receivedText.contains("AUTH"))
        }
    }

    func testNoTokenWithoutTLSUnlessAllowed() throws {
        let calls = Counter()
        let peer = ScriptedPeer.standard(ehlo: ["AUTH XOAUTH2 OAUTHBEARER"])
        XCTAssertThrowsError(try openScripted(peer, oauthSettings(.oauthBearer, calls: calls) { $0.allowCleartextAuthentication = false })) { error in
            XCTAssertEqual((error as? SmtpError)?.hint, "refusing to send the access token with OAUTHBEARER without TLS; set Connection security to STARTTLS or SSL/TLS")
        }
        XCTAssertThrowsError(try openScripted(ScriptedPeer.standard(ehlo: ["AUTH XOAUTH2"]), oauthSettings(.auto, calls: calls) { $0.allowCleartextAuthentication = false })) { error in
            XCTAssertEqual((error as? SmtpError)?.hint, "refusing to send the access token or password without TLS (the server offers XOAUTH2 only); set Connection security to STARTTLS or SSL/TLS")
        }
        XCTAssertEqual(calls.value, 0)
        XCTAssertFalse(peer.receivedText.contains("AUTH"))
    }
}
