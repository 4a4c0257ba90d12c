import Foundation
import TestSupport
import XCTest

/// The streamed answer of a test email or check through nginx: a client that sends
/// `Accept: application/x-ndjson` reads each step (name, words, limit) while the
/// session still runs, and the plain answer with its HTTP status as the last line;
/// a client that does not ask gets exactly the plain answer.
final class ProgressStreamEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    static let streamed = ["Accept": "application/x-ndjson", "X-Requested-With": "EmailSetup", "Content-Type": "application/json"]

    func objects(_ timed: HTTPTestClient.TimedResponse) throws -> [[String: Any]] {
        try timed.lines.map { line in
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.text.utf8)) as? [String: Any], "not a JSON object: \(line.text)")
        }
    }

    func testAStalledServerIsReportedStepByStepAsItHappens() throws {
        // Greets, reads EHLO and never answers: the wait for EHLO runs into the 3 s command timeout.
        let server = try HostileSmtpServer(mode: "hang_after_ehlo")
        try env.saveSettings(["smtp_port": "\(server.port)", "smtp_command_timeout": "3"])
        let timed = try env.admin.timedRequest("POST", "/api/setup/email_check", headers: Self.streamed)
        XCTAssertEqual(timed.response.status, 200, timed.response.text)
        XCTAssertTrue(timed.response.headers["content-type"]?.hasPrefix("application/x-ndjson") == true, "\(timed.response.headers)")
        let lines = try objects(timed)
        let steps = lines.compactMap { $0["step"] as? String }
        XCTAssertEqual(steps, ["connect", "greeting", "ehlo"], timed.response.text)
        XCTAssertEqual(lines[0]["label"] as? String, "connecting to 127.0.0.1:\(server.port)")
        XCTAssertEqual(lines[0]["limit_seconds"] as? Double, 2, "the saved connect timeout")
        let ehlo = try XCTUnwrap(lines.first { $0["step"] as? String == "ehlo" })
        XCTAssertEqual(ehlo["limit_seconds"] as? Double ?? 0, 3, accuracy: 0.2, "the saved command timeout")

        // The last line: the answer a plain client gets, with its status.
        let last = try XCTUnwrap(lines.last)
        XCTAssertEqual(last["http_status"] as? Int, 504, timed.response.text)
        let diagnosis = try XCTUnwrap((last["response"] as? [String: Any])?["diagnosis"] as? [String: Any])
        XCTAssertEqual(diagnosis["stage"] as? String, "ehlo")
        XCTAssertEqual(diagnosis["kind"] as? String, "timeout")

        // Streamed, not buffered: the EHLO step arrived seconds before the answer.
        let ehloAt = try XCTUnwrap(timed.lines.first { $0.text.contains("\"ehlo\"") }?.seconds)
        let lastAt = try XCTUnwrap(timed.lines.last?.seconds)
        XCTAssertGreaterThan(lastAt - ehloAt, 2, "the step lines came only with the answer: \(timed.lines)")
    }

    func testASuccessfulTestEmailStreamsEveryStageAndEndsWith200() throws {
        let server = try SmtpTestServer(mode: .plain)
        try env.saveSettings(["smtp_port": "\(server.port)"])
        let timed = try env.admin.timedRequest("POST", "/api/setup/email_test/progress%40example.com", headers: Self.streamed)
        let lines = try objects(timed)
        XCTAssertEqual(lines.compactMap { $0["step"] as? String }, ["connect", "greeting", "ehlo", "mail", "rcpt", "data", "quit"],
                       timed.response.text)
        for step in lines.dropLast() {
            XCTAssertGreaterThan(step["limit_seconds"] as? Double ?? 0, 0, "\(step)")
            XCTAssertFalse((step["label"] as? String ?? "").isEmpty, "\(step)")
        }
        XCTAssertEqual(lines.last?["http_status"] as? Int, 200)
        XCTAssertEqual(((lines.last?["response"] as? [String: Any])?["data"] as? [String: Any])?["ok"] as? Bool, true)
        XCTAssertEqual(try server.waitForMessages(count: 1).count, 1)
    }

    func testWithoutTheAcceptHeaderTheAnswerIsThePlainOne() throws {
        let closed = smtpUnusedLoopbackPort()
        try env.saveSettings(["smtp_port": "\(closed)"])
        let plain = try env.checkConnection()
        XCTAssertEqual(plain.status, 502, plain.text)
        XCTAssertTrue(plain.headers["content-type"]?.hasPrefix("application/json") == true)
        XCTAssertEqual((plain.json?["diagnosis"] as? [String: Any])?["stage"] as? String, "connect")
        // What answers at once (here a bad address: 400) is never streamed, even when asked.
        let refused = try env.admin.request("POST", "/api/setup/email_test/not-an-address", headers: Self.streamed)
        XCTAssertEqual(refused.status, 400, refused.text)
        XCTAssertTrue(refused.headers["content-type"]?.hasPrefix("application/json") == true)
    }
}
