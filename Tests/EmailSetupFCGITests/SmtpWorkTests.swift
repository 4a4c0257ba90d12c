@testable import EmailSetupFCGI
@testable import Smtp
import Storage
import XCTest

/// Issue 12: a test email or check is handed to the SMTP work pool holding a slot;
/// a full pool is 503 at once; slots always come back; the session is capped by
/// `sessionLimit`; the audit row says where the session went and whether the client left.
final class SmtpWorkTests: XCTestCase {
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
    }

    func testSlotsAreCountedAndGivenBackOnceEvenWhenDropped() {
        let slots = SmtpSlots(capacity: 2)
        var a = slots.tryReserve()
        let b = slots.tryReserve()
        XCTAssertNotNil(a); XCTAssertNotNil(b)
        XCTAssertNil(slots.tryReserve())
        b?.release(); b?.release()
        XCTAssertEqual(slots.taken, 1)
        a = nil
        XCTAssertEqual(slots.taken, 0, "a dropped slot is given back")
        _ = a
    }


    func testTheSessionIsDeferredToThePoolHoldingASlot() throws {
        let slots = SmtpSlots(capacity: 2)
        handler.smtpCapacity = slots
        let r = handler.handle(post("/api/setup/email_check", "{}"))
        let work = try XCTUnwrap(r.work, "a check must not run on the request worker")
        XCTAssertEqual(smtp.checks, 0)
        XCTAssertEqual(slots.taken, 1)
        _ = work.run(repository, nil, nil)
        work.slot.release()
        XCTAssertEqual(slots.taken, 0)
        XCTAssertEqual(smtp.checks, 1)
    }

    func testAFullPoolAnswers503AtOnceWithRetryAfterAndCountsNothing() throws {
        let slots = SmtpSlots(capacity: 1)
        handler.smtpCapacity = slots
        let held = handler.handle(post("/api/setup/email_test/ops%40example.com", "{}"))
        XCTAssertNotNil(held.work)
        let busy = handler.handle(post("/api/setup/email_check", "{}"))
        XCTAssertEqual(busy.status, 503)
        XCTAssertEqual(busy.header("Retry-After"), "5")
        XCTAssertNotNil(busy.error("smtp"))
        XCTAssertNil(busy.work)
        XCTAssertTrue(repository.auditRows.isEmpty, "a refused request writes no audit row and counts against no limit")
        XCTAssertEqual(held.completed(using: repository).status, 200)
        XCTAssertEqual(slots.taken, 0)
        XCTAssertEqual(handler.handle(post("/api/setup/email_check", "{}")).completed(using: repository).status, 200)
    }

    func testARateLimitedRequestGivesItsSlotBack() {
        let slots = SmtpSlots(capacity: 1)
        handler.smtpCapacity = slots
        handler.limits = TestRateLimits(perUser: 1, total: 100)
        XCTAssertEqual(handler.answer(post("/api/setup/email_check", "{}")).status, 200)
        XCTAssertEqual(handler.handle(post("/api/setup/email_check", "{}")).status, 429)
        XCTAssertEqual(slots.taken, 0)
    }

    func testTheSessionIsCappedBySessionLimitWhateverTheSavedTimeouts() throws {
        repository.values["smtp_command_timeout"] = "600"
        handler.sessionLimit = 20
        XCTAssertEqual(handler.answer(post("/api/setup/email_test/ops%40example.com", "{}")).status, 200)
        let settings = try XCTUnwrap(smtp.sent.first?.settings)
        XCTAssertEqual(settings.sessionTimeout, 20)
        XCTAssertNotNil(settings.sessionLimitName)
        repository.values["smtp_command_timeout"] = "1"
        XCTAssertEqual(handler.answer(post("/api/setup/email_test/ops%40example.com", "{}")).status, 200)
        XCTAssertLessThan(smtp.sent[1].settings.sessionTimeout, 20)
        XCTAssertNil(smtp.sent[1].settings.sessionLimitName)
    }

    func testTheAuditRowRecordsHostPortAndAnAbandonedSession() throws {
        XCTAssertEqual(handler.answer(post("/api/setup/email_check", "{}")).status, 200)
        let ok = try XCTUnwrap(repository.auditRows.last?.detail)
        XCTAssertTrue(ok.contains(#""host":"smtp.example.com""#) && ok.contains(#""port":587"#), ok)
        smtp.failure = SmtpError(stage: .greeting, kind: .timeout, hint: "abandoned", underlying: SessionAbandoned())
        _ = handler.answer(post("/api/setup/email_test/ops%40example.com", "{}"))
        XCTAssertEqual(repository.auditRows.last?.outcome, "abandoned")
        XCTAssertTrue(repository.auditRows.last?.detail?.contains(#""to":"ops@example.com""#) ?? false)
    }
}
