@testable import EmailSetupFCGI
import Smtp
import Storage
import XCTest

final class APIHandlerTests: XCTestCase {
    var repository: MemorySettingsRepository!
    var handler: APIHandler!

    override func setUp() {
        repository = MemorySettingsRepository()
        handler = APIHandler(repository: repository, logger: .quiet)
    }

    let valid = #"{"data":{"from_address":"app@example.com","smtp_host":"smtp.example.com","smtp_port":"587","smtp_connection_type":"STARTTLS"}}"#

    func testGetReturnsDefaultsWithoutPasswordAndETag() {
        repository.values = ["smtp_password": "v1:abc:xyz", "smtp_host": "mail.example.com"]
        repository.version = 3
        let r = handler.handle(get("/api/setup/email_smtp"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("ETag"), "\"3\"")
        XCTAssertEqual(r.json["status"], "success")
        XCTAssertEqual(r.data("smtp_host"), "mail.example.com")
        XCTAssertEqual(r.data("smtp_port"), "25")
        XCTAssertEqual(r.data("smtp_tls_verify"), "Full")
        XCTAssertEqual(r.json["data"]?["smtp_password_set"], .bool(true))
        XCTAssertNil(r.json["data"]?["smtp_password"])
        XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("v1:abc"))
    }

    func testSaveValidSettingsBumpsVersion() {
        let r = handler.handle(post("/api/setup/email_smtp", valid))
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(r.header("ETag"), "\"1\"")
        XCTAssertEqual(repository.values["smtp_port"], "587")
        XCTAssertEqual(repository.values["smtp_connection_type"], "STARTTLS")
        XCTAssertEqual(repository.saves.first?.actor, "admin")
        XCTAssertEqual(r.data("smtp_settings_version"), "1")
    }

    func testAllFieldErrorsAtOnceAndNothingSaved() {
        let body = #"{"data":{"from_address":"not-an-address","smtp_host":"","smtp_port":"70000","smtp_connection_type":"SMTPS","smtp_authentication_type":"Kerberos","smtp_tls_verify":"Sometimes","smtp_tls_pin_sha256":"abc","smtp_connect_timeout":"0","smtp_command_timeout":"x","colour":"blue"}}"#
        let r = handler.handle(post("/api/setup/email_smtp", body))
        XCTAssertEqual(r.status, 400)
        for field in ["from_address", "smtp_host", "smtp_port", "smtp_connection_type", "smtp_authentication_type",
                      "smtp_tls_verify", "smtp_tls_pin_sha256", "smtp_connect_timeout", "smtp_command_timeout", "colour"] {
            XCTAssertNotNil(r.error(field), "expected an error for \(field): \(String(decoding: r.body, as: UTF8.self))")
        }
        XCTAssertTrue(repository.saves.isEmpty)
    }

    func testLineBreaksAndNulRefusedInEveryOneLineField() {
        for field in ["from_address", "smtp_host", "smtp_username", "smtp_port", "smtp_connection_type"] {
            for bad in ["a\\r\\nb", "a\\nb", "a\\u0000b"] {
                let r = handler.handle(post("/api/setup/email_smtp", #"{"data":{"\#(field)":"\#(bad)"}}"#))
                XCTAssertEqual(r.status, 400)
                XCTAssertNotNil(r.error(field), "\(field) with \(bad)")
            }
        }
        XCTAssertTrue(repository.saves.isEmpty)
    }

    func testStaleIfMatchIs409AndCurrentETag() {
        repository.version = 5
        let r = handler.handle(post("/api/setup/email_smtp", valid, headers: ["if-match": "\"4\""]))
        XCTAssertEqual(r.status, 409)
        XCTAssertEqual(r.header("ETag"), "\"5\"")
        XCTAssertNotNil(r.error("version"))
        let ok = handler.handle(post("/api/setup/email_smtp", valid, headers: ["if-match": "\"5\""]))
        XCTAssertEqual(ok.status, 200)
    }

    func testMalformedIfMatchIs400() {
        let r = handler.handle(post("/api/setup/email_smtp", valid, headers: ["if-match": "banana"]))
        XCTAssertEqual(r.status, 400)
    }

    func testAuthAndCSRF() {
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: nil)).status, 401)
        var noHeader = post("/api/setup/email_smtp", valid)
        noHeader.headers["x-requested-with"] = nil
        XCTAssertEqual(handler.handle(noHeader).status, 403)
        let foreign = post("/api/setup/email_smtp", valid, headers: ["origin": "https://evil.example"])
        XCTAssertEqual(handler.handle(foreign).status, 403)
        let same = post("/api/setup/email_smtp", valid, headers: ["origin": "http://127.0.0.1:8080"])
        XCTAssertEqual(handler.handle(same).status, 200)
        XCTAssertEqual(repository.saves.count, 1)

