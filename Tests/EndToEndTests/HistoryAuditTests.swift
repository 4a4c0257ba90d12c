import Foundation
import TestSupport
import XCTest

/// History, restore and the audit trail through nginx: who saved which fields
/// when (names only), restoring an earlier version as a new one — password
/// included — and an audit row for every save, restore, test email and check.
final class HistoryAuditTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    func history(_ query: String = "limit=10") throws -> (response: HTTPTestClient.Response, versions: [[String: Any]]) {
        let r = try env.admin.request("GET", "/api/setup/email_history?" + query)
        XCTAssertEqual(r.status, 200, r.text)
        return (r, r.data?["versions"] as? [[String: Any]] ?? [])
    }

    func entry(_ versions: [[String: Any]], _ version: Int) throws -> [String: Any] {
        try XCTUnwrap(versions.first { $0["version"] as? Int == version }, "version \(version) not in \(versions)")
    }

    func testHistoryAndRestoreRoundTrip() throws {
        let ca = try SmtpTestCertificates.shared().pem("ca")
        let server = try SmtpTestServer(mode: .starttls, user: "carol-good", password: "pw-good")
        let good = try env.version(of: try env.saveSettings([
            "smtp_port": "\(server.port)", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": ca,
            "smtp_authentication_type": "Login", "smtp_username": "carol-good",
        ], password: "pw-good"))
        XCTAssertEqual(try env.sendTestEmail().status, 200)
        let closed = smtpUnusedLoopbackPort()
        let bad = try env.version(of: try env.saveSettings([
            "smtp_port": "\(closed)", "smtp_connection_type": "STARTTLS", "smtp_tls_ca_pem": ca,
            "smtp_authentication_type": "Login", "smtp_username": "dave-bad",
        ], password: "pw-bad"))
        XCTAssertEqual(bad, good + 1)
        XCTAssertEqual(try env.sendTestEmail().status, 502)

        // Who, when, which fields — names only, never a value.
        let (listing, versions) = try history()
        XCTAssertEqual(versions.first?["version"] as? Int, bad, listing.text)
        let badEntry = try entry(versions, bad)
        XCTAssertEqual(badEntry["saved_by"] as? String, "admin")
        XCTAssertEqual(badEntry["remote_address"] as? String, "127.0.0.1")
        let savedAt = try XCTUnwrap(ISO8601DateFormatter().date(from: badEntry["saved_at"] as? String ?? ""), "\(badEntry)")
        XCTAssertLessThan(abs(savedAt.timeIntervalSinceNow), 120)
        XCTAssertEqual(Set(badEntry["changed_fields"] as? [String] ?? []), ["smtp_port", "smtp_username", "smtp_password"])
        XCTAssertEqual(badEntry["tested_ok"] as? Bool, false)
        XCTAssertEqual(try entry(versions, good)["tested_ok"] as? Bool, true)
        XCTAssertEqual(listing.data?["last_known_good_version"] as? String, String(good))
        // Old → new per field; the password only as changed, never a value (not even sealed).
        let changes = badEntry["changes"] as? [[String: Any]] ?? []
        let byField = Dictionary(changes.map { ($0["field"] as? String ?? "?", $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(byField.keys), ["smtp_port", "smtp_username", "smtp_password"], "\(changes)")
        XCTAssertEqual(byField["smtp_port"]?["old"] as? String, "\(server.port)")
        XCTAssertEqual(byField["smtp_port"]?["new"] as? String, "\(closed)")
        XCTAssertEqual(byField["smtp_port"]?["label"] as? String, "Port")
        XCTAssertEqual(byField["smtp_username"]?["old"] as? String, "carol-good")
        XCTAssertEqual(byField["smtp_username"]?["new"] as? String, "dave-bad")
        XCTAssertEqual(byField["smtp_password"]?["changed"] as? Bool, true)
        XCTAssertEqual(Set(byField["smtp_password"]?.keys.map { $0 } ?? []), ["field", "label", "changed"])
        // What restoring the good version would change now, for the page's confirmation.
        let restoring = try entry(versions, good)["restore_changes"] as? [[String: Any]] ?? []
        XCTAssertEqual(Set(restoring.compactMap { $0["field"] as? String }), ["smtp_port", "smtp_username", "smtp_password"], "\(restoring)")
        let port = restoring.first { $0["field"] as? String == "smtp_port" }
        XCTAssertEqual(port?["old"] as? String, "\(closed)")
        XCTAssertEqual(port?["new"] as? String, "\(server.port)")
        let password = restoring.first { $0["field"] as? String == "smtp_password" }
        XCTAssertEqual(password?["changed"] as? Bool, true)
        XCTAssertNil(password?["new"])
        for secret in ["pw-good", "pw-bad", "v1:"] {
            XCTAssertFalse(listing.text.contains(secret), "history shows \(secret): \(listing.text)")
        }
        let current = try env.admin.request("GET", EndToEndEnvironment.settingsPath)
        XCTAssertEqual(current.data?["last_known_good_version"] as? String, String(good))

        // Paging: newest first, offset skips.
        let page = try history("limit=1&offset=1").versions
        XCTAssertEqual(page.map { $0["version"] as? Int }, [good])
        XCTAssertEqual(try env.admin.request("GET", "/api/setup/email_history?limit=0").status, 400)

        // A stale If-Match and an unknown version change nothing.
        let etag = try XCTUnwrap(current.headers["etag"])
        let stale = try env.admin.post("/api/setup/email_history/\(good)/restore", json: "", headers: ["If-Match": "\"\(good)\""])
        XCTAssertEqual(stale.status, 409, stale.text)
        XCTAssertEqual(try env.admin.post("/api/setup/email_history/99999999/restore", json: "", headers: ["If-Match": etag]).status, 404)
        XCTAssertEqual(try env.admin.request("GET", EndToEndEnvironment.settingsPath).headers["etag"], etag)

        // Restore: the good version's values become current as a NEW version.
        let restored = try env.admin.post("/api/setup/email_history/\(good)/restore", json: "", headers: ["If-Match": etag])
        XCTAssertEqual(restored.status, 200, restored.text)
        let data = try XCTUnwrap(restored.data)
        XCTAssertEqual(data["smtp_settings_version"] as? String, String(bad + 1))
        XCTAssertEqual(data["restored_from"] as? Int, good)
        XCTAssertEqual(data["smtp_port"] as? String, "\(server.port)")
        XCTAssertEqual(data["smtp_username"] as? String, "carol-good")
        XCTAssertEqual(data["smtp_password_set"] as? Bool, true)
        XCTAssertNil(data["smtp_password"])
        XCTAssertEqual(restored.headers["etag"], "\"\(bad + 1)\"")
        let after = try history().versions
        let restoredEntry = try entry(after, bad + 1)
        XCTAssertEqual(restoredEntry["restored_from"] as? Int, good)
        XCTAssertEqual(Set(restoredEntry["changed_fields"] as? [String] ?? []), ["smtp_port", "smtp_username", "smtp_password"])

        // The restored password is the one that worked.
        let test = try env.sendTestEmail()
        XCTAssertEqual(test.status, 200, test.text)
        XCTAssertEqual(test.data?["settings_version"] as? String, String(bad + 1))
        XCTAssertEqual(try server.waitForMessages(count: 2)[1].login, "carol-good")
        XCTAssertEqual(try env.admin.request("GET", EndToEndEnvironment.settingsPath).data?["last_known_good_version"] as? String, String(bad + 1))
    }

    func testAuditRowsForSavesRestoresTestsAndChecks() throws {
        let before = try env.admin.request("GET", "/api/setup/email_audit?limit=1")
        XCTAssertEqual(before.status, 200, before.text)
        let lastID = ((before.data?["entries"] as? [[String: Any]])?.first?["id"] as? Int) ?? 0

        let server = try SmtpTestServer(mode: .plain)
        let saved = try env.version(of: try env.saveSettings(["smtp_port": "\(server.port)"]))
        XCTAssertEqual(try env.sendTestEmail(to: "audit@example.com").status, 200)
        XCTAssertEqual(try env.checkConnection().status, 200)
        let closed = smtpUnusedLoopbackPort()
        let broken = try env.version(of: try env.saveSettings(["smtp_port": "\(closed)"], password: "never-in-audit"))
        XCTAssertEqual(try env.sendTestEmail(to: "audit@example.com").status, 502)
        XCTAssertEqual(try env.checkConnection().status, 502)
        let etag = "\"\(broken)\""
        XCTAssertEqual(try env.admin.post("/api/setup/email_history/\(saved)/restore", json: "", headers: ["If-Match": etag]).status, 200)

        let r = try env.admin.request("GET", "/api/setup/email_audit?limit=50")
        XCTAssertEqual(r.status, 200, r.text)
        let rows = (r.data?["entries"] as? [[String: Any]] ?? []).filter { ($0["id"] as? Int ?? 0) > lastID }
        let summary = rows.reversed().map { "\($0["action"] as? String ?? "?") \($0["outcome"] as? String ?? "?") v\($0["settings_version"] as? Int ?? -1)" }
        XCTAssertEqual(summary, [
            "settings.save success v\(saved)", "test.send success v\(saved)", "test.check success v\(saved)",
            "settings.save success v\(broken)", "test.send failure v\(broken)", "test.check failure v\(broken)",
            "settings.restore success v\(broken + 1)",
        ], r.text)
        for row in rows {
            XCTAssertEqual(row["actor"] as? String, "admin")
            XCTAssertEqual(row["remote_address"] as? String, "127.0.0.1")
            XCTAssertNotNil(ISO8601DateFormatter().date(from: row["at"] as? String ?? ""), "\(row)")
        }
        let sends = rows.filter { $0["action"] as? String == "test.send" }.map { $0["detail"] as? [String: Any] ?? [:] }
        XCTAssertEqual(sends.map { $0["to"] as? String }, ["audit@example.com", "audit@example.com"])
        let failedSend = try XCTUnwrap(sends.first { $0["stage"] != nil }, "\(sends)")
        XCTAssertEqual(failedSend["stage"] as? String, "connect")
        XCTAssertEqual(failedSend["kind"] as? String, "refused")
        let saveDetail = rows.first { $0["action"] as? String == "settings.save" && $0["settings_version"] as? Int == broken }?["detail"] as? [String: Any]
        XCTAssertEqual(Set(saveDetail?["changed_fields"] as? [String] ?? []), ["smtp_port", "smtp_password"], "\(saveDetail ?? [:])")
        XCTAssertFalse(r.text.contains("never-in-audit"))
        XCTAssertFalse(r.text.contains("v1:"), "a sealed secret in the audit: \(r.text)")

        // Paged: two pages of two, newest first, no overlap.
        let first = try env.admin.request("GET", "/api/setup/email_audit?limit=2&offset=0").data?["entries"] as? [[String: Any]] ?? []
        let second = try env.admin.request("GET", "/api/setup/email_audit?limit=2&offset=2").data?["entries"] as? [[String: Any]] ?? []
        let ids = (first + second).compactMap { $0["id"] as? Int }
        XCTAssertEqual(ids.count, 4)
        XCTAssertEqual(ids, ids.sorted(by: >))
        XCTAssertEqual(Set(ids).count, 4)
        XCTAssertEqual(try env.admin.request("GET", "/api/setup/email_audit?offset=-1").status, 400)
        XCTAssertEqual(try env.anonymous.request("GET", "/api/setup/email_audit").status, 401)
    }

    /// Tests and checks, failed and successful, appear in the history beside the
    /// version they tried, with where and why a failure happened; no secret ever.
    func testHistoryListsTestsAndChecksOfItsVersions() throws {
        let closed = smtpUnusedLoopbackPort()
        let broken = try env.version(of: try env.saveSettings(["smtp_port": "\(closed)"], password: "never-in-history"))
        XCTAssertEqual(try env.sendTestEmail(to: "events@example.com").status, 502)
        XCTAssertEqual(try env.checkConnection().status, 502)
        let server = try SmtpTestServer(mode: .plain)
        let fixed = try env.version(of: try env.saveSettings(["smtp_port": "\(server.port)"]))
        XCTAssertEqual(try env.checkConnection().status, 200)

        let (listing, versions) = try history("limit=2")
        XCTAssertEqual(versions.compactMap { $0["version"] as? Int }, [fixed, broken])
        let events = listing.data?["events"] as? [[String: Any]] ?? []
        let summary = events.map { "\($0["kind"] as? String ?? "?") \($0["outcome"] as? String ?? "?") v\($0["settings_version"] as? Int ?? -1)" }
        XCTAssertEqual(summary, ["check success v\(fixed)", "check failure v\(broken)", "test_email failure v\(broken)"], listing.text)
        let failed = try XCTUnwrap(events.last)
        XCTAssertEqual(failed["actor"] as? String, "admin")
        XCTAssertEqual(failed["stage"] as? String, "connect")
        XCTAssertEqual(failed["error_kind"] as? String, "refused")
        XCTAssertEqual(failed["to"] as? String, "events@example.com")
        XCTAssertTrue((failed["hint"] as? String ?? "").contains("connection refused"), "\(failed)")
        XCTAssertNotNil(ISO8601DateFormatter().date(from: failed["at"] as? String ?? ""), "\(failed)")
        XCTAssertTrue(events.first?["hint"] is NSNull, "a success has no hint: \(events)")

        // The page before only has its own versions' events.
        let older = try history("limit=1&offset=1").response
        let olderEvents = older.data?["events"] as? [[String: Any]] ?? []
        XCTAssertEqual(Set(olderEvents.compactMap { $0["settings_version"] as? Int }), [broken], older.text)
        for secret in ["never-in-history", "v1:"] {
            XCTAssertFalse(listing.text.contains(secret), "history shows \(secret): \(listing.text)")
        }
    }
}
