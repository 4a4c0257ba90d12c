import Foundation
@testable import Smtp
import TestSupport
import XCTest

/// Issue 14: every family of failure names its fix, against real servers that answer
/// with the exact texts Postfix, Exchange Online and Gmail send.
final class DiagnosisFamilyTests: XCTestCase {
    private func failure(_ settings: SmtpSettings, send: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> SmtpError? {
        do {
            if send {
                _ = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                        message: testMessage(), settings: settings)
            } else {
                _ = try SmtpClient.check(settings)
            }
            XCTFail("the session succeeded", file: file, line: line)
            return nil
        } catch {
            guard let error = error as? SmtpError else { XCTFail("\(error)", file: file, line: line); return nil }
            return error
        }
    }

    private func hostile(_ mode: String, security: SmtpSettings.Security = .none, send: Bool = false,
                         _ configure: (inout SmtpSettings) -> Void = { _ in }) throws -> SmtpError? {
        let server = try HostileSmtpServer(mode: mode)
        let settings = try loopbackSettings(port: server.port, security: security, host: "localhost") {
            $0.commandTimeout = 3
            configure(&$0)
        }
        return failure(settings, send: send)
    }

    private func tls(_ certificate: String, host: String = "localhost", tlsMax: String? = nil, withCA: Bool = true) throws -> SmtpError? {
        let server = try SmtpTestServer(mode: .implicit, certificate: certificate, tlsMax: tlsMax)
        let settings = try loopbackSettings(port: server.port, security: .implicitTLS, host: host) {
            if !withCA { $0.extraCAPEM = nil }
        }
        return failure(settings)
    }

    private func assertNoInternalWords(_ hint: String, file: StaticString = #filePath, line: UInt = #line) {
        for word in ["Connection type", "tls_handshake", "tls_verify", "(connect)", "Name or service not known", "unreachable"] {
            XCTAssertFalse(hint.contains(word), "\"\(word)\" in: \(hint)", file: file, line: line)
        }
    }

    // MARK: - Chain

    func testIncompleteChainNamesTheServersFaultAndTheFullChainWorks() throws {
        let error = try XCTUnwrap(try tls("incomplete"))
        XCTAssertEqual(error.stage, .tls)
        XCTAssertEqual(error.kind, .tlsVerify)
        XCTAssertTrue(error.hint.hasPrefix("the server does not send its intermediate certificate (issuer CN=EmailSetup Test Intermediate CA"), error.hint)
        XCTAssertTrue(error.hint.contains("ask the mail provider or the server's administrator to install the full chain"), error.hint)
        // The workaround comes only after the fault.
        let fix = try XCTUnwrap(error.hint.range(of: "install the full chain")).lowerBound
        let workaround = try XCTUnwrap(error.hint.range(of: "Extra trusted certificate authorities")).lowerBound
        XCTAssertLessThan(fix, workaround)
        // The fix the hint names works: the same leaf sent with its intermediate verifies.
        let server = try SmtpTestServer(mode: .implicit, certificate: "fullchain")
        XCTAssertNoThrow(try SmtpClient.check(try loopbackSettings(port: server.port, security: .implicitTLS, host: "localhost")))
    }

    func testAPrivateAuthorityIsNotCalledAnIncompleteChain() throws {
        let error = try XCTUnwrap(try tls("good", withCA: false))
        XCTAssertEqual(error.kind, .tlsVerify)
        XCTAssertTrue(error.hint.hasPrefix("certificate issuer CN=EmailSetup Test CA"), error.hint)
        XCTAssertTrue(error.hint.contains("is not trusted"), error.hint)
        XCTAssertFalse(error.hint.contains("intermediate"), error.hint)
    }

    // MARK: - Names

    func testCommonNameOnlyCertificateIsNotContradicted() throws {
        let error = try XCTUnwrap(try tls("cnonly", host: "127.0.0.1"))
        XCTAssertEqual(error.kind, .tlsVerify)
        XCTAssertTrue(error.hint.hasPrefix("the certificate names the server only in its common name, which TLS clients no longer accept: "
                                           + "the server needs a certificate with a subjectAltName for 127.0.0.1"), error.hint)
        XCTAssertFalse(error.hint.contains("not 127.0.0.1"), error.hint)
        XCTAssertFalse(error.hint.contains("covers 127.0.0.1"), error.hint)
        XCTAssertTrue(error.hint.contains("no subjectAltName"), error.hint)
    }

    func testWrongHostNamesTheCertificatesNamesAndTheField() throws {
        let error = try XCTUnwrap(try tls("wronghost"))
        XCTAssertTrue(error.hint.hasPrefix("certificate is for mail.example.org, not localhost: set SMTP server to one of these names"), error.hint)
    }

    // MARK: - Validity

    func testValidity() throws {
        let expired = try XCTUnwrap(try tls("expired"))
        XCTAssertTrue(expired.hint.hasPrefix("certificate expired on 2021-01-01T00:00:00Z: the server's administrator must renew it"), expired.hint)
        let early = try XCTUnwrap(try tls("notyet"))
        XCTAssertEqual(early.kind, .tlsVerify)
        XCTAssertTrue(early.hint.hasPrefix("certificate is valid only from 2090-01-01T00:00:00Z: check the clocks"), early.hint)
    }

