@testable import EmailSetupFCGI
@testable import Smtp
import Storage
import XCTest

/// Test email and check through the handler with a scripted SMTP peer: statuses,
/// the diagnosis shape, audit rows, last known good and rate limits.
final class SmtpEndpointTests: XCTestCase {
    var repository: MemorySettingsRepository!
    var smtp: ScriptedSmtp!
    var handler: APIHandler!

    override func setUp() {
        repository = MemorySettingsRepository()
        repository.values = ["from_address": "app@example.com", "smtp_host": "smtp.example.com", "smtp_port": "587",
                             "smtp_connection_type": "STARTTLS"]
        repository.version = 4
        smtp = ScriptedSmtp()
        handler = APIHandler(repository: repository, logger: .quiet)
        handler.smtp = smtp
        handler.systemName = "billing-01"
    }

    func testSuccessSendsAMessageNamingSystemAndVersionAndRecordsLastKnownGood() throws {
        let r = handler.answer(post("/api/setup/email_test/ops%40example.com", "{}"))
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        let sent = try XCTUnwrap(smtp.sent.first)
        XCTAssertEqual(sent.envelope.recipients, ["ops@example.com"])
        XCTAssertEqual(sent.settings.security, .startTLSRequired)
        let text = String(decoding: sent.message, as: UTF8.self)
        XCTAssertTrue(text.contains("Subject: Test email from billing-01 (settings version 4)"), text)
        XCTAssertEqual(repository.auditRows.last?.action, "test.send")
        XCTAssertEqual(repository.auditRows.last?.outcome, "success")
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp")).json["data"]?["last_known_good_version"], "4")
    }

    func testFailureStatusesFollowTheKind() {
        let cases: [(SmtpError.Kind, Int)] = [(.timeout, 504), (.refused, 502), (.authRejected, 502), (.invalidInput, 400)]
        for (kind, status) in cases {
            smtp.failure = SmtpError(stage: .auth, kind: kind, replyCode: 535, enhancedCode: "5.7.8", hint: "credentials rejected")
            let r = handler.answer(post("/api/setup/email_check", "{}"))
            XCTAssertEqual(r.status, status, "\(kind)")
            XCTAssertEqual(r.error("smtp"), "credentials rejected")
            XCTAssertEqual(r.json["diagnosis"]?["stage"], "auth")
            XCTAssertEqual(r.json["diagnosis"]?["kind"], .string(kind.rawValue))
            XCTAssertEqual(r.json["diagnosis"]?["enhanced_code"], "5.7.8")
        }
        XCTAssertEqual(repository.auditRows.filter { $0.outcome == "failure" }.count, cases.count)
    }

    func testInvalidAddressAndUnsavedSettings() {
        XCTAssertEqual(handler.answer(post("/api/setup/email_test/not-an-address", "{}")).status, 400)
        repository.values = [:]
        let r = handler.answer(post("/api/setup/email_test/ops%40example.com", "{}"))
        XCTAssertEqual(r.status, 409)
        XCTAssertTrue(smtp.sent.isEmpty)
    }

    func testRateLimitIs429WithRetryAfter() {
        handler.limits = TestRateLimits(perUser: 2, total: 100)
        XCTAssertEqual(handler.answer(post("/api/setup/email_check", "{}")).status, 200)
        XCTAssertEqual(handler.answer(post("/api/setup/email_check", "{}")).status, 200)
        let limited = handler.answer(post("/api/setup/email_check", "{}"))
        XCTAssertEqual(limited.status, 429)
        XCTAssertEqual(limited.header("Retry-After"), "42")
        XCTAssertEqual(smtp.checks, 2)
        XCTAssertEqual(repository.auditRows.last?.outcome, "rate_limited")
    }
}

/// History pages mark every version whose test email went through, also far back.
final class HistoryEndpointTests: XCTestCase {
    func testTestedOKOnAnOldPageAndLastKnownGood() throws {
        let repository = MemorySettingsRepository()
        for i in 1...1100 {
            _ = try repository.saveSettings(["smtp_host": "h\(i).example.com"], expectedVersion: nil, actor: "admin", remoteAddress: nil)
            if i != 1095 { repository.successfulTests.append(i) }
        }
        let handler = APIHandler(repository: repository, logger: .quiet)
        let page = handler.handle(Request(method: "GET", path: "/api/setup/email_history", query: "limit=10&offset=1090", remoteUser: "admin"))
        XCTAssertEqual(page.status, 200)
        guard case .array(let versions)? = page.json["data"]?["versions"] else { return XCTFail("no versions") }
        XCTAssertEqual(versions.count, 10)
        for v in versions { XCTAssertEqual(v["tested_ok"], .bool(true), "\(v)") }
        XCTAssertEqual(page.json["data"]?["last_known_good_version"], "1100")
        let recent = handler.handle(Request(method: "GET", path: "/api/setup/email_history", query: "limit=10", remoteUser: "admin"))
        guard case .array(let newest)? = recent.json["data"]?["versions"] else { return XCTFail("no versions") }
        XCTAssertEqual(newest.first { $0["version"] == .number(1095) }?["tested_ok"], .bool(false))
    }
}
