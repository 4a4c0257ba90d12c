import Foundation
import TestSupport
import XCTest

/// The streamed answer (`Accept: application/x-ndjson`) of a test email and of a check
/// that sign in with AUTH PLAIN and with AUTH LOGIN, through nginx against the aiosmtpd
/// fixture: no line of it carries the password, the PLAIN blob (base64 of
/// NUL user NUL password) or LOGIN's base64 of the password, whether the server
/// accepts the sign-in (the transcript of the success answer) or refuses it (the
/// diagnosis' transcript). Without the transcript's redaction (SmtpConnection.command's
/// `redacted:`) every case here fails.
final class ProgressStreamRedactionTests: XCTestCase {
    var env: EndToEndEnvironment!
    var caPEM = ""

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        caPEM = try SmtpTestCertificates.shared().pem("ca")
    }

    /// Non-ASCII and spaces (JSON escapes), and long enough that its base64 forms
    /// contain "+" and "/".
    static let password = "Pa55 wörd/+?~ secret-ÿþ"
    static let user = "alice@example.test"

    func testPlainSignInNeverShowsThePasswordInTheStream() throws {
        try assertStreamsRedact(mechanism: "Plain", redactedLine: "C: AUTH PLAIN <redacted>")
    }

    func testLoginSignInNeverShowsThePasswordInTheStream() throws {
        try assertStreamsRedact(mechanism: "Login", redactedLine: "<redacted password>")
    }

    private func assertStreamsRedact(mechanism: String, redactedLine: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let server = try SmtpTestServer(mode: .starttls, user: Self.user, password: Self.password)
        let settings = ["smtp_port": "\(server.port)", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": caPEM,
                        "smtp_authentication_type": mechanism, "smtp_username": Self.user]

        // Signed in: the test email and the check succeed; their transcripts name the AUTH exchange.
        try env.saveSettings(settings, password: Self.password)
        for path in ["/api/setup/email_test/redaction%40example.com", "/api/setup/email_check"] {
            let (final, text) = try stream(path)
            XCTAssertEqual(final["http_status"] as? Int, 200, text, file: file, line: line)
            let data = try XCTUnwrap((final["response"] as? [String: Any])?["data"] as? [String: Any], text, file: file, line: line)
            XCTAssertEqual((data["server"] as? [String: Any])?["auth_mechanism"] as? String, mechanism.uppercased(), text, file: file, line: line)
            let transcript = try XCTUnwrap(data["transcript"] as? [String], text, file: file, line: line)
            XCTAssertTrue(transcript.contains { $0.contains(redactedLine) }, "\(path): \(transcript)", file: file, line: line)
            assertNoSecret(in: text, path: path, file: file, line: line)
        }
        XCTAssertEqual(try server.waitForMessages(count: 1).first?.login, Self.user, "the fixture saw the sign-in", file: file, line: line)

        // Refused: a password the server does not know, in the diagnosis' transcript.
        let wrong = Self.password + "-old"
        try env.saveSettings(settings, password: wrong)
        let (final, text) = try stream("/api/setup/email_check")
        XCTAssertEqual(final["http_status"] as? Int, 502, text, file: file, line: line)
        let diagnosis = try XCTUnwrap((final["response"] as? [String: Any])?["diagnosis"] as? [String: Any], text, file: file, line: line)
        XCTAssertEqual(diagnosis["kind"] as? String, "auth_rejected", text, file: file, line: line)
        XCTAssertTrue((diagnosis["transcript"] as? [String] ?? []).contains { $0.contains(redactedLine) }, text, file: file, line: line)
        assertNoSecret(in: text, password: wrong, path: "email_check (refused)", file: file, line: line)
    }

    /// The streamed answer of `path`: its last line (status and answer) and its whole text.
    private func stream(_ path: String) throws -> ([String: Any], String) {
        let timed = try env.admin.timedRequest("POST", path, headers: ProgressStreamEndToEndTests.streamed)
        XCTAssertEqual(timed.response.status, 200, timed.response.text)
        XCTAssertTrue(timed.response.headers["content-type"]?.hasPrefix("application/x-ndjson") == true, "not streamed: \(timed.response.headers)")
        XCTAssertGreaterThan(timed.lines.count, 3, "no step lines: \(timed.response.text)")
        let final = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data((timed.lines.last?.text ?? "").utf8)) as? [String: Any],
                                  timed.response.text)
        return (final, timed.response.text)
    }

    /// The password, the PLAIN blob and LOGIN's base64 (with and without padding) are in
    /// neither the raw stream nor any string of its lines once JSON escapes are undone.
    private func assertNoSecret(in text: String, password: String = password, path: String, file: StaticString, line: UInt) {
        let plain = Data([0] + Array(Self.user.utf8) + [0] + Array(password.utf8)).base64EncodedString()
        let login = Data(password.utf8).base64EncodedString()
        let secrets = [password, plain, login, String(plain.prefix { $0 != "=" }), String(login.prefix { $0 != "=" })]
        let decoded = text.split(separator: "\n").flatMap { strings(in: try? JSONSerialization.jsonObject(with: Data($0.utf8))) }
        for secret in secrets {
            XCTAssertFalse(text.contains(secret), "\(path): the stream contains \(secret)", file: file, line: line)
            XCTAssertFalse(decoded.contains { $0.contains(secret) }, "\(path): a line of the stream contains \(secret)", file: file, line: line)
        }
    }

    private func strings(in value: Any?) -> [String] {
        switch value {
        case let s as String: [s]
        case let a as [Any]: a.flatMap { strings(in: $0) }
        case let d as [String: Any]: d.values.flatMap { strings(in: $0) }
        default: []
        }
    }
}