        handler.policy.admins = ["alice"]
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: "bob")).status, 403)
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: "alice")).status, 200)

        handler.policy = AccessPolicy(mode: .none)
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: nil)).status, 200)
    }

    /// The allow-list compares the bytes the web server passed: a canonically
    /// equivalent or case-variant name is another user.
    func testAllowListComparesUserNamesByteForByte() {
        let nfc = "Jos\u{E9}", nfd = "Jose\u{301}"
        XCTAssertEqual(nfc, nfd, "Swift String equality is canonical equivalence: the reason for this test")
        handler.policy.admins = ["Kate", nfc]
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: "Kate")).status, 200)
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: nfc)).status, 200)
        for other in ["\u{212A}ate", nfd, "kate", "KATE", "Kate ", "Ka\u{200B}te", "jos\u{E9}"] {
            let r = handler.handle(get("/api/setup/email_smtp", user: other))
            XCTAssertEqual(r.status, 403, "\(other.unicodeScalars.map { String($0.value, radix: 16) }) was admitted")
        }
        XCTAssertTrue(UserNames(["Kate"]).contains("Kate"))
        XCTAssertFalse(UserNames(["\u{212A}ate"]).contains("Kate"), "and the other way round")
        XCTAssertEqual(UserNames(["a", "a"]).count, 1)
    }

    func testGetShowsTheHostForPeopleAndSaveStoresTheCanonicalForm() {
        let r = handler.handle(post("/api/setup/email_smtp", #"{"data":{"from_address":"app@example.com","smtp_host":"Bücher.Example.","smtp_host_unicode":"ignored"}}"#))
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(repository.values["smtp_host"], "xn--bcher-kva.example")
        let g = handler.handle(get("/api/setup/email_smtp"))
        XCTAssertEqual(g.data("smtp_host"), "xn--bcher-kva.example")
        XCTAssertEqual(g.data("smtp_host_unicode"), "bücher.example")
    }

    func testSaveRefusesAHostInADeniedNetwork() throws {
        handler.deniedNetworks = try IPNetwork.list("169.254.0.0/16, fe80::/10")
        let r = handler.handle(post("/api/setup/email_smtp", #"{"data":{"from_address":"app@example.com","smtp_host":"169.254.169.254"}}"#))
        XCTAssertEqual(r.status, 400)
        XCTAssertTrue((r.json["errors"]?["smtp_host"]?.stringValue ?? "").contains("smtp_denied_networks (169.254.0.0/16)"), String(decoding: r.body, as: UTF8.self))
        XCTAssertTrue(repository.saves.isEmpty)
    }

    func testOriginWhenTheWebServerDropsThePortFromHost() {
        // Debian's fastcgi_params: HTTP_HOST $host (no port); SERVER_PORT tells it.
        var r = post("/api/setup/email_smtp", valid, headers: ["host": "127.0.0.1", "origin": "http://127.0.0.1:18092"])
        r.serverPort = 18092
        XCTAssertEqual(handler.handle(r).status, 200)
        r.headers["origin"] = "http://127.0.0.1:9999"
        XCTAssertEqual(handler.handle(r).status, 403)
        r.headers["origin"] = "http://127.0.0.1"
        XCTAssertEqual(handler.handle(r).status, 200, "behind a proxy on the default port")
        r.headers["origin"] = "http://evil.example:18092"
        XCTAssertEqual(handler.handle(r).status, 403)
        r.headers["origin"] = "null"
        XCTAssertEqual(handler.handle(r).status, 403)
        var v6 = post("/api/setup/email_smtp", valid, headers: ["host": "[::1]:8080", "origin": "http://[::1]:8080"])
        XCTAssertEqual(handler.handle(v6).status, 200)
        v6.headers["origin"] = "http://[::2]:8080"
        XCTAssertEqual(handler.handle(v6).status, 403)
    }

    func testRoutingStatuses() {
        XCTAssertEqual(handler.handle(get("/api/setup/nope")).status, 404)
        XCTAssertEqual(handler.handle(get("/elsewhere")).status, 404)
        let wrong = handler.handle(Request(method: "DELETE", path: "/api/setup/email_smtp", remoteUser: "admin"))
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.header("Allow"), "GET, POST")
        XCTAssertEqual(handler.handle(get("/api/setup/email_check")).status, 405)
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp")).json["status"], "success")
    }

    func testBodyOver64KiBIs413() {
        let big = String(repeating: "a", count: APIHandler.bodyLimit + 1)
        let r = handler.handle(post("/api/setup/email_smtp", big))
        XCTAssertEqual(r.status, 413)
        var declared = post("/api/setup/email_smtp", "{}")
        declared.declaredContentLength = 10_000_000
        XCTAssertEqual(handler.handle(declared).status, 413)
    }

    func testMalformedJSONIs400() {
        for body in ["", "{", "[]", #"{"data":[]}"#, #"{"data":{"a":1,"a":2}}"#, "{\"data\":{}} trailing"] {
            let r = handler.handle(post("/api/setup/email_smtp", body))
            XCTAssertEqual(r.status, 400, body)
            XCTAssertEqual(r.json["status"], "error")
        }
    }

    func testDatabaseUnavailableIs503() {
        repository.failWith = StorageError(.unavailable, "gone")
        let r = handler.handle(get("/api/setup/email_smtp"))
        XCTAssertEqual(r.status, 503)
        XCTAssertNotNil(r.error("database"))
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp", valid)).status, 503)
    }

    func testPasswordWithoutVaultIsRefusedOnThatField() {
        let body = #"{"data":{"from_address":"app@example.com","smtp_host":"smtp.example.com","smtp_password":"Zm9v"}}"#
        let r = handler.handle(post("/api/setup/email_smtp", body))
        XCTAssertEqual(r.status, 400)
        XCTAssertNotNil(r.error("smtp_password"))
        XCTAssertTrue(repository.saves.isEmpty)
    }

    func testEmptyPasswordClearsIt() {
        repository.values = ["smtp_password": "v1:k:sealed"]
        let body = #"{"data":{"from_address":"app@example.com","smtp_host":"smtp.example.com","smtp_password":""}}"#
        let r = handler.handle(post("/api/setup/email_smtp", body))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(repository.values["smtp_password"], "")
        XCTAssertEqual(r.json["data"]?["smtp_password_set"], .bool(false))
    }

    func testSaveThatChangesNothingWritesNothing() {
        var committed: [Int] = []
        handler.settingsCommitted = { committed.append($0) }
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp", valid)).status, 200)
        XCTAssertEqual(repository.version, 1)
        repository.values["smtp_password"] = "v1:k:sealed"
        let auditBefore = repository.auditRows.count

        // The same values again (spelled differently: canonical forms are compared),
        // with a current If-Match, "*", or none; the stored password stays as it is.
        for (body, ifMatch) in [(valid, nil), (valid, "\"1\""), (#"{"data":{"smtp_connection_type":"starttls"}}"#, "*"), (#"{"data":{}}"#, nil)] {
            let r = handler.handle(post("/api/setup/email_smtp", body, headers: ifMatch.map { ["if-match": $0] } ?? [:]))
            XCTAssertEqual(r.status, 200, "\(body): \(String(decoding: r.body, as: UTF8.self))")
            XCTAssertEqual(r.header("ETag"), "\"1\"")
            XCTAssertEqual(r.data("smtp_settings_version"), "1")
            XCTAssertEqual(r.data("smtp_port"), "587")
            XCTAssertEqual(r.json["data"]?["smtp_password_set"], .bool(true))
            XCTAssertEqual(r.json["data"]?["unchanged"], .bool(true))
        }
        XCTAssertEqual(repository.version, 1, "no new version")
        XCTAssertEqual(repository.saves.count, 1, "no save reached the repository (so no history or audit row)")
        XCTAssertEqual(repository.auditRows.count, auditBefore)
        XCTAssertEqual(committed, [1], "no notification for a save that changed nothing")

        // A stale If-Match is a 409 even when nothing would change.
        let stale = handler.handle(post("/api/setup/email_smtp", valid, headers: ["if-match": "\"0\""]))
        XCTAssertEqual(stale.status, 409)
        XCTAssertEqual(stale.header("ETag"), "\"1\"")

        // Any real change is a save again; so is clearing the password.
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp", #"{"data":{"smtp_port":"2525"}}"#)).header("ETag"), "\"2\"")
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp", #"{"data":{"smtp_password":""}}"#)).header("ETag"), "\"3\"")
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp", #"{"data":{"smtp_password":""}}"#)).header("ETag"), "\"3\"",
                       "clearing a password that is already clear changes nothing")
        XCTAssertEqual(committed, [1, 2, 3])
    }

    func testRefusalsAreAuditedAsOneRowPerUserAndMinuteWithACount() {
        handler.policy.admins = ["alice"]
        for _ in 0..<30 { XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: "mallory")).status, 403) }
        var noHeader = post("/api/setup/email_smtp", valid, user: "alice")
        noHeader.headers["x-requested-with"] = nil
        for _ in 0..<5 { XCTAssertEqual(handler.handle(noHeader).status, 403) }
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: nil)).status, 401)

        let summary = repository.auditRows.map { "\($0.action) \($0.outcome) \($0.actor) ×\($0.count)" }
        XCTAssertEqual(summary, ["access.refused not_admin mallory ×30", "access.refused csrf alice ×5"])
        let listed = handler.handle(get("/api/setup/email_audit", user: "alice"))
        guard case let .array(entries)? = listed.json["data"]?["entries"], entries.count == 2 else {
            return XCTFail(String(decoding: listed.body, as: UTF8.self))
        }
        let first = entries[1]  // newest first
        XCTAssertEqual(first["count"], .number(30))
        XCTAssertEqual(first["detail"]?["path"], "/api/setup/email_smtp")
        XCTAssertNotEqual(first["last_at"], .null)
    }

    func testRateLimitRefusalsAreAggregated() {
        handler.smtp = ScriptedSmtp()
        handler.limits = TestRateLimits(perUser: 2, total: 100)
        repository.values = ["from_address": "app@example.com", "smtp_host": "smtp.example.com"]
        repository.version = 1
        let statuses = (0..<32).map { _ in handler.handle(post("/api/setup/email_check", "")).status }
        XCTAssertEqual(statuses.filter { $0 == 429 }.count, 30, "\(statuses)")
        let limited = repository.auditRows.filter { $0.outcome == "rate_limited" }
        XCTAssertEqual(limited.map(\.count), [30])
    }

    func testPercentEncodedTestAddressRoutes() {
        let r = handler.handle(post("/api/setup/email_test/ops%40example.com", ""))
        XCTAssertNotEqual(r.status, 404)
    }
}
