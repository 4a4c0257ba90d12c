import Foundation
import Smtp
import TestSupport
import XCTest

/// `emailsetup send` and `check` end to end: exit statuses and the --json shape.
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

    func testSendAndCheckAgainstARealServer() throws {
        let binary = try executable()
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "s3cret")
        let certificates = try SmtpTestCertificates.shared()
        var environment = ProcessInfo.processInfo.environment
        environment["SMTP_TEST_PASSWORD"] = "s3cret"
        let settings = ["--host", "localhost", "--port", String(server.port), "--security", "starttls", "--user", "alice",
                        "--password-env", "SMTP_TEST_PASSWORD", "--ca-file", certificates.certificate("ca"),
                        "--from", "app@example.com", "--command-timeout", "10"]

        let check = try ManagedProcess.run(binary, ["check", "--json"] + settings, environment: environment)
        XCTAssertEqual(check.status, 0, check.stderr)
        let checked = json(check.stdout.split(separator: "\n").first ?? "")
        XCTAssertEqual(checked["ok"] as? Bool, true)
        XCTAssertNotNil(checked["server"])
        XCTAssertFalse(check.stdout.contains("s3cret"))

        let send = try ManagedProcess.run(binary, ["send", "--to", "ops@example.com", "--subject", "CLI", "--count", "6",
                                                   "--connections", "2", "--json"] + settings, environment: environment)
        XCTAssertEqual(send.status, 0, send.stderr)
        let lines = send.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        XCTAssertTrue(lines.allSatisfy { json($0)["ok"] as? Bool == true }, send.stdout)
        let received = try server.waitForMessages(count: 6)
        XCTAssertTrue(received[0].text.contains("Subject: CLI\r\n"))
        XCTAssertTrue(received[0].text.contains("Message-ID: <"))
        XCTAssertEqual(Set(received.map { $0.text.components(separatedBy: "Message-ID: ")[1].prefix(30) }).count, 6)

        environment["SMTP_TEST_PASSWORD"] = "wrong"
        let rejected = try ManagedProcess.run(binary, ["check", "--json"] + settings, environment: environment)
        XCTAssertEqual(rejected.status, 3)
        let failure = json(rejected.stdout.split(separator: "\n").first ?? "")
        XCTAssertEqual(failure["ok"] as? Bool, false)
        XCTAssertEqual(failure["stage"] as? String, "auth")
        XCTAssertEqual(failure["kind"] as? String, "auth_rejected")
        XCTAssertEqual(failure["code"] as? Int, 535)
        XCTAssertEqual(failure["enhanced_code"] as? String, "5.7.8")
        XCTAssertEqual(failure["hint"] as? String, "credentials rejected (535 5.7.8): check the user name and password (some providers require an app password)")
        XCTAssertNotNil(failure["certificate"] as? [String: Any])
    }

    func testExitStatuses() throws {
        let binary = try executable()
        let usage = try ManagedProcess.run(binary, ["send", "--to", "a@example.com", "--host", "127.0.0.1", "--security", "bogus", "--from", "a@example.com"])
        XCTAssertEqual(usage.status, 2)
        XCTAssertTrue(usage.stderr.contains("--security"), usage.stderr)
        let stored = try ManagedProcess.run(binary, ["check", "--stored"])
        XCTAssertEqual(stored.status, 2)
        XCTAssertTrue(stored.stderr.contains("--stored"), stored.stderr)
        let refused = try ManagedProcess.run(binary, ["check", "--host", "127.0.0.1", "--port", String(smtpUnusedLoopbackPort()),
                                                      "--security", "none", "--from", "a@example.com", "--json"])
        XCTAssertEqual(refused.status, 3)
        XCTAssertEqual(json(refused.stdout.split(separator: "\n").first ?? "")["kind"] as? String, "refused")
        let silent = try HostileSmtpServer(mode: "silent")
        let timeout = try ManagedProcess.run(binary, ["check", "--host", "127.0.0.1", "--port", String(silent.port), "--security", "none",
                                                      "--from", "a@example.com", "--command-timeout", "1"])
        XCTAssertEqual(timeout.status, 4)
        XCTAssertTrue(timeout.stderr.contains("hint: no greeting within 1 s"), timeout.stderr)
    }
}