    // MARK: - Key strength and protocol version

    func testWeakKeyNamesTheFix() throws {
        let error = try XCTUnwrap(try tls("weakkey"))
        XCTAssertEqual(error.stage, .tls)
        XCTAssertTrue([.tlsHandshake, .tlsVerify].contains(error.kind), "\(error)")
        XCTAssertTrue(error.hint.contains("too weak"), error.hint)
        XCTAssertTrue(error.hint.contains("at least 2048 bits"), error.hint)
        assertNoInternalWords(error.hint)
    }

    func testOldProtocolNamesTheFix() throws {
        let error = try XCTUnwrap(try tls("good", tlsMax: "1.1"))
        XCTAssertEqual(error.stage, .tls)
        XCTAssertEqual(error.kind, .tlsHandshake)
        // OpenSSL's server either alerts "protocol version" or just closes; both hints name the fix.
        XCTAssertTrue(error.hint.hasPrefix("the server offers only TLS older than 1.2") || error.hint.contains("may not support TLS 1.2+"), error.hint)
        XCTAssertTrue(error.hint.contains("enable TLS 1.2 or 1.3"), error.hint)
    }

    // MARK: - Sign-in policy (Exchange Online's exact replies)

    func testBasicAuthenticationDisabledSaysOAuth() throws {
        for mode in ["auth_basic_off", "auth_5730"] {
            let error = try XCTUnwrap(try hostile(mode) {
                $0.authentication = .plain
                $0.username = "alice@example.com"
                $0.password = { "hunter2" }
                $0.allowCleartextAuthentication = true
            })
            XCTAssertEqual(error.stage, .auth, mode)
            XCTAssertEqual(error.kind, .authRejected, mode)
            XCTAssertTrue(error.hint.contains("switch Sign-in method to OAuth 2.0"), "\(mode): \(error.hint)")
            XCTAssertFalse(error.hint.contains("app password"), "\(mode): \(error.hint)")
        }
    }

    // MARK: - Temporary refusals

    func testPostfix421AtTheBannerIsATemporaryRefusalOfService() throws {
        for mode in ["banner_421", "banner_421_busy"] {
            let error = try XCTUnwrap(try hostile(mode))
            XCTAssertEqual(error.stage, .greeting, mode)
            XCTAssertEqual(error.kind, .rejectedTemporary, mode)
            XCTAssertEqual(error.replyCode, 421)
            XCTAssertTrue(error.hint.hasPrefix("the server is temporarily not accepting connections (421 4.3.2"), error.hint)
            XCTAssertTrue(error.hint.contains("try again in a few minutes"), error.hint)
            XCTAssertFalse(error.hint.contains("refuses connections from here"), error.hint)
        }
        let error = try XCTUnwrap(try hostile("banner_421"))
        XCTAssertTrue(error.replyText?.contains("Service not available") ?? false, "\(error)")
    }

    func testGmail421AfterEHLO() throws {
        let error = try XCTUnwrap(try hostile("ehlo_421_gmail"))
        XCTAssertEqual(error.stage, .ehlo)
        XCTAssertEqual(error.kind, .rejectedTemporary)
        XCTAssertEqual(error.replyCode, 421)
        XCTAssertTrue(error.hint.hasPrefix("the server is closing the connection for now (421 4.7.0 Try again later, closing connection. (EHLO)"), error.hint)
        XCTAssertTrue(error.hint.contains("try again in a few minutes"), error.hint)
        XCTAssertFalse(error.hint.contains("try another EHLO name"), error.hint)
    }

    func testExchangeServerBusy() throws {
        let error = try XCTUnwrap(try hostile("mail_451_busy", send: true))
        XCTAssertEqual(error.stage, .mail)
        XCTAssertEqual(error.kind, .rejectedTemporary)
        XCTAssertEqual(error.enhancedCode, "4.7.500")
        XCTAssertTrue(error.hint.hasPrefix("the server refuses for now (451 4.7.500 Server busy. Please try again later from [127.0.0.1]."), error.hint)
        XCTAssertTrue(error.hint.contains("try again in a few minutes"), error.hint)
    }

    // MARK: - Policy closes

    func testPostfix454TLSNotAvailableNamesTheServersFault() throws {
        let error = try XCTUnwrap(try hostile("starttls_454", security: .startTLSRequired))
        XCTAssertEqual(error.stage, .starttls)
        XCTAssertEqual(error.kind, .rejectedTemporary)
        XCTAssertEqual(error.replyCode, 454)
        XCTAssertTrue(error.hint.hasPrefix("the server offers STARTTLS but cannot start encryption (454 4.7.0 TLS not available due to local problem): "
                                           + "its TLS setup is broken"), error.hint)
        XCTAssertTrue(error.hint.contains("Do not set Connection security to None"), error.hint)
    }

