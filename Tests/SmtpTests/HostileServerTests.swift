import Foundation
import Smtp
import TestSupport
import XCTest

/// Misbehaving servers: each case ends with the right stage and kind, within its
/// deadline plus one second.
final class HostileServerTests: XCTestCase {
    private let commandTimeout = 1.5

    private func run(_ mode: String, security: SmtpSettings.Security = .none, certificate: String? = nil,
                     limit: Double? = nil, send: Bool = true,
                     _ configure: (inout SmtpSettings) -> Void = { _ in }) throws -> (SmtpError?, SmtpDeliveryReport?, HostileSmtpServer) {
        let server = try HostileSmtpServer(mode: mode, certificate: certificate)
        let settings = try loopbackSettings(port: server.port, security: security, host: "localhost") {
            $0.commandTimeout = commandTimeout
            $0.sessionTimeout = 20
            configure(&$0)
        }
        let started = Date()
        var failure: SmtpError?
        var report: SmtpDeliveryReport?
        do {
            if send {
                report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                             message: testMessage(), settings: settings)
            } else {
                _ = try SmtpClient.check(settings)
            }
        } catch let error as SmtpError {
            failure = error
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, (limit ?? commandTimeout) + 1, "\(mode) took \(elapsed) s")
        return (failure, report, server)
    }

    private func expect(_ mode: String, stage: SmtpError.Stage, kind: SmtpError.Kind, code: Int? = nil, enhanced: String? = nil,
                        limit: Double? = nil, file: StaticString = #filePath, line: UInt = #line,
                        _ configure: (inout SmtpSettings) -> Void = { _ in }) throws -> SmtpError? {
        let (error, _, _) = try run(mode, limit: limit, configure)
        guard let error else { XCTFail("\(mode) succeeded", file: file, line: line); return nil }
        XCTAssertEqual(error.stage, stage, "\(mode): \(error)", file: file, line: line)
        XCTAssertEqual(error.kind, kind, "\(mode): \(error)", file: file, line: line)
        if let code { XCTAssertEqual(error.replyCode, code, file: file, line: line) }
        if let enhanced { XCTAssertEqual(error.enhancedCode, enhanced, file: file, line: line) }
        return error
    }

    func testSilentServer() throws {
        let error = try expect("silent", stage: .greeting, kind: .timeout)
        XCTAssertEqual(error?.hint.hasPrefix("no greeting within 1.5 s"), true, error?.hint ?? "")
    }

    func testSlowBannerIsBoundedByTheCommandTimeout() throws {
        _ = try expect("slow_banner", stage: .greeting, kind: .timeout)
    }

    func testSessionDeadlineBoundsASlowBanner() throws {
        let error = try expect("slow_banner", stage: .greeting, kind: .timeout, limit: 2) {
            $0.commandTimeout = 30
            $0.sessionTimeout = 2
        }
        XCTAssertEqual(error?.hint, "the session deadline of 2 s passed during greeting")
    }

    func testHangAfterEHLO() throws {
        _ = try expect("hang_after_ehlo", stage: .ehlo, kind: .timeout)
    }

    func testHangAfterFinalDot() throws {
        let error = try expect("hang_after_dot", stage: .data, kind: .timeout)
        XCTAssertEqual(error?.hint, "no reply to the end of the message within 1.5 s")
    }

    func testGarbage() throws {
        let error = try expect("garbage", stage: .greeting, kind: .protocol)
        XCTAssertTrue(error?.hint.contains("does not speak SMTP") ?? false)
    }

    func testMegabyteLineWithoutCRLF() throws {
        let error = try expect("long_line", stage: .greeting, kind: .protocol)
        XCTAssertTrue(error?.hint.contains("longer than 4096 bytes") ?? false, error?.hint ?? "")
    }

    func testDropDuringData() throws {
        let error = try expect("drop_during_data", stage: .data, kind: .protocol)
        XCTAssertTrue(error?.hint.contains("closed the connection during data") ?? false, error?.hint ?? "")
    }

    func testBanner421IsTemporary() throws {
        let error = try expect("banner_421", stage: .greeting, kind: .rejectedTemporary, code: 421)
        XCTAssertEqual(error?.isTransient, true)
    }

    func testAuth535() throws {
        let error = try expect("auth_535", stage: .auth, kind: .authRejected, code: 535, enhanced: "5.7.8") {
            $0.authentication = .plain
            $0.username = "alice"
            $0.password = { "hunter2" }
            $0.allowCleartextAuthentication = true
        }
        XCTAssertEqual(error?.hint, "credentials rejected (535 5.7.8): check the user name and password (some providers require an app password)")
        XCTAssertEqual(error?.isPermanent, true)
    }

    func testRcpt550() throws {
        let error = try expect("rcpt_550", stage: .rcpt, kind: .rejectedPermanent, code: 550, enhanced: "5.1.1")
        XCTAssertTrue(error?.hint.hasPrefix("recipient refused (550 5.1.1") ?? false)
    }

    func testMixedRecipientsReportEachOutcome() throws {
        let server = try HostileSmtpServer(mode: "rcpt_mixed")
        let settings = try loopbackSettings(port: server.port, security: .none)
        let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["good@example.com", "bad@example.com"]),
                                         message: testMessage(), settings: settings)
        XCTAssertEqual(report.recipients.map(\.delivered), [true, false])
        XCTAssertEqual(report.recipients[1].error?.kind, .rejectedPermanent)
    }

    func testData451IsTemporary() throws {
        let error = try expect("data_451", stage: .data, kind: .rejectedTemporary, code: 451, enhanced: "4.3.0")
        XCTAssertEqual(error?.isTransient, true)
        XCTAssertTrue(error?.hint.contains("try again later") ?? false)
    }

    func testStartTLSRequiredButNotOfferedSendsNoCredentials() throws {
        let (error, _, server) = try run("no_starttls", security: .startTLSRequired, send: false) {
            $0.authentication = .plain
            $0.username = "alice"
            $0.password = { "hunter2" }
        }
        XCTAssertEqual(error?.stage, .starttls)
        XCTAssertEqual(error?.kind, .tlsHandshake, "encryption could not be set up; not a sign-in mechanism")
        XCTAssertEqual(error?.hint, "the server on port \(server.port) does not offer encryption (no STARTTLS), so the password and mail would travel unprotected: "
                       + "use the port the mail provider documents for submission, usually port 587 with Connection security STARTTLS, or port 465 with SSL/TLS")
        let received = String(decoding: server.received, as: UTF8.self)
        XCTAssertTrue(received.contains("EHLO"), received)
        XCTAssertFalse(received.contains("AUTH"), received)
        XCTAssertFalse(received.contains("hunter2"))
        XCTAssertFalse(received.contains("aHVudGVyMg"))  // base64 of the password
    }

    func testPlaintextInjectedAfterSTARTTLSIsDiscarded() throws {
        let (error, report, _) = try run("starttls_inject", security: .startTLSRequired, certificate: "good") {
            $0.authentication = .plain
            $0.username = "alice"
            $0.password = { "hunter2" }
        }
        XCTAssertNil(error)
        let transcript = report?.transcript.text ?? ""
        XCTAssertTrue(transcript.contains("discarded"), transcript)
        XCTAssertFalse(transcript.contains("injected.test"), transcript)
        XCTAssertEqual(report?.server.authMechanism, "PLAIN")
    }

    func testConnectTimeoutWhenSYNsAreDropped() throws {
        let server = try HostileSmtpServer(mode: "backlog_full")
        let settings = try loopbackSettings(port: server.port, security: .none) { $0.connectTimeout = 1 }
        let started = Date()
        assertSmtpError(try SmtpClient.check(settings), stage: .connect, kind: .timeout) { error in
            XCTAssertEqual(error.hint, "no answer within 1 s from 127.0.0.1:\(server.port): a firewall may drop the traffic")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }

    func testTLSHandshakeTimeout() throws {
        let (error, _, _) = try run("silent", security: .implicitTLS, send: false)
        XCTAssertEqual(error?.stage, .tls)
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertTrue(error?.hint.hasPrefix("TLS handshake did not finish within 1.5 s") ?? false, error?.hint ?? "")
    }

    func testHELOFallback() throws {
        let (error, report, _) = try run("helo_only")
        XCTAssertNil(error)
        XCTAssertEqual(report?.server.capabilities.extended, false)
    }
}
