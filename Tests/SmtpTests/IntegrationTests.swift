import Foundation
import Synchronization
import Smtp
import TestSupport
import XCTest

/// A minimal RFC 5322 message for tests (the real builder lives in Smtp/Message).
func testMessage(from: String = "app@example.com", to: String = "ops@example.com", subject: String = "Test",
                 body: String = "Hello.\r\n") -> [UInt8] {
    Array("From: <\(from)>\r\nTo: <\(to)>\r\nSubject: \(subject)\r\nDate: Tue, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t\(UUID().uuidString)@example.com>\r\n\r\n\(body)".utf8)
}

/// Settings for a fixture on loopback with short, test-friendly timeouts.
func loopbackSettings(port: Int, security: SmtpSettings.Security, host: String = "127.0.0.1",
                      _ configure: (inout SmtpSettings) -> Void = { _ in }) throws -> SmtpSettings {
    var settings = SmtpSettings(host: host, port: port, security: security)
    settings.senderAddress = "app@example.com"
    settings.connectTimeout = 5
    settings.commandTimeout = 10
    settings.sessionTimeout = 30
    if security != .none {
        settings.extraCAPEM = try SmtpTestCertificates.shared().pem("ca")
    }
    configure(&settings)
    return settings
}

func assertSmtpError<T>(_ expression: @autoclosure () throws -> T, stage: SmtpError.Stage, kind: SmtpError.Kind,
                        file: StaticString = #filePath, line: UInt = #line, _ more: (SmtpError) -> Void = { _ in }) {
    do {
        _ = try expression()
        XCTFail("expected \(stage.rawValue)/\(kind.rawValue), got success", file: file, line: line)
    } catch let error as SmtpError {
        XCTAssertEqual(error.stage, stage, "\(error)", file: file, line: line)
        XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
        more(error)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// Delivery through the real aiosmtpd server for every security mode and mechanism;
/// each message is checked on the server side.
final class DeliveryIntegrationTests: XCTestCase {
    func testPlainDeliveryChecksEnvelopeDotStuffingAndHeaders() throws {
        let server = try SmtpTestServer(mode: .plain)
        let settings = try loopbackSettings(port: server.port, security: .none)
        let body = "Line one\r\n.starts with a dot\r\n..two dots\r\nbare LF\nend\r\n.\r\n"
        let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com", "cc@example.com"]),
                                         message: testMessage(subject: "Plain", body: body), settings: settings)
        XCTAssertEqual(report.reply.code, 250)
        XCTAssertTrue(report.allDelivered)
        XCTAssertNil(report.server.certificate)
        XCTAssertTrue(report.server.capabilities.pipelining)
        XCTAssertNotNil(report.timingsMilliseconds["connect"])
        XCTAssertNotNil(report.timingsMilliseconds["data"])
        XCTAssertTrue(report.transcript.lines.contains { $0.contains("C: QUIT") })
        let received = try server.waitForMessages(count: 1)[0]
        XCTAssertEqual(received.mailFrom, "app@example.com")
        XCTAssertEqual(received.recipients, ["ops@example.com", "cc@example.com"])
        XCTAssertEqual(received.ehlo, "example.com")
        XCTAssertTrue(received.mailOptions.contains { $0.hasPrefix("SIZE=") })
        XCTAssertTrue(received.text.hasPrefix("From: <app@example.com>\r\nTo: <ops@example.com>\r\nSubject: Plain\r\n"))
        XCTAssertTrue(received.text.hasSuffix("\r\n\r\nLine one\r\n.starts with a dot\r\n..two dots\r\nbare LF\r\nend\r\n.\r\n"), received.text)
    }

    func testStartTLSRequiredWithPlainAuth() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "s3cret")
        let settings = try loopbackSettings(port: server.port, security: .startTLSRequired, host: "localhost") {
            $0.authentication = .plain
            $0.username = "alice"
            $0.password = { "s3cret" }
        }
        let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                         message: testMessage(), settings: settings)
        XCTAssertEqual(report.server.authMechanism, "PLAIN")
        XCTAssertNotNil(report.server.tlsVersion)
        XCTAssertEqual(report.server.certificate?.subjectAlternativeNames.contains("DNS:localhost"), true)
        XCTAssertFalse(report.transcript.text.contains("s3cret"))
        let received = try server.waitForMessages(count: 1)[0]
        XCTAssertTrue(received.tls)
        XCTAssertEqual(received.login, "alice")
    }

    func testStartTLSOpportunisticWithLogin() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "bob", password: "pw")
        let settings = try loopbackSettings(port: server.port, security: .startTLSOpportunistic, host: "localhost") {
            $0.authentication = .login
            $0.username = "bob"
            $0.password = { "pw" }
        }
        let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                         message: testMessage(), settings: settings)
        XCTAssertEqual(report.server.authMechanism, "LOGIN")
        let received = try server.waitForMessages(count: 1)[0]
        XCTAssertTrue(received.tls)
        XCTAssertEqual(received.login, "bob")
    }

    func testOpportunisticWithoutOfferStaysPlain() throws {
        let server = try SmtpTestServer(mode: .plain)
        let settings = try loopbackSettings(port: server.port, security: .startTLSOpportunistic)
        let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                         message: testMessage(), settings: settings)
        XCTAssertNil(report.server.tlsVersion)
        XCTAssertTrue(report.transcript.text.contains("does not offer STARTTLS"))
        XCTAssertFalse(try server.waitForMessages(count: 1)[0].tls)
    }

    func testImplicitTLSWithCramMD5AndUTF8Credentials() throws {
        let server = try SmtpTestServer(mode: .implicit, user: "jörg", password: "pässwörd✓")
        let settings = try loopbackSettings(port: server.port, security: .implicitTLS, host: "localhost") {
            $0.authentication = .cramMD5
            $0.username = "jörg"
            $0.password = { "pässwörd✓" }
        }
        let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                         message: testMessage(), settings: settings)
        XCTAssertEqual(report.server.authMechanism, "CRAM-MD5")
        let received = try server.waitForMessages(count: 1)[0]
        XCTAssertTrue(received.tls)
        XCTAssertEqual(received.login, "jörg")
    }

    func testPlainAuthWithUTF8OverImplicitTLS() throws {
        let server = try SmtpTestServer(mode: .implicit, user: "jörg", password: "pässwörd✓")
        let settings = try loopbackSettings(port: server.port, security: .implicitTLS, host: "localhost") {
            $0.authentication = .plain
            $0.username = "jörg"
            $0.password = { "pässwörd✓" }
        }
        _ = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]), message: testMessage(), settings: settings)
        XCTAssertEqual(try server.waitForMessages(count: 1)[0].login, "jörg")
    }

    func testAutoChoosesStrongestOffered() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "u", password: "p")
        let settings = try loopbackSettings(port: server.port, security: .startTLSRequired, host: "localhost") {
            $0.authentication = .auto
            $0.username = "u"
            $0.password = { "p" }
        }
        XCTAssertEqual(try SmtpClient.check(settings).server.authMechanism, "CRAM-MD5")

        let noCram = try SmtpTestServer(mode: .starttls, user: "u", password: "p", excludeAuth: ["CRAM-MD5"])
        var second = settings
        second.port = noCram.port
        XCTAssertEqual(try SmtpClient.check(second).server.authMechanism, "PLAIN")
    }

    func testAutoNeverSendsCleartextPasswordWithoutTLS() throws {
        let server = try SmtpTestServer(mode: .plain, user: "u", password: "p", authRequireTLS: false, excludeAuth: ["CRAM-MD5"])
        let calls = Counter()
        var settings = try loopbackSettings(port: server.port, security: .none) {
            $0.authentication = .auto
            $0.username = "u"
            $0.password = { calls.increment(); return "p" }
        }
        assertSmtpError(try SmtpClient.check(settings), stage: .auth, kind: .mechanismUnsupported) { error in
            XCTAssertTrue(error.hint.contains("without TLS"), error.hint)
        }
        XCTAssertEqual(calls.value, 0)
        settings.allowCleartextAuthentication = true
        XCTAssertEqual(try SmtpClient.check(settings).server.authMechanism, "PLAIN")
        XCTAssertEqual(calls.value, 1)
    }

    func testWrongPasswordIsAuthRejected() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "right")
        let settings = try loopbackSettings(port: server.port, security: .startTLSRequired, host: "localhost") {
            $0.authentication = .plain
            $0.username = "alice"
            $0.password = { "wrong" }
        }
        assertSmtpError(try SmtpClient.check(settings), stage: .auth, kind: .authRejected) { error in
            XCTAssertEqual(error.replyCode, 535)
            XCTAssertEqual(error.enhancedCode, "5.7.8")
            XCTAssertEqual(error.hint, "credentials rejected (535 5.7.8): check the user name and password (some providers require an app password)")
            XCTAssertNotNil(error.certificate)
            XCTAssertTrue(error.transcript.text.contains("AUTH PLAIN <redacted>"))
        }
    }

    func testSMTPUTF8AndEightBitMIME() throws {
        let server = try SmtpTestServer(mode: .plain, smtputf8: true)
        let settings = try loopbackSettings(port: server.port, security: .none)
        _ = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["jörg@bücher.example"]),
                                message: testMessage(body: "Grüße\r\n"), settings: settings)
        let received = try server.waitForMessages(count: 1)[0]
        XCTAssertEqual(received.recipients, ["jörg@bücher.example"])
        XCTAssertTrue(received.mailOptions.contains("SMTPUTF8"), "\(received.mailOptions)")
        XCTAssertTrue(received.mailOptions.contains("BODY=8BITMIME"), "\(received.mailOptions)")
        XCTAssertTrue(received.text.contains("Grüße\r\n"))

        let ascii = try SmtpTestServer(mode: .plain, smtputf8: false)
        let asciiSettings = try loopbackSettings(port: ascii.port, security: .none)
        assertSmtpError(try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["jörg@bücher.example"]),
                                            message: testMessage(), settings: asciiSettings), stage: .mail, kind: .mechanismUnsupported) { error in
            XCTAssertTrue(error.hint.contains("SMTPUTF8"))
            XCTAssertFalse(error.transcript.text.contains("MAIL FROM"))
        }
    }

    func testSizeLimitRefusedLocally() throws {
        let server = try SmtpTestServer(mode: .plain, size: 500)
        let settings = try loopbackSettings(port: server.port, security: .none)
        assertSmtpError(try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
                                            message: testMessage(body: String(repeating: "x", count: 600) + "\r\n"), settings: settings),
                        stage: .mail, kind: .rejectedPermanent) { error in
            XCTAssertTrue(error.hint.contains("at most 500"), error.hint)
        }
        XCTAssertEqual(server.messageCount, 0)
    }

    func testOneConnectionManyMessagesWithAndWithoutPipelining() throws {
        for pipelining in [true, false] {
            let server = try SmtpTestServer(mode: .plain, pipelining: pipelining)
            let connection = try SmtpConnection.open(try loopbackSettings(port: server.port, security: .none))
            for index in 1...3 {
                let report = try connection.send(envelope: Envelope(from: "app@example.com", recipients: ["r\(index)@example.com"]),
                                                 message: testMessage(subject: "n\(index)"))
                XCTAssertEqual(report.reply.code, 250)
            }
            try connection.quit()
            XCTAssertTrue(connection.transcript.text.contains("C: RSET"))
            let received = try server.waitForMessages(count: 3)
            XCTAssertEqual(received.map(\.recipients), [["r1@example.com"], ["r2@example.com"], ["r3@example.com"]])
            XCTAssertTrue(received[2].text.contains("Subject: n3\r\n"))
        }
    }

    func testBulkOverFourConnectionsReportsEveryRecipient() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "u", password: "p")
        let settings = try loopbackSettings(port: server.port, security: .startTLSRequired, host: "localhost") {
            $0.authentication = .auto
            $0.username = "u"
            $0.password = { "p" }
        }
        let messages = (0..<20).map { SmtpClient.Outgoing(envelope: Envelope(from: "app@example.com", recipients: ["r\($0)@example.com"]),
                                                          message: testMessage(subject: "bulk \($0)")) }
        let outcomes = SmtpClient.sendBulk(messages, settings: settings, connections: 4)
        XCTAssertEqual(outcomes.count, 20)
        XCTAssertTrue(outcomes.allSatisfy(\.ok), "\(outcomes.compactMap(\.error))")
        XCTAssertEqual(Set(outcomes.map(\.connection)).count, 4)
        XCTAssertEqual(outcomes.map { $0.recipients.map(\.address) }, (0..<20).map { ["r\($0)@example.com"] })
        let received = try server.waitForMessages(count: 20)
        XCTAssertEqual(Set(received.flatMap(\.recipients)).count, 20)
    }

    func testBulkMakesEachMessageJustBeforeSendingIt() throws {
        let server = try SmtpTestServer(mode: .plain)
        let settings = try loopbackSettings(port: server.port, security: .none)
        let count = 240  // one connection: batches of 60
        let made = Mutex<(indices: [Int], mostAhead: Int)>(([], 0))
        let outcomes = SmtpClient.sendBulk(count: count, settings: settings, connections: 1) { index in
            // How far ahead of the server making this message is.
            let ahead = index - server.messageCount
            made.withLock { made in
                made.indices.append(index)
                made.mostAhead = max(made.mostAhead, ahead)
            }
            return SmtpClient.Outgoing(envelope: Envelope(from: "app@example.com", recipients: ["r\(index)@example.com"]),
                                       message: testMessage(subject: "lazy \(index)"))
        }
        XCTAssertEqual(outcomes.count, count)
        XCTAssertTrue(outcomes.allSatisfy(\.ok), "\(outcomes.compactMap(\.error).prefix(3))")
        XCTAssertEqual(made.withLock { $0.indices }, Array(0..<count), "each message made once, in order")
        // All made up front would be 239 ahead; on demand it is at most a batch or two.
        XCTAssertLessThanOrEqual(made.withLock { $0.mostAhead }, 120)
        XCTAssertEqual(try server.waitForMessages(count: count).count, count)
    }

    func testCheckSendsNothing() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "u", password: "p")
        let settings = try loopbackSettings(port: server.port, security: .startTLSRequired, host: "localhost") {
            $0.authentication = .cramMD5
            $0.username = "u"
            $0.password = { "p" }
        }
        let report = try SmtpClient.check(settings)
        XCTAssertTrue(report.server.capabilities.startTLS == false)  // after STARTTLS it is no longer offered
        XCTAssertNotNil(report.server.certificate)
        XCTAssertNotNil(report.timingsMilliseconds["tls"])
        XCTAssertNotNil(report.timingsMilliseconds["auth"])
        XCTAssertTrue(report.transcript.text.contains("C: QUIT"))
        XCTAssertFalse(report.transcript.text.contains("MAIL FROM"))
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
        XCTAssertNotNil(json?["server"])
        usleep(200_000)
        XCTAssertEqual(server.messageCount, 0)
    }

    func testConnectionRefusedAndLocalhostTriesEveryAddress() throws {
        let port = smtpUnusedLoopbackPort()
        let settings = try loopbackSettings(port: port, security: .none, host: "localhost")
        let started = Date()
        assertSmtpError(try SmtpClient.check(settings), stage: .connect, kind: .refused) { error in
            XCTAssertEqual(error.hint, "connection refused: nothing listens on localhost:\(port); check the port and that the SMTP server runs")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        // The fixture listens on 127.0.0.1 only: "localhost" may resolve to ::1 first, which refuses.
        let server = try SmtpTestServer(mode: .plain)
        XCTAssertNoThrow(try SmtpClient.check(try loopbackSettings(port: server.port, security: .none, host: "localhost")))
    }

    func testUnresolvableHostIsDNSFailure() throws {
        let settings = try loopbackSettings(port: 25, security: .none, host: "no-such-host.invalid") { $0.sessionTimeout = 5 }
        let started = Date()
        do {
            _ = try SmtpClient.check(settings)
            XCTFail("resolved a .invalid name")
        } catch let error as SmtpError {
            XCTAssertEqual(error.stage, .dns)
            XCTAssertTrue([.rejectedPermanent, .timeout].contains(error.kind), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 6)
    }
}
