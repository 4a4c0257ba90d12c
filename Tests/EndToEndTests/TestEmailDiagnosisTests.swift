import Foundation
import TestSupport
import XCTest

/// POST email_test and email_check through nginx against real SMTP servers on
/// loopback: each diagnosis kind is produced by the server condition that causes
/// it, and its hint names the fix. Settings are saved through the API first, with
/// connect 2 s / command 3 s so hostile cases end quickly.
final class TestEmailDiagnosisTests: XCTestCase {
    var env: EndToEndEnvironment!
    var certificates: SmtpTestCertificates!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        certificates = try SmtpTestCertificates.shared()
    }

    var caPEM: String { (try? certificates.pem("ca")) ?? "" }

    // MARK: - Success

    func testTestEmailArrivesAndSaysWhichSystemWhenAndWhichVersion() throws {
        let password = "Pa55-wörd with spaces"
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: password)
        let saved = try env.saveSettings([
            "smtp_port": "\(server.port)", "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "Plain",
            "smtp_username": "alice", "smtp_tls_ca_pem": caPEM,
        ], password: password)
        let version = try env.version(of: saved)
        let started = Date()

        let r = try env.sendTestEmail(to: "ops@example.com")
        XCTAssertEqual(r.status, 200, r.text)
        let data = try XCTUnwrap(r.data, r.text)
        XCTAssertEqual(data["ok"] as? Bool, true)
        XCTAssertEqual(data["settings_version"] as? String, String(version))
        let timings = try XCTUnwrap(data["timings_ms"] as? [String: Any], r.text)
        for stage in ["connect", "tls", "auth", "data"] { XCTAssertNotNil(timings[stage], "no \(stage) timing in \(timings)") }
        let transcript = try XCTUnwrap(data["transcript"] as? [String], r.text)
        XCTAssertTrue(transcript.contains { $0.contains("C: AUTH PLAIN <redacted>") }, "\(transcript)")
        XCTAssertTrue(transcript.contains { $0.contains("C: QUIT") }, "\(transcript)")
        assertNoPassword(password, user: "alice", in: r.text)
        XCTAssertEqual((data["server"] as? [String: Any])?["auth_mechanism"] as? String, "PLAIN")
        XCTAssertEqual((data["certificate"] as? [String: Any])?["sha256_fingerprint"] as? String, try certificateFingerprint(certificates.certificate("good")))

        let message = try server.waitForMessages(count: 1)[0]
        XCTAssertEqual(message.recipients, ["ops@example.com"])
        XCTAssertEqual(message.mailFrom, "app@example.com")
        XCTAssertEqual(message.login, "alice")
        XCTAssertTrue(message.tls)
        // Unfold headers and undo quoted-printable soft breaks before reading.
        let text = message.text.replacingOccurrences(of: "\r\n ", with: " ").replacingOccurrences(of: "=\r\n", with: "")
        let system = ProcessInfo.processInfo.hostName
        let subject = text.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") } ?? ""
        XCTAssertTrue(subject.contains("settings version \(version)"), subject)
        XCTAssertTrue(subject.contains(system), subject)
        XCTAssertTrue(text.contains("Settings version:  \(version)"), text)
        XCTAssertTrue(text.contains("of \(system)"), text)
        XCTAssertTrue(text.contains("Requested by:      admin"), text)
        // When: the Sent line is the minute of the request (UTC), or the next.
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        let minutes = [started, Date()].map { f.string(from: $0) }
        XCTAssertTrue(minutes.contains { text.contains("Sent:              \($0)") }, "no Sent line for \(minutes) in \(text)")

        // A success makes this version the last known good one.
        let current = try env.admin.request("GET", EndToEndEnvironment.settingsPath)
        XCTAssertEqual(current.data?["last_known_good_version"] as? String, String(version), current.text)
    }

    func testCheckAuthenticatesAndSendsNoMail() throws {
        let server = try SmtpTestServer(mode: .implicit, user: "bob", password: "cram-secret")
        try env.saveSettings([
            "smtp_host": "localhost", "smtp_port": "\(server.port)", "smtp_connection_type": "SSL",
            "smtp_authentication_type": "Cram_MD5", "smtp_username": "bob", "smtp_tls_ca_pem": caPEM,
        ], password: "cram-secret")
        let r = try env.checkConnection()
        XCTAssertEqual(r.status, 200, r.text)
        let data = try XCTUnwrap(r.data, r.text)
        XCTAssertEqual((data["server"] as? [String: Any])?["auth_mechanism"] as? String, "CRAM-MD5")
        XCTAssertNotNil((data["timings_ms"] as? [String: Any])?["tls"], r.text)
        let transcript = data["transcript"] as? [String] ?? []
        XCTAssertFalse(transcript.contains { $0.contains("MAIL FROM") || $0.contains("DATA") }, "\(transcript)")
        assertNoPassword("cram-secret", user: "bob", in: r.text)
        usleep(300_000)
        XCTAssertEqual(server.messageCount, 0)

        // What the server received, byte for byte: greeting dialogue and QUIT, no MAIL.
        let hostile = try HostileSmtpServer(mode: "normal")
        try env.saveSettings(["smtp_port": "\(hostile.port)"])
        let plain = try env.checkConnection()
        XCTAssertEqual(plain.status, 200, plain.text)
        let received = String(decoding: hostile.received, as: UTF8.self)
        XCTAssertTrue(received.contains("EHLO "), received)
        XCTAssertTrue(received.contains("QUIT\r\n"), received)
        XCTAssertFalse(received.uppercased().contains("MAIL FROM"), received)
        XCTAssertFalse(received.uppercased().contains("RCPT TO"), received)
    }

    // MARK: - Connection type and port

    func testPort465WithSTARTTLS() throws {
        let server = try onWellKnownPort(465) { try SmtpTestServer(mode: .implicit, port: $0) }
        defer { server.stop() }
        let saved = try env.saveSettings(["smtp_port": "465", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": caPEM])
        let warning = (saved.data?["warnings"] as? [String: String])?["smtp_connection_type"] ?? ""
        XCTAssertTrue(warning.contains("465") && warning.contains("SSL/TLS"), saved.text)
        let d = try SmtpDiagnosis(try env.sendTestEmail())
        d.expect(status: 504, stage: "greeting", kind: "timeout", hintContains: ["465", "SSL/TLS", "Connection security"])
    }

    func testPort587WithSSL() throws {
        let server = try onWellKnownPort(587) { try SmtpTestServer(mode: .starttls, port: $0) }
        defer { server.stop() }
        let saved = try env.saveSettings(["smtp_port": "587", "smtp_connection_type": "SSL", "smtp_tls_ca_pem": caPEM])
        let warning = (saved.data?["warnings"] as? [String: String])?["smtp_connection_type"] ?? ""
        XCTAssertTrue(warning.contains("587") && warning.contains("STARTTLS"), saved.text)
        let d = try SmtpDiagnosis(try env.sendTestEmail())
        d.expect(status: 502, stage: "tls", kind: "tls_handshake", hintContains: ["587", "STARTTLS", "Connection security"])
    }

    // MARK: - Authentication

    func testMechanismTheServerDoesNotOffer() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "pw", excludeAuth: ["CRAM-MD5"])
        try env.saveSettings(["smtp_port": "\(server.port)", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": caPEM,
                              "smtp_authentication_type": "Cram_MD5", "smtp_username": "alice"], password: "pw")
        let d = try SmtpDiagnosis(try env.checkConnection())
        d.expect(status: 502, stage: "auth", kind: "mechanism_unsupported", hintContains: ["CRAM-MD5", "PLAIN", "LOGIN", "Auto"])
    }

    func testCredentialsRejectedWithEnhancedCode() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "right")
        let wrong = "wrong-Passw0rd"
        try env.saveSettings(["smtp_port": "\(server.port)", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": caPEM,
                              "smtp_authentication_type": "Login", "smtp_username": "alice"], password: wrong)
        let d = try SmtpDiagnosis(try env.sendTestEmail())
        d.expect(status: 502, stage: "auth", kind: "auth_rejected", hintContains: ["535 5.7.8", "password"])
        XCTAssertEqual(d.code, 535)
        XCTAssertEqual(d.enhancedCode, "5.7.8")
        XCTAssertTrue(d.transcript.contains { $0.contains("<redacted password>") }, "\(d.transcript)")
        assertNoPassword(wrong, user: "alice", in: d.response.text)
        XCTAssertEqual(server.messageCount, 0)
    }

    func testServerRequiresAuthentication() throws {
        let server = try SmtpTestServer(mode: .plain, user: "alice", password: "pw", authRequireTLS: false, authRequired: true)
        try env.saveSettings(["smtp_port": "\(server.port)"])
        let d = try SmtpDiagnosis(try env.sendTestEmail())
        d.expect(status: 502, stage: "mail", kind: "rejected_permanent", hintContains: ["530", "requires authentication", "user", "password"])
        XCTAssertEqual(d.code, 530)
    }

    func testServerRequiresSTARTTLSThatWasNotOffered() throws {
        let server = try HostileSmtpServer(mode: "starttls_stripped")
        try env.saveSettings(["smtp_port": "\(server.port)"])
        let d = try SmtpDiagnosis(try env.sendTestEmail())
        d.expect(status: 502, stage: "mail", kind: "rejected_permanent", hintContains: ["530 5.7.0", "STARTTLS", "SSL/TLS"])
        XCTAssertFalse(d.hint.contains("set a user"), d.hint)
    }

    // MARK: - Certificates

    func testVerificationFailuresNameTheCertificate() throws {
        let cases: [(certificate: String, ca: Bool, says: String)] = [
            ("wronghost", true, "mail.example.org"), ("expired", true, "expired"), ("selfsigned", false, "self-signed"),
        ]
        for c in cases {
            let server = try SmtpTestServer(mode: .implicit, certificate: c.certificate)
            try env.saveSettings(["smtp_port": "\(server.port)", "smtp_connection_type": "SSL", "smtp_tls_ca_pem": c.ca ? caPEM : ""])
            let d = try SmtpDiagnosis(try env.checkConnection())
            let fingerprint = try certificateFingerprint(certificates.certificate(c.certificate))
            let certificate = try XCTUnwrap(d.certificate, d.response.text)
            let notAfter = certificate["not_after"] as? String ?? ""
            let names = (certificate["subject_alt_names"] as? [String] ?? []).map { $0.split(separator: ":", maxSplits: 1).last.map(String.init) ?? $0 }
            XCTAssertEqual(certificate["sha256_fingerprint"] as? String, fingerprint, c.certificate)
            XCTAssertFalse(names.isEmpty, d.response.text)
            XCTAssertEqual(notAfter.count, 20, "not_after \(notAfter)")
            if c.certificate == "expired" { XCTAssertEqual(notAfter, "2021-01-01T00:00:00Z") }
            // The hint: what is wrong, which names the certificate covers, its expiry, the pin.
            d.expect(status: 502, stage: "tls", kind: "tls_verify", hintContains: [c.says, fingerprint, String(notAfter.prefix(10))] + names)
        }
    }

    /// Issue 14 through nginx: the server's own fault is named with whom to ask, and the
    /// kinds are the contract's.
    func testIncompleteChainAndCommonNameOnlyNameTheServersFault() throws {
        let incomplete = try SmtpTestServer(mode: .implicit, certificate: "incomplete")
        try env.saveSettings(["smtp_port": "\(incomplete.port)", "smtp_connection_type": "SSL", "smtp_tls_ca_pem": caPEM])
        let chain = try SmtpDiagnosis(try env.checkConnection())
        chain.expect(status: 502, stage: "tls", kind: "tls_verify",
                     hintContains: ["does not send its intermediate certificate", "install the full chain", "Extra trusted certificate authorities"])

        let cnOnly = try SmtpTestServer(mode: .implicit, certificate: "cnonly")
        try env.saveSettings(["smtp_port": "\(cnOnly.port)", "smtp_connection_type": "SSL", "smtp_tls_ca_pem": caPEM])
        let names = try SmtpDiagnosis(try env.checkConnection())
        names.expect(status: 502, stage: "tls", kind: "tls_verify", hintContains: ["only in its common name", "subjectAltName for 127.0.0.1"])
        XCTAssertFalse(names.hint.contains("not 127.0.0.1"), names.hint)
    }

    func testTemporaryRefusalsAndPolicyClosesNameAFix() throws {
        let banner = try HostileSmtpServer(mode: "banner_421")
        try env.saveSettings(["smtp_port": "\(banner.port)"])
        let busy = try SmtpDiagnosis(try env.checkConnection())
        busy.expect(status: 502, stage: "greeting", kind: "rejected_temporary",
                    hintContains: ["421 4.3.2", "temporarily not accepting connections", "try again in a few minutes"])
        XCTAssertFalse(busy.hint.contains("refuses connections from here"), busy.hint)

        let tls454 = try HostileSmtpServer(mode: "starttls_454")
        try env.saveSettings(["smtp_port": "\(tls454.port)", "smtp_connection_type": "STARTTLS"])
        let local = try SmtpDiagnosis(try env.checkConnection())
        local.expect(status: 502, stage: "starttls", kind: "rejected_temporary",
                     hintContains: ["454 4.7.0 TLS not available due to local problem", "TLS setup is broken", "administrator"])

        let plain = try HostileSmtpServer(mode: "no_starttls")
        try env.saveSettings(["smtp_port": "\(plain.port)", "smtp_connection_type": "STARTTLS"])
        let offered = try SmtpDiagnosis(try env.checkConnection())
        offered.expect(status: 502, stage: "starttls", kind: "tls_handshake",
                       hintContains: ["does not offer encryption", "587", "Connection security STARTTLS", "465"])
    }

    // MARK: - Delivery refused

    func testRelayDenied() throws {
        let server = try HostileSmtpServer(mode: "relay_denied")
        try env.saveSettings(["smtp_port": "\(server.port)"])
        let d = try SmtpDiagnosis(try env.sendTestEmail(to: "someone@elsewhere.example"))
        d.expect(status: 502, stage: "rcpt", kind: "rejected_permanent", hintContains: ["relay", "554 5.7.1", "authenticat"])
        XCTAssertEqual(d.enhancedCode, "5.7.1")
    }

    // MARK: - Reaching the server

    func testConnectionRefusedVersusNoAnswer() throws {
        let closed = smtpUnusedLoopbackPort()
        try env.saveSettings(["smtp_port": "\(closed)"])
        let refused = try SmtpDiagnosis(try env.checkConnection())
        refused.expect(status: 502, stage: "connect", kind: "refused", hintContains: ["refused", "nothing listens", "127.0.0.1:\(closed)"])

        // A listener that never takes the connection: SYNs dropped, as by a firewall.
        let backlog = try HostileSmtpServer(mode: "backlog_full")
        try env.saveSettings(["smtp_port": "\(backlog.port)"])
        var started = Date()
        let dropped = try SmtpDiagnosis(try env.checkConnection())
        dropped.expect(status: 504, stage: "connect", kind: "timeout", hintContains: ["no answer within 2 s", "firewall"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)

        // A server that takes the connection and never says a word.
        let silent = try HostileSmtpServer(mode: "silent")
        try env.saveSettings(["smtp_port": "\(silent.port)"])
        started = Date()
        let mute = try SmtpDiagnosis(try env.checkConnection())
        mute.expect(status: 504, stage: "greeting", kind: "timeout", hintContains: ["no greeting within 3 s"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertNotEqual(refused.hint, dropped.hint)
        XCTAssertNotEqual(dropped.hint, mute.hint)
    }

    func testUnknownHostName() throws {
        // RFC 2606: .invalid never resolves.
        try env.saveSettings(["smtp_host": "mail.example.invalid"])
        let d = try SmtpDiagnosis(try env.sendTestEmail())
        d.expect(status: 502, stage: "dns", kind: "rejected_permanent", hintContains: ["mail.example.invalid", "does not resolve", "spelling", "SMTP server"])
        XCTAssertFalse(d.hint.contains("Name or service not known"), d.hint)
    }

    // MARK: - Helpers

    /// Neither the password nor the base64 forms AUTH PLAIN / LOGIN would carry it in.
    func assertNoPassword(_ password: String, user: String, in text: String, file: StaticString = #filePath, line: UInt = #line) {
        let plain = Data(([0] + Array(user.utf8) + [0] + Array(password.utf8))).base64EncodedString()
        let login = Data(password.utf8).base64EncodedString()
        for secret in [password, plain, login] {
            XCTAssertFalse(text.contains(secret), "the answer contains \(secret)", file: file, line: line)
        }
    }
}