    func testCloseRightAfterEHLONamesAFix() throws {
        let error = try XCTUnwrap(try hostile("close_after_ehlo"))
        XCTAssertEqual(error.stage, .ehlo)
        XCTAssertTrue(error.hint.hasPrefix("the server closed the connection right after EHLO without answering"), error.hint)
        XCTAssertTrue(error.hint.contains("ask the mail provider or the server's administrator to allow this system's address"), error.hint)
    }

    // MARK: - STARTTLS required but not offered

    func testStartTLSNotOfferedPointsToTheSubmissionPorts() throws {
        let error = try XCTUnwrap(try hostile("no_starttls", security: .startTLSRequired))
        XCTAssertEqual(error.stage, .starttls)
        XCTAssertNotEqual(error.kind, .mechanismUnsupported)
        XCTAssertEqual(error.kind, .tlsHandshake)
        XCTAssertTrue(error.hint.contains("does not offer encryption"), error.hint)
        XCTAssertTrue(error.hint.contains("587 with Connection security STARTTLS"), error.hint)
        XCTAssertTrue(error.hint.contains("465 with SSL/TLS"), error.hint)
        // No advice that fails next: neither SSL/TLS on this plain port nor None.
        XCTAssertFalse(error.hint.contains("choose SSL/TLS or None"), error.hint)
        XCTAssertFalse(error.hint.contains("to None"), error.hint)
        XCTAssertEqual(Diagnosis.startTLSNotOffered(port: 587).hasSuffix("usually port 465 with Connection security SSL/TLS"), true)
    }

    // MARK: - Long EHLO replies

    func testAnEHLOReplyOf300LinesIsAccepted() throws {
        let server = try HostileSmtpServer(mode: "ehlo_300_lines")
        let settings = try loopbackSettings(port: server.port, security: .none, host: "localhost")
        let report = try SmtpClient.check(settings)
        XCTAssertEqual(report.server.greeting.isEmpty, false)
    }

    // MARK: - Names that do not resolve, routes that do not exist (no kind `unreachable`)

    func testDNSAndRouteFailuresUseTheContractsKindsAndNoResolverWords() {
        let context = Diagnosis.Context(host: "mail.example.invalid", port: 587, security: .startTLSRequired,
                                        commandTimeout: 10, connectTimeout: 10, sessionTimeout: 60)
        let unknown = Diagnosis.connect(.resolve(code: EAI_NONAME, message: "Name or service not known"), context: context)
        XCTAssertEqual(unknown.0, .dns)
        XCTAssertEqual(unknown.1, .rejectedPermanent)
        XCTAssertEqual(unknown.2, "the name mail.example.invalid does not resolve: check the spelling of SMTP server")
        let again = Diagnosis.connect(.resolve(code: EAI_AGAIN, message: "Temporary failure in name resolution"), context: context)
        XCTAssertEqual(again.1, .timeout)
        XCTAssertFalse(again.2.contains("Temporary failure in name resolution"), again.2)
        let noRoute = Diagnosis.connect(.connect([("192.0.2.1", .system(function: "connect", errno: ENETUNREACH))]), context: context)
        XCTAssertEqual(noRoute.0, .connect)
        XCTAssertEqual(noRoute.1, .refused)
        XCTAssertTrue(noRoute.2.hasPrefix("no route to mail.example.invalid:587"), noRoute.2)
        XCTAssertEqual(SmtpError.Kind(rawValue: "unreachable"), nil, "not a kind of the API contract")
        for (result, hint) in [unknown, again, noRoute].map({ ($0, $0.2) }) { _ = result; assertNoInternalWords(hint) }
    }

    func testVerificationHintsForEachChainShape() {
        let leaf = SmtpCertificate(subject: "CN=mail.example.com", issuer: "CN=R11,O=Let's Encrypt", notBefore: "2026-01-01T00:00:00Z",
                                   notAfter: "2026-04-01T00:00:00Z", sha256Fingerprint: String(repeating: "ab", count: 32),
                                   subjectAlternativeNames: ["DNS:mail.example.com"])
        let incomplete = Diagnosis.verification(TLSVerifyResult(code: 20, message: "unable to get local issuer certificate", peerChainLength: 1, leafNamesIssuerURL: true),
                                                certificate: leaf, host: "mail.example.com")
        XCTAssertTrue(incomplete.hasPrefix("the server does not send its intermediate certificate (issuer CN=R11,O=Let's Encrypt)"), incomplete)
        let privateCA = Diagnosis.verification(TLSVerifyResult(code: 20, message: "m", peerChainLength: 2, leafNamesIssuerURL: true),
                                               certificate: leaf, host: "mail.example.com")
        XCTAssertTrue(privateCA.hasPrefix("certificate issuer CN=R11,O=Let's Encrypt is not trusted"), privateCA)
        let weak = Diagnosis.verification(TLSVerifyResult(code: 66, message: "EE certificate key too weak"), certificate: leaf, host: "mail.example.com")
        XCTAssertTrue(weak.hasPrefix("the certificate's key or signature is too weak"), weak)
    }
}
