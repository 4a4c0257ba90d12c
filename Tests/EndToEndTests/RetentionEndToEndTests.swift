import Foundation
import TestSupport
import XCTest

/// Issue 12, item 4, through the real stack: a save that changes nothing writes
/// nothing, refusals are one audit row a minute with a count, and `history_keep`
/// prunes the history of a responder configured with a small one.
final class RetentionEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }

    func auditRows(limit: Int = 100) throws -> [[String: Any]] {
        let r = try env.admin.request("GET", "/api/setup/email_audit?limit=\(limit)")
        XCTAssertEqual(r.status, 200, r.text)
        return r.data?["entries"] as? [[String: Any]] ?? []
    }

    func historyVersions() throws -> [Int] {
        let r = try env.admin.request("GET", "/api/setup/email_history?limit=500")
        XCTAssertEqual(r.status, 200, r.text)
        return (r.data?["versions"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? Int }
    }

    func testSaveThatChangesNothingWritesNoVersion() throws {
        let fields = ["smtp_host": "unchanged-\(UUID().uuidString.prefix(8).lowercased()).example.com"]
        let first = try env.version(of: try env.saveSettings(fields))
        let historyBefore = try historyVersions()
        let lastAudit = try auditRows(limit: 1).first?["id"] as? Int ?? 0

        let again = try env.saveSettings(fields)
        XCTAssertEqual(try env.version(of: again), first, again.text)
        XCTAssertEqual(again.headers["etag"], "\"\(first)\"")
        XCTAssertEqual(again.data?["unchanged"] as? Bool, true)
        let respelled = try env.saveSettings(fields.merging(["smtp_connection_type": "none"]) { $1 })   // stored as None
        XCTAssertEqual(try env.version(of: respelled), first, respelled.text)

        XCTAssertEqual(try historyVersions(), historyBefore, "no history row")
        XCTAssertEqual(try auditRows(limit: 5).filter { ($0["id"] as? Int ?? 0) > lastAudit }.count, 0, "no audit row")
        XCTAssertEqual(try env.admin.request("GET", EndToEndEnvironment.settingsPath).headers["etag"], "\"\(first)\"")

        // A stale If-Match is still a conflict.
        let body = #"{"data":{"smtp_host":"\#(fields["smtp_host"]!)"}}"#
        let stale = try env.admin.post(EndToEndEnvironment.settingsPath, json: body, headers: ["If-Match": "\"\(first - 1)\""])
        XCTAssertEqual(stale.status, 409, stale.text)
        XCTAssertEqual(stale.headers["etag"], "\"\(first)\"")
    }

    func testCSRFRefusalsAreOneAuditRowWithACount() throws {
        let path = "/api/setup/email_smtp?probe=\(UUID().uuidString.prefix(8))"
        for _ in 0..<30 {
            let r = try env.admin.request("POST", path, headers: ["Content-Type": "application/json"], body: Array("{}".utf8))
            XCTAssertEqual(r.status, 403, r.text)
        }
        let rows = try auditRows(limit: 20).filter { $0["action"] as? String == "access.refused" && $0["outcome"] as? String == "csrf" }
        let counts = rows.prefix(2).compactMap { $0["count"] as? Int }
        // One row, or two when the 30 straddled a minute boundary.
        XCTAssertTrue(counts.reduce(0, +) >= 30 && rows.prefix(2).allSatisfy { $0["actor"] as? String == "admin" }, "\(rows)")
        XCTAssertTrue((rows.first?["count"] as? Int ?? 0) >= 15, "\(rows)")
        XCTAssertNotNil(ISO8601DateFormatter().date(from: rows.first?["last_at"] as? String ?? ""), "\(rows)")
    }

    func testRateLimitedRequestsAreOneAuditRowWithACount() throws {
        try env.saveSettings(["smtp_port": "\(smtpUnusedLoopbackPort())"])
        let user = "flood-\(UUID().uuidString.prefix(8))"
        var statuses: [Int] = []
        for _ in 0..<31 {
            statuses.append(try cgi(method: "POST", uri: "/api/setup/email_check", user: user,
                                    environment: ["EMAILSETUP_TEST_RATE_LIMIT_PER_USER": "1"]).status)
        }
        XCTAssertEqual(statuses.first, 502)
        XCTAssertEqual(statuses.dropFirst().filter { $0 == 429 }.count, 30, "\(statuses)")

        let rows = try auditRows().filter { $0["actor"] as? String == user }
        let limited = rows.filter { $0["outcome"] as? String == "rate_limited" }
        XCTAssertTrue((1...2).contains(limited.count), "one row a minute, not one a request: \(rows)")
        XCTAssertEqual(limited.compactMap { $0["count"] as? Int }.reduce(0, +), 30, "\(limited)")
        XCTAssertEqual(rows.filter { $0["outcome"] as? String == "failure" }.first?["count"] as? Int, 1)
        XCTAssertEqual((limited.last?["detail"] as? [String: Any])?["bucket"] as? String, "smtp-test:user:\(user)")
    }

    func testHistoryKeepPrunesThroughAResponderWithASmallSetting() throws {
        let small = ["EMAILSETUP_HISTORY_KEEP": "3"]
        let tag = UUID().uuidString.prefix(8).lowercased()
        var saved: [Int] = []
        for i in 0..<6 {
            let body = #"{"data":{"from_address":"app@example.com","smtp_host":"keep\#(i)-\#(tag).example.com"}}"#
            let answer = try cgi(method: "POST", uri: "/api/setup/email_smtp", user: "admin", body: body, environment: small)
            XCTAssertEqual(answer.status, 200, answer.output)
            saved.append(try XCTUnwrap(Int((answer.json["data"] as? [String: Any])?["smtp_settings_version"] as? String ?? ""), answer.output))
        }
        let current = try XCTUnwrap(saved.last)
        let versions = try historyVersions()
        XCTAssertEqual(Array(versions.prefix(3)), [current, current - 1, current - 2])
        // Older versions are gone, but the last known good (if any) is kept for restore.
        let lastKnownGood = Int(try env.admin.request("GET", EndToEndEnvironment.settingsPath).data?["last_known_good_version"] as? String ?? "")
        XCTAssertEqual(Array(versions.dropFirst(3)), lastKnownGood.map { $0 < current - 2 ? [$0] : [] } ?? [], "\(versions)")
        let restore = try env.admin.post("/api/setup/email_history/\(current - 3)/restore", json: "")
        XCTAssertEqual(restore.status, current - 3 == lastKnownGood ? 200 : 404, restore.text)
    }

    struct CGIAnswer {
        var status: Int
        var json: [String: Any]
        var output: String
    }

    /// One request to the responder binary as plain CGI (its configuration from the
    /// suite's file plus `environment`), the way TestRateLimitTests runs it.
    func cgi(method: String, uri: String, user: String, body: String = "", environment: [String: String]) throws -> CGIAnswer {
        let result = try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": method, "REQUEST_URI": uri, "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": String(body.utf8.count), "GATEWAY_INTERFACE": "CGI/1.1",
            "EMAILSETUP_CONFIG": config, "EMAILSETUP_ADMINS": "",
        ].merging(environment) { $1 }, input: Array(body.utf8), timeout: 30)
        XCTAssertEqual(result.status, 0, result.output)
        let lines = result.output.components(separatedBy: .newlines)
        let status = lines.first { $0.hasPrefix("Status: ") }.flatMap { Int($0.dropFirst(8).prefix(3)) } ?? 0
        let json = lines.last { $0.hasPrefix(#"{"status":"#) }
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        return CGIAnswer(status: status, json: json, output: result.output)
    }
}

