import Foundation
import Storage
import TestSupport
import XCTest

/// The read path GET /api/setup/email_smtp takes on every request: one statement,
/// no ping first, and still no failure when the server restarted while the
/// connection sat idle.
final class ReadPathTests: StorageTestCase {
    func testLoadWithLastSuccessAgreesWithLoadAndVersionsWithSuccess() throws {
        let store = makeStore()
        var (settings, last) = try store.loadWithLastSuccess(action: "test.send")
        XCTAssertEqual(settings, try store.load())
        XCTAssertEqual(settings.version, 0)
        XCTAssertNil(last)

        XCTAssertEqual(try store.save(values: ["smtp_host": "a.example", "smtp_port": "25"], expectedVersion: 0, actor: "t", remoteAddress: nil), 1)
        try store.appendAudit(action: "test.send", outcome: "success", actor: "t", remoteAddress: nil, settingsVersion: 1)
        XCTAssertEqual(try store.save(values: ["smtp_host": "b.example"], expectedVersion: 1, actor: "t", remoteAddress: nil), 2)
        try store.appendAudit(action: "test.send", outcome: "failure", actor: "t", remoteAddress: nil, settingsVersion: 2)
        try store.appendAudit(action: "check", outcome: "success", actor: "t", remoteAddress: nil, settingsVersion: 2)

        (settings, last) = try store.loadWithLastSuccess(action: "test.send")
        XCTAssertEqual(settings, try store.load())
        XCTAssertEqual(settings.version, 2)
        XCTAssertEqual(settings.values["smtp_host"], "b.example")
        XCTAssertEqual(last, 1)
        XCTAssertEqual(last, try store.versionsWithSuccess(action: "test.send", limit: 1).first)
        XCTAssertEqual(try store.loadWithLastSuccess(action: "check").1, 2)
    }

    /// The last-known-good lookup is answered from the index, not by reading every
    /// test email in the audit log (EXPLAIN: "Select tables optimized away").
    func testLastKnownGoodLookupUsesTheIndexWhateverTheAuditLogSize() throws {
        let store = makeStore()
        _ = try store.migrate()
        for i in 0..<200 {
            try store.appendAudit(action: "test.send", outcome: i % 3 == 0 ? "failure" : "success", actor: "t", remoteAddress: nil, settingsVersion: i)
        }
        let plan = try makeConnection().query("""
            EXPLAIN SELECT MAX(settings_version) FROM audit_log WHERE action = ? AND outcome = 'success'
            """, [.text("test.send")])
        let extra = try plan.first?.optionalText("Extra") ?? ""
        XCTAssertTrue(extra.contains("optimized away"), "plan: \(plan)")
        XCTAssertEqual(try store.loadWithLastSuccess(action: "test.send").1, 199)
    }

    func testReadOnAConnectionTheServerDroppedWhileIdleReconnects() throws {
        let environment = self.environment!
        _ = try environment.requireStateDirectory()
        let store = makeStore()
        XCTAssertEqual(try store.save(values: ["smtp_host": "before"], expectedVersion: 0, actor: "a", remoteAddress: nil), 1)
        XCTAssertEqual(try store.load().version, 1) // the connection is open and was just used

        try environment.stopServer()
        try environment.startServer()

        // No ping precedes the read: it meets the dead connection, reconnects, runs again.
        XCTAssertEqual(try store.load().version, 1, "first read after the restart")
        XCTAssertEqual(try store.loadWithLastSuccess(action: "test.send").0.version, 1)
    }
}
