import Foundation
import Smtp
import TestSupport
import XCTest

/// Each test certificate against each verification mode, over STARTTLS and implicit TLS.
final class TLSVerificationTests: XCTestCase {
    private func check(certificate: String, mode: SmtpTestServer.Mode = .implicit, host: String = "localhost",
                       verification: SmtpSettings.Verification, withCA: Bool = true) throws -> Result<SmtpCheckReport, SmtpError> {
        let server = try SmtpTestServer(mode: mode, certificate: certificate)
        let settings = try loopbackSettings(port: server.port, security: mode == .implicit ? .implicitTLS : .startTLSRequired, host: host) {
            $0.verification = verification
            if !withCA { $0.extraCAPEM = nil }
        }
        do { return .success(try SmtpClient.check(settings)) } catch let error as SmtpError { return .failure(error) }
    }

    private func fingerprint(_ name: String) throws -> String {
        try SmtpClient.describeCertificatesPEM(try SmtpTestCertificates.shared().pem(name))[0].sha256Fingerprint
    }

    private func expectVerifyFailure(_ result: Result<SmtpCheckReport, SmtpError>, hintContains: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        switch result {
        case .success: XCTFail("verification passed", file: file, line: line)
        case .failure(let error):
            XCTAssertEqual(error.stage, .tls, "\(error)", file: file, line: line)
            XCTAssertEqual(error.kind, .tlsVerify, "\(error)", file: file, line: line)
            XCTAssertTrue(error.hint.contains(hintContains), error.hint, file: file, line: line)
            XCTAssertNotNil(error.certificate, file: file, line: line)
            XCTAssertEqual(error.certificate?.sha256Fingerprint.count, 64, file: file, line: line)
            // Nothing after the handshake: no EHLO over TLS, no AUTH, no QUIT.
            XCTAssertFalse(error.transcript.entries.contains { $0.direction == .client && $0.text.hasPrefix("QUIT") }, file: file, line: line)
        }
    }

    /// Every certificate against every mode, over one server per certificate.
    func testCertificateByModeMatrix() throws {
        let expectations: [(certificate: String, full: Bool, pinned: Bool, none: Bool)] = [
            ("good", true, true, true), ("wronghost", false, true, true), ("expired", false, true, true), ("selfsigned", false, true, true),
        ]
        for row in expectations {
            let server = try SmtpTestServer(mode: .implicit, certificate: row.certificate)
            let pin = try fingerprint(row.certificate)
            for (verification, expected) in [(SmtpSettings.Verification.full, row.full), (.pinned(sha256: pin), row.pinned), (.none, row.none),
                                             (.pinned(sha256: String(repeating: "0", count: 64)), false)] {
                let settings = try loopbackSettings(port: server.port, security: .implicitTLS, host: "localhost") { $0.verification = verification }
                do {
                    let report = try SmtpClient.check(settings)
                    XCTAssertTrue(expected, "\(row.certificate) with \(verification) passed")
                    XCTAssertEqual(report.server.certificate?.sha256Fingerprint, pin)
                } catch let error as SmtpError {
                    XCTAssertFalse(expected, "\(row.certificate) with \(verification): \(error)")
                    XCTAssertEqual(error.kind, .tlsVerify, "\(row.certificate) with \(verification): \(error)")
                    XCTAssertEqual(error.certificate?.sha256Fingerprint, pin)
                }
            }
        }
    }

    func testGoodCertificateFullVerificationByNameAndByIP() throws {
        XCTAssertNoThrow(try check(certificate: "good", verification: .full).get())
        XCTAssertNoThrow(try check(certificate: "good", mode: .starttls, verification: .full).get())
        let byIP = try check(certificate: "good", host: "127.0.0.1", verification: .full).get()
        XCTAssertEqual(byIP.server.certificate?.subject.contains("CN=localhost"), true)
        XCTAssertTrue(byIP.server.certificate?.subjectAlternativeNames.contains("IP:127.0.0.1") ?? false)
        XCTAssertTrue(byIP.server.certificate?.issuer.contains("EmailSetup Test CA") ?? false)
    }

    func testIPv6LiteralWithAndWithoutBrackets() throws {
        let server = try SmtpTestServer(mode: .implicit, bindAddress: "::1")
        for host in ["::1", "[::1]"] {
            let settings = try loopbackSettings(port: server.port, security: .implicitTLS, host: host)
            let report = try SmtpClient.check(settings)
            XCTAssertEqual(report.server.remoteAddress, "::1")
            // Both spellings are the one canonical host, which is what is verified.
            XCTAssertTrue(report.transcript.text.contains("certificate verified for ::1\n") || report.transcript.text.hasSuffix("certificate verified for ::1"),
                          report.transcript.text)
        }
        let wrong = try SmtpTestServer(mode: .implicit, certificate: "wronghost", bindAddress: "::1")
        expectVerifyFailure(Result { try SmtpClient.check(try loopbackSettings(port: wrong.port, security: .implicitTLS, host: "::1")) }
            .mapError { $0 as! SmtpError }, hintContains: "not ::1")
    }