/// Issue 12, item 5: while MariaDB is down the suite's responder logs the outage
/// once, a count every 10 s, and the recovery once — not a line per request — and
/// still answers 503.
final class OutageLogEndToEndTests: XCTestCase {
    func testOutageIsLoggedOnceThenCountedThenRecovered() throws {
        let env = try EndToEndEnvironment.require()
        let logPath = env.stateDirectory + "/responder.log"
        let offset = (try FileManager.default.attributesOfItem(atPath: logPath)[.size] as? NSNumber)?.intValue ?? 0
        XCTAssertEqual(try env.admin.request("GET", EndToEndEnvironment.settingsPath).status, 200)

        try env.script("scripts/lib/mariadb.sh", ["stop", env.stateDirectory])
        var restarted = false
        defer { if !restarted { _ = try? env.script("scripts/lib/mariadb.sh", ["start", env.stateDirectory]) } }
        // 12 s of requests from four clients: beyond one 10 s report.
        let statuses = StatusList()
        let until = Date().addingTimeInterval(12)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            while Date() < until {
                let path = i % 2 == 0 ? EndToEndEnvironment.settingsPath : "/api/setup/email_history"
                statuses.append((try? env.admin.request("GET", path).status) ?? -1)
            }
        }
        try env.script("scripts/lib/mariadb.sh", ["start", env.stateDirectory])
        restarted = true
        var back = 0
        let during = statuses.values
        XCTAssertGreaterThan(during.count, 20)
        XCTAssertEqual(during.filter { $0 == 503 }.count, during.count, "every request during the outage is a 503")
        for _ in 0..<50 where back != 200 {
            back = (try? env.admin.request("GET", EndToEndEnvironment.settingsPath).status) ?? -1
            if back != 200 { statuses.append(back); usleep(100_000) }
        }
        XCTAssertEqual(back, 200)
        let failed = statuses.values.filter { $0 == 503 }.count

        // The log lines of this outage (the responder writes them before answering).
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: logPath))
        try handle.seek(toOffset: UInt64(offset))
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let entries = text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let messages = entries.compactMap { $0["msg"] as? String }
        let began = messages.filter { $0.hasPrefix("database unreachable") }
        let still = entries.filter { ($0["msg"] as? String ?? "").hasPrefix("database still unreachable") }
        let recovered = entries.filter { ($0["msg"] as? String ?? "").hasPrefix("database reachable again") }
        XCTAssertEqual(began.count, 1, messages.joined(separator: "\n"))
        XCTAssertEqual(still.count, 1, messages.joined(separator: "\n"))
        XCTAssertEqual(recovered.count, 1, messages.joined(separator: "\n"))
        XCTAssertEqual(messages.filter { $0 == "storage failure" || $0 == "cannot connect to the database" }.count, 0)
        // Every 503 is counted in the recovery line (one process serves them all).
        XCTAssertEqual(Int(recovered.first?["failed_total"] as? String ?? ""), failed, "\(recovered)")
        XCTAssertTrue((recovered.first?["msg"] as? String ?? "").contains("\(failed) requests failed"), "\(recovered)")
        // Apart from the one access line per request, a handful of lines for the whole outage.
        let others = entries.filter { $0["msg"] as? String != "request" && ["warning", "error", "critical"].contains($0["level"] as? String ?? "") }
        XCTAssertLessThanOrEqual(others.count, 2 + 8, others.compactMap { $0["msg"] as? String }.joined(separator: "\n"))
    }
}
