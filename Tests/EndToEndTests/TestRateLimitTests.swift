import Foundation
import TestSupport
import XCTest

/// Test emails and checks are limited per user and overall, counted in MariaDB so
/// every responder shares the count; over the limit the answer is 429 with
/// Retry-After and an audit row. The suite's responder has generous limits, so these
/// tests run the responder binary as plain CGI with low limits from the environment
/// and a user name of their own.
final class TestRateLimitTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        // Fast failures: nothing listens, so every allowed attempt is a quick 502.
        try env.saveSettings(["smtp_port": "\(smtpUnusedLoopbackPort())"])
    }

    struct CGIAnswer {
        var status: Int
        var retryAfter: Int?
        var json: [String: Any]
        var output: String
    }

    /// One request to the responder as CGI. Its log goes to stderr, which the runner
    /// mixes into the output, so the answer is read by its header lines and body.
    func cgi(_ uri: String, user: String, limits: [String: String]) throws -> CGIAnswer {
        let result = try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": "POST", "REQUEST_URI": uri, "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": "0", "GATEWAY_INTERFACE": "CGI/1.1",
            "EMAILSETUP_CONFIG": env.stateDirectory + "/emailsetup.conf", "EMAILSETUP_ADMINS": "",
        ].merging(limits) { $1 }, timeout: 30)
        XCTAssertEqual(result.status, 0, result.output)
        // .newlines: in a Swift String "\r\n" is one Character, so splitting on "\n" misses it.
        let lines = result.output.components(separatedBy: .newlines)
        func header(_ name: String) -> String? {
            lines.first { $0.lowercased().hasPrefix(name.lowercased() + ": ") }.map { String($0.dropFirst(name.count + 2)) }
        }
        let status = Int(header("Status")?.prefix(3) ?? "") ?? 0
        let body = lines.last { $0.hasPrefix(#"{"status":"#) } ?? "{}"
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        return CGIAnswer(status: status, retryAfter: header("Retry-After").flatMap { Int($0) }, json: json, output: result.output)
    }

    func testPerUserLimitAnswers429WithRetryAfterAndAudits() throws {
        let user = "rate-\(UUID().uuidString.prefix(8))"
        let limits = ["EMAILSETUP_TEST_RATE_LIMIT_PER_USER": "2"]
        let first = try cgi("/api/setup/email_check", user: user, limits: limits)
        let second = try cgi("/api/setup/email_test/ops%40example.com", user: user, limits: limits)
        XCTAssertEqual([first.status, second.status], [502, 502], first.output + second.output)
        let third = try cgi("/api/setup/email_check", user: user, limits: limits)
        XCTAssertEqual(third.status, 429, third.output)
        let retryAfter = try XCTUnwrap(third.retryAfter, "no Retry-After: \(third.output)")
        XCTAssertTrue((1...60).contains(retryAfter), "Retry-After \(retryAfter)")
        let message = (third.json["errors"] as? [String: String])?["rate_limit"] ?? ""
        XCTAssertTrue(message.contains("at most 2 a minute per user") && message.contains("\(retryAfter) s"), message)
        XCTAssertNil(third.json["diagnosis"], "a limited request must not reach the SMTP server")

        // Another user is not limited by this one.
        XCTAssertEqual(try cgi("/api/setup/email_check", user: user + "-other", limits: limits).status, 502)

        let audit = try env.admin.request("GET", "/api/setup/email_audit?limit=20")
        let rows = (audit.data?["entries"] as? [[String: Any]] ?? []).filter { $0["actor"] as? String == user }
        XCTAssertEqual(rows.map { "\($0["action"] as? String ?? "") \($0["outcome"] as? String ?? "")" },
                       ["test.check rate_limited", "test.send failure", "test.check failure"], audit.text)
        XCTAssertEqual((rows.first?["detail"] as? [String: Any])?["bucket"] as? String, "smtp-test:user:\(user)")
    }

    func testOverallLimitCountsEveryoneTogether() throws {
        // Every attempt from a different user: only the overall bucket can fill up.
        // It also holds the attempts of other tests in the last minute, so the 429
        // may come at once; it must come within limit + 1 attempts.
        let limits = ["EMAILSETUP_TEST_RATE_LIMIT_TOTAL": "2", "EMAILSETUP_TEST_RATE_LIMIT_PER_USER": "1000"]
        var statuses: [Int] = []
        var limited: CGIAnswer?
        for _ in 0..<3 {
            let answer = try cgi("/api/setup/email_check", user: "everyone-\(UUID().uuidString.prefix(8))", limits: limits)
            statuses.append(answer.status)
            if answer.status == 429 { limited = answer; break }
        }
        let answer = try XCTUnwrap(limited, "no 429 within 3 attempts for a total limit of 2: \(statuses)")
        XCTAssertTrue(statuses.dropLast().allSatisfy { $0 == 502 }, "\(statuses)")
        XCTAssertTrue((1...60).contains(answer.retryAfter ?? 0), answer.output)
        let message = (answer.json["errors"] as? [String: String])?["rate_limit"] ?? ""
        XCTAssertTrue(message.contains("for everyone together"), message)
    }
}