    func testUntrustedIssuerWithoutExtraCA() throws {
        expectVerifyFailure(try check(certificate: "good", verification: .full, withCA: false), hintContains: "is not trusted")
    }

    func testWrongHost() throws {
        let result = try check(certificate: "wronghost", verification: .full)
        expectVerifyFailure(result, hintContains: "certificate is for mail.example.org, not localhost: set SMTP server to one of these names, or set Certificate check to Pinned")
        expectVerifyFailure(result, hintContains: "fingerprint to pin: " + (try fingerprint("wronghost")))
        expectVerifyFailure(try check(certificate: "wronghost", host: "127.0.0.1", verification: .full), hintContains: "not 127.0.0.1")
    }

    func testExpired() throws {
        expectVerifyFailure(try check(certificate: "expired", mode: .starttls, verification: .full), hintContains: "expired on 2021-01-01T00:00:00Z")
        // Pinned ignores dates and chain: the pin is what is trusted.
        XCTAssertNoThrow(try check(certificate: "expired", verification: .pinned(sha256: try fingerprint("expired"))).get())
    }

    func testSelfSignedPerMode() throws {
        expectVerifyFailure(try check(certificate: "selfsigned", verification: .full), hintContains: "self-signed")
        let pin = try fingerprint("selfsigned")
        XCTAssertNoThrow(try check(certificate: "selfsigned", verification: .pinned(sha256: pin.uppercased())).get())
        expectVerifyFailure(try check(certificate: "selfsigned", verification: .pinned(sha256: try fingerprint("good"))), hintContains: "does not match the pinned")
        let unverified = try check(certificate: "selfsigned", mode: .starttls, verification: .none).get()
        XCTAssertEqual(unverified.server.certificate?.sha256Fingerprint, pin)
        XCTAssertTrue(unverified.transcript.text.contains("certificate not verified"))
    }

    func testWrongHostAcceptedWithNoneAndPinned() throws {
        XCTAssertNoThrow(try check(certificate: "wronghost", verification: .none).get())
        XCTAssertNoThrow(try check(certificate: "wronghost", verification: .pinned(sha256: try fingerprint("wronghost"))).get())
    }

    func testImplicitTLSAgainstPlainServer() throws {
        let server = try SmtpTestServer(mode: .plain)
        let settings = try loopbackSettings(port: server.port, security: .implicitTLS)
        assertSmtpError(try SmtpClient.check(settings), stage: .tls, kind: .tlsHandshake) { error in
            XCTAssertEqual(error.hint, "the server answered in plain text: port \(server.port) expects STARTTLS or no TLS, not SSL/TLS: set Connection security to STARTTLS")
        }
    }

    func testStartTLSAgainstImplicitTLSServerTimesOutWithHint() throws {
        let server = try SmtpTestServer(mode: .implicit)
        let settings = try loopbackSettings(port: server.port, security: .startTLSRequired) { $0.commandTimeout = 1 }
        let started = Date()
        assertSmtpError(try SmtpClient.check(settings), stage: .greeting, kind: .timeout) { error in
            XCTAssertTrue(error.hint.contains("may expect SSL/TLS"), error.hint)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }

    func testCAPEMValidation() throws {
        let certificates = try SmtpTestCertificates.shared()
        XCTAssertEqual(try SmtpClient.validateCertificatesPEM(try certificates.pem("ca")), 1)
        XCTAssertEqual(try SmtpClient.validateCertificatesPEM(try certificates.pem("ca") + "\n" + certificates.pem("other-ca")), 2)
        let truncated = String(try certificates.pem("ca").dropLast(80))
        XCTAssertThrowsError(try SmtpClient.validateCertificatesPEM(truncated))
        let description = try SmtpClient.describeCertificatesPEM(try certificates.pem("expired"))[0]
        XCTAssertEqual(description.notAfter, "2021-01-01T00:00:00Z")
        XCTAssertEqual(description.notBefore, "2020-01-01T00:00:00Z")
    }

    func testBadExtraCAIsInvalidInput() throws {
        let server = try SmtpTestServer(mode: .implicit)
        let settings = try loopbackSettings(port: server.port, security: .implicitTLS) { $0.extraCAPEM = "not a certificate" }
        assertSmtpError(try SmtpClient.check(settings), stage: .tls, kind: .invalidInput)
    }
}
