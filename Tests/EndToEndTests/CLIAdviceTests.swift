import Foundation
import TestSupport
import XCTest

/// `emailsetup check` and `send` with a connection security that does not fit the
/// port: the command line probes the usual ports (465 bound here) and prints what it
/// found working, in words and in --json.
final class CLIAdviceTests: XCTestCase {
    func testCheckAndSendPrintTheVerifiedSuggestion() throws {
        let env = try EndToEndEnvironment.require()
        let certificates = try SmtpTestCertificates.shared()
        let starttls = try SmtpTestServer(mode: .starttls)
        let implicit = try onWellKnownPort(465) { try SmtpTestServer(mode: .implicit, port: $0) }
        defer { implicit.stop() }
        let settings = ["--host", "127.0.0.1", "--port", String(starttls.port), "--security", "ssl",
                        "--ca-file", certificates.certificate("ca"), "--from", "app@example.com", "--command-timeout", "5"]
        let verified = "port 465 answers with SSL/TLS (certificate valid for 127.0.0.1)"

        let check = try ScriptRunner.runWithStatus(env.binary, ["check"] + settings, timeout: 60)
        XCTAssertEqual(check.status, 3, check.output)
        XCTAssertTrue(check.output.contains("suggestion: port 465 with SSL/TLS (--port 465 --security ssl): " + verified), check.output)

        let json = try ScriptRunner.runWithStatus(env.binary, ["check", "--json"] + settings, timeout: 60)
        XCTAssertEqual(json.status, 3, json.output)
        let line = try XCTUnwrap(json.output.split(separator: "\n").first { $0.hasPrefix("{") }, json.output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let suggestion = try XCTUnwrap(object["suggestion"] as? [String: Any], json.output)
        XCTAssertEqual(suggestion["port"] as? Int, 465)
        XCTAssertEqual(suggestion["smtp_connection_type"] as? String, "SSL")
        XCTAssertEqual(suggestion["verified"] as? String, verified)

        let send = try ScriptRunner.runWithStatus(env.binary, ["send", "--to", "ops@example.com"] + settings, timeout: 60)
        XCTAssertEqual(send.status, 3, send.output)
        XCTAssertTrue(send.output.contains("suggestion: port 465 with SSL/TLS"), send.output)
        XCTAssertEqual(implicit.messageCount, 0, "a probe sends nothing")
    }
}
