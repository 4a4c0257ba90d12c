import Foundation
import Smtp
import TestSupport
import XCTest

/// `emailsetup send` and `check` end to end: exit statuses, the --json shape and the
/// bytes the real aiosmtpd fixture receives. The binary runs with ScriptRunner
/// (posix_spawn, bounded); its stdout and stderr come back as one text.
final class CommandLineTests: XCTestCase {
    /// The emailsetup executable built next to this test bundle.
    private func executable() throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("emailsetup").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        XCTFail("emailsetup is not built next to \(CommandLine.arguments[0]); run `swift build` first")
        throw XCTSkip("no emailsetup executable")
    }

    private func json(_ line: Substring) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
    }

    /// The --json lines of a run's output (stderr lines are mixed in and skipped).
    private func jsonLines(_ output: String) -> [Substring] {
        output.split(separator: "\n").filter { $0.hasPrefix("{") }
    }

    private func run(_ binary: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try ScriptRunner.runWithStatus(binary, arguments, environment: environment, timeout: 60)
    }

    func testSendAndCheckAgainstARealServer() throws {
        let binary = try executable()
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "s3cret")
        let certificates = try SmtpTestCertificates.shared()
        var environment = ["SMTP_TEST_PASSWORD": "s3cret"]
        let settings = ["--host", "localhost", "--port", String(server.port), "--security", "starttls", "--user", "alice",
                        "--password-env", "SMTP_TEST_PASSWORD", "--ca-file", certificates.certificate("ca"),
                        "--from", "app@example.com", "--command-timeout", "10"]

        let check = try run(binary, ["check", "--json"] + settings, environment: environment)
        XCTAssertEqual(check.status, 0, check.output)
        let checked = json(jsonLines(check.output).first ?? "")
        XCTAssertEqual(checked["ok"] as? Bool, true)
        XCTAssertNotNil(checked["server"])
        XCTAssertFalse(check.output.contains("s3cret"))

        let send = try run(binary, ["send", "--to", "ops@example.com", "--subject", "CLI", "--count", "6",
                                    "--connections", "2", "--json"] + settings, environment: environment)
        XCTAssertEqual(send.status, 0, send.output)
        let lines = jsonLines(send.output)
        XCTAssertEqual(lines.count, 6)
        XCTAssertTrue(lines.allSatisfy { json($0)["ok"] as? Bool == true }, send.output)
        let received = try server.waitForMessages(count: 6)
        XCTAssertTrue(received[0].text.contains("Subject: CLI\r\n"))
        XCTAssertTrue(received[0].text.contains("Message-ID: <"))
        XCTAssertEqual(Set(received.map { $0.text.components(separatedBy: "Message-ID: ")[1].prefix(30) }).count, 6)

        environment["SMTP_TEST_PASSWORD"] = "wrong"
        let rejected = try run(binary, ["check", "--json"] + settings, environment: environment)
        XCTAssertEqual(rejected.status, 3)
        let failure = json(jsonLines(rejected.output).first ?? "")
        XCTAssertEqual(failure["ok"] as? Bool, false)
        XCTAssertEqual(failure["stage"] as? String, "auth")
        XCTAssertEqual(failure["kind"] as? String, "auth_rejected")
        XCTAssertEqual(failure["code"] as? Int, 535)
        XCTAssertEqual(failure["enhanced_code"] as? String, "5.7.8")
        XCTAssertEqual(failure["hint"] as? String, "credentials rejected (535 5.7.8): check the user name and password (some providers require an app password)")
        XCTAssertNotNil(failure["certificate"] as? [String: Any])
    }

    /// `send --auth xoauth2 --oauth-token-env VAR` against the Exchange-flavoured OAuth
    /// fixture: delivered with the token, refused with a revoked one (exit 3, the
    /// Authenticated SMTP hint), and the token is never printed.
    func testSendWithAnOAuthTokenFromTheEnvironment() throws {
        let binary = try executable()
        let token = jwtLikeToken()
        let server = try OAuthSmtpTestServer(flavor: .exchange, tokens: .map([token: "alice@example.test"]))
        let certificates = try SmtpTestCertificates.shared()
        let environment = ["SMTP_TEST_TOKEN": token]
        let settings = ["--host", "localhost", "--port", String(server.port), "--security", "starttls", "--user", "alice@example.test",
                        "--ca-file", certificates.certificate("ca"), "--from", "alice@example.test", "--command-timeout", "10"]
        let leaks = [token, Data(token.utf8).base64EncodedString(),
                     Data("user=alice@example.test\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8).base64EncodedString()]

        let send = try run(binary, ["send", "--to", "ops@example.com", "--subject", "OAuth CLI", "--auth", "xoauth2",
                                    "--oauth-token-env", "SMTP_TEST_TOKEN", "--json"] + settings, environment: environment)
        XCTAssertEqual(send.status, 0, send.output)
        XCTAssertEqual(json(jsonLines(send.output).first ?? "")["ok"] as? Bool, true, send.output)
        let received = try server.waitForMessages(count: 1)[0]
        XCTAssertEqual(received.mechanism, "XOAUTH2")
        XCTAssertEqual(received.user, "alice@example.test")
        XCTAssertTrue(received.text.contains("Subject: OAuth CLI\r\n"))

        try server.setTokens([:])
        let refused = try run(binary, ["check", "--auth", "xoauth2", "--oauth-token-env", "SMTP_TEST_TOKEN", "--json"] + settings,
                              environment: environment)
        XCTAssertEqual(refused.status, 3, refused.output)
        let failure = json(jsonLines(refused.output).first ?? "")
        XCTAssertEqual(failure["stage"] as? String, "auth")
        XCTAssertEqual(failure["code"] as? Int, 535)
        XCTAssertTrue((failure["hint"] as? String)?.contains("SMTP AUTH is disabled for this mailbox or tenant: enable Authenticated SMTP") ?? false, refused.output)
        let text = try run(binary, ["check", "--auth", "oauthbearer", "--oauth-token-env", "SMTP_TEST_TOKEN"] + settings, environment: environment)
        XCTAssertEqual(text.status, 3, text.output)
        XCTAssertTrue(text.output.contains("C: AUTH OAUTHBEARER <redacted>"), text.output)
        for output in [send.output, refused.output, text.output] {
            for leak in leaks { XCTAssertFalse(output.contains(leak), "the token was printed: \(output)") }
        }

        let missing = try run(binary, ["check", "--auth", "xoauth2"] + settings)
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.output.contains("--auth xoauth2 needs --oauth-token-env VAR"), missing.output)
        let unset = try run(binary, ["check", "--auth", "oauthbearer", "--oauth-token-env", "NO_SUCH_TOKEN_VAR"] + settings)
        XCTAssertEqual(unset.status, 2, unset.output)
        XCTAssertTrue(unset.output.contains("environment variable NO_SUCH_TOKEN_VAR (--oauth-token-env) is not set"), unset.output)
    }

    func testExitStatuses() throws {
        let binary = try executable()
        let usage = try run(binary, ["send", "--to", "a@example.com", "--host", "127.0.0.1", "--security", "bogus", "--from", "a@example.com"])
        XCTAssertEqual(usage.status, 2)
        XCTAssertTrue(usage.output.contains("--security"), usage.output)
        let stored = try run(binary, ["check", "--stored", "--config", "/nonexistent/emailsetup.conf"])
        XCTAssertEqual(stored.status, 2)
        XCTAssertTrue(stored.output.contains("--stored: cannot use the responder configuration /nonexistent/emailsetup.conf"), stored.output)
        let refused = try run(binary, ["check", "--host", "127.0.0.1", "--port", String(smtpUnusedLoopbackPort()),
                                       "--security", "none", "--from", "a@example.com", "--json"])
        XCTAssertEqual(refused.status, 3)
        XCTAssertEqual(json(jsonLines(refused.output).first ?? "")["kind"] as? String, "refused")
        let silent = try HostileSmtpServer(mode: "silent")
        let timeout = try run(binary, ["check", "--host", "127.0.0.1", "--port", String(silent.port), "--security", "none",
                                       "--from", "a@example.com", "--command-timeout", "1"])
        XCTAssertEqual(timeout.status, 4)
        XCTAssertTrue(timeout.output.contains("hint: no greeting within 1 s"), timeout.output)
    }

    /// ArgumentParser's own parse errors (64 by default) are exit 2 too, with its message.
    func testParseErrorsAndBadAddressesAreExitTwo() throws {
        let binary = try executable()
        let server = try SmtpTestServer(mode: .plain)
        let settings = ["--host", "127.0.0.1", "--port", String(server.port), "--security", "none", "--from", "app@example.com"]

        let unknown = try run(binary, ["send", "--to", "a@example.com", "--bogus"] + settings)
        XCTAssertEqual(unknown.status, 2, unknown.output)
        XCTAssertTrue(unknown.output.contains("Error: Unknown option '--bogus'"), unknown.output)
        XCTAssertTrue(unknown.output.contains("See 'emailsetup send --help'"), unknown.output)
        let missing = try run(binary, ["check"] + settings + ["--port"])
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.output.contains("Missing value for '--port"), missing.output)
        let help = try run(binary, ["send", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("2 bad usage or input"), help.output)

        let badTo = try run(binary, ["send", "--to", "a@example.com", "--to", "not an address"] + settings)
        XCTAssertEqual(badTo.status, 2, badTo.output)
        XCTAssertTrue(badTo.output.contains("emailsetup send: --to not an address is not a usable address"), badTo.output)
        let badFrom = try run(binary, ["send", "--to", "a@example.com", "--host", "127.0.0.1", "--from", "app@"])
        XCTAssertEqual(badFrom.status, 2, badFrom.output)
        XCTAssertTrue(badFrom.output.contains("--from app@"), badFrom.output)
        XCTAssertEqual(server.messageCount, 0, "nothing may be sent when the input is bad")
    }

    /// Two recipients and a UTF-8 subject and body, checked in the bytes the server got:
    /// both RCPTs, the subject as RFC 2047 encoded-words that decode (by Python's
    /// `email`) to what was typed, the body as quoted-printable that decodes back.
    func testSendsTheBuildersMessageToSeveralRecipients() throws {
        let binary = try executable()
        let server = try SmtpTestServer(mode: .plain)
        let directory = try TemporaryDirectory(prefix: "cli-body")
        let subject = "Grüße aus Köln – Prüfung ✓"
        let body = "Hallo,\nÄnderungen sind gespeichert.\n.\nEnde\n"
        let bodyFile = directory.path + "/body.txt"
        try body.write(toFile: bodyFile, atomically: true, encoding: .utf8)

        let send = try run(binary, ["send", "--to", "ops@example.com", "--to", "Desk Team <desk@example.com>", "--subject", subject,
                                    "--body-file", bodyFile, "--host", "127.0.0.1", "--port", String(server.port),
                                    "--security", "none", "--from", "app@example.com"])
        XCTAssertEqual(send.status, 0, send.output)
        XCTAssertTrue(send.output.contains("delivered to ops@example.com"), send.output)
        XCTAssertTrue(send.output.contains("delivered to desk@example.com"), send.output)

        let received = try XCTUnwrap(server.waitForMessages(count: 1).first)
        XCTAssertEqual(received.mailFrom, "app@example.com")
        XCTAssertEqual(received.recipients, ["ops@example.com", "desk@example.com"])
        let text = received.text
        XCTAssertTrue(text.contains("\r\nSubject: =?utf-8?"), text)
        XCTAssertFalse(text.contains("Köln"), "a raw UTF-8 subject reached the wire")
        XCTAssertTrue(text.contains("\r\nTo: ops@example.com, Desk Team <desk@example.com>\r\n"), text)
        XCTAssertTrue(text.contains("\r\nFrom: app@example.com\r\n"), text)
        XCTAssertTrue(text.contains("\r\nMessage-ID: <"), text)
        XCTAssertTrue(text.contains("\r\nContent-Transfer-Encoding: quoted-printable\r\n"), text)

        let decoded = try ScriptRunner.run(SmtpFixtures.python, ["-c", """
            import email, sys
            from email.header import decode_header, make_header
            m = email.message_from_bytes(open(sys.argv[1], 'rb').read())
            sys.stdout.write(str(make_header(decode_header(m['Subject']))) + '\\0' + m.get_payload(decode=True).decode('utf-8'))
            """, server.outbox.path + "/msg-1.eml"])
        let parts = decoded.components(separatedBy: "\0")
        XCTAssertEqual(parts.first, subject)
        XCTAssertEqual(parts.last, body.replacingOccurrences(of: "\n", with: "\r\n"))
    }
}
