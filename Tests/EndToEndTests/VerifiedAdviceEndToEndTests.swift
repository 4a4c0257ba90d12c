import Foundation
import TestSupport
import XCTest

/// Verified advice through nginx: a check or test email that fails at TLS because the
/// connection security does not fit the port makes the responder try the usual ports
/// (465, 587, 25, 2525 on the same host, without signing in) and answer what works as
/// `diagnosis.suggestion` — and never something that was tried and failed.
///
/// The responder probes the real well-known ports, so the fixtures bind 465 and 587
/// (waiting while another run holds them).
final class VerifiedAdviceEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    var certificates: SmtpTestCertificates!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        certificates = try SmtpTestCertificates.shared()
    }

    var caPEM: String { (try? certificates.pem("ca")) ?? "" }

    func testSSLOnTheSTARTTLSPortSuggestsThePortThatAnswersWithSSL() throws {
        let submission = try onWellKnownPort(587) { try SmtpTestServer(mode: .starttls, user: "alice", password: "pw", port: $0) }
        defer { submission.stop() }
        let implicit = try onWellKnownPort(465) { try SmtpTestServer(mode: .implicit, user: "alice", password: "pw", port: $0) }
        defer { implicit.stop() }
        try env.saveSettings(["smtp_port": "587", "smtp_connection_type": "SSL", "smtp_tls_ca_pem": caPEM,
                              "smtp_authentication_type": "Plain", "smtp_username": "alice"], password: "pw")

        for response in [try env.checkConnection(), try env.sendTestEmail()] {
            let d = try SmtpDiagnosis(response)
            d.expect(status: 502, stage: "tls", kind: "tls_handshake",
                     hintContains: ["587", "port 465 answers with SSL/TLS (certificate valid for 127.0.0.1)", "Connection security to SSL/TLS"])
            let suggestion = try XCTUnwrap(d.object["suggestion"] as? [String: Any], response.text)
            XCTAssertEqual(suggestion["port"] as? Int, 465, response.text)
            XCTAssertEqual(suggestion["smtp_connection_type"] as? String, "SSL", response.text)
            XCTAssertEqual(suggestion["verified"] as? String, "port 465 answers with SSL/TLS (certificate valid for 127.0.0.1)")
        }
        // The probes signed in nowhere and sent nothing.
        XCTAssertEqual(implicit.messageCount, 0)
        XCTAssertEqual(submission.messageCount, 0)
    }

    func testNothingIsSuggestedWhenEveryAlternativeFails() throws {
        // 587 speaks plain SMTP without STARTTLS (and the settings sign in, so plain text
        // is no option); 465 answers SSL/TLS with a certificate for another name.
        let submission = try onWellKnownPort(587) { try SmtpTestServer(mode: .plain, port: $0) }
        defer { submission.stop() }
        let implicit = try onWellKnownPort(465) { try SmtpTestServer(mode: .implicit, certificate: "wronghost", port: $0) }
        defer { implicit.stop() }
        try env.saveSettings(["smtp_port": "587", "smtp_connection_type": "SSL", "smtp_tls_ca_pem": caPEM,
                              "smtp_authentication_type": "Plain", "smtp_username": "alice"], password: "pw")

        let d = try SmtpDiagnosis(try env.checkConnection())
        d.expect(status: 502, stage: "tls", kind: "tls_handshake",
                 hintContains: ["none works either", "port 465 with SSL/TLS", "port 587 with STARTTLS"])
        XCTAssertTrue(d.object["suggestion"] is NSNull, d.response.text)
        XCTAssertFalse(d.hint.contains("answers with"), d.hint)
    }

    func testAFailedSignInProbesNothing() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "right")
        try env.saveSettings(["smtp_port": "\(server.port)", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": caPEM,
                              "smtp_authentication_type": "Plain", "smtp_username": "alice"], password: "wrong")
        let d = try SmtpDiagnosis(try env.checkConnection())
        XCTAssertEqual(d.stage, "auth", d.response.text)
        XCTAssertTrue(d.object["suggestion"] is NSNull, d.response.text)
        XCTAssertFalse(d.hint.contains("Tried just now"), d.hint)
    }
}
