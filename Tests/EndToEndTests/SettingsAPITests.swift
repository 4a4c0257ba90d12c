import Foundation
import TestSupport
import XCTest
import Synchronization

/// The settings API driven through nginx, against the real responder and MariaDB
/// that scripts/test started.
final class SettingsAPITests: XCTestCase {
    var env: EndToEndEnvironment!
    let path = "/api/setup/email_smtp"

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    func currentETag() throws -> String {
        let r = try env.admin.request("GET", path)
        XCTAssertEqual(r.status, 200, r.text)
        return try XCTUnwrap(r.headers["etag"])
    }

    func testRoundTripOfEveryKey() throws {
        let pin = String(repeating: "0123456789abcdef", count: 4)
        let body = """
        {"data":{"from_address":"Ops@Example.com","smtp_username":"mailer","smtp_host":"smtp.example.org",
        "smtp_port":"2525","smtp_connection_type":"STARTTLS","smtp_authentication_type":"Login",
        "smtp_tls_verify":"Pinned","smtp_tls_pin_sha256":"\(pin)","smtp_tls_ca_pem":"",
        "smtp_connect_timeout":"7","smtp_command_timeout":"45","smtp_password":""}}
        """
        let saved = try env.admin.post(path, json: body, headers: ["If-Match": try currentETag()])
        XCTAssertEqual(saved.status, 200, saved.text)
        let r = try env.admin.request("GET", path)
        XCTAssertEqual(r.status, 200)
        let data = try XCTUnwrap(r.data)
        let expected = ["from_address": "Ops@Example.com", "smtp_username": "mailer", "smtp_host": "smtp.example.org",
                        "smtp_port": "2525", "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "Login",
                        "smtp_tls_verify": "Pinned", "smtp_tls_pin_sha256": pin, "smtp_tls_ca_pem": "",
                        "smtp_connect_timeout": "7", "smtp_command_timeout": "45"]
        for (key, value) in expected { XCTAssertEqual(data[key] as? String, value, key) }
        XCTAssertEqual(data["smtp_password_set"] as? Bool, false)
        XCTAssertNil(data["smtp_password"])
        XCTAssertEqual(r.headers["etag"], saved.headers["etag"])
        XCTAssertEqual(data["smtp_settings_version"] as? String, r.headers["etag"]?.replacingOccurrences(of: "\"", with: ""))
        XCTAssertEqual(r.headers["content-type"], "application/json; charset=utf-8")
    }

    func testAllErrorsAtOnceAndNothingWritten() throws {
        let before = try env.admin.request("GET", path)
        let body = #"{"data":{"from_address":"nobody","smtp_host":"bad host name","smtp_port":"0","smtp_connection_type":"maybe","smtp_tls_verify":"Pinned","smtp_connect_timeout":"999","smtp_username":"a\r\nRCPT TO:<x@y>"}}"#
        let r = try env.admin.post(path, json: body)
        XCTAssertEqual(r.status, 400, r.text)
        let errors = try XCTUnwrap(r.errors)
        for field in ["from_address", "smtp_host", "smtp_port", "smtp_connection_type", "smtp_tls_pin_sha256", "smtp_connect_timeout", "smtp_username"] {
            XCTAssertNotNil(errors[field], "missing error for \(field) in \(r.text)")
        }
        let after = try env.admin.request("GET", path)
        XCTAssertEqual(after.headers["etag"], before.headers["etag"])
        XCTAssertEqual(after.text, before.text)
    }

    func testStaleIfMatchIs409() throws {
        let etag = try currentETag()
        let first = try env.admin.post(path, json: #"{"data":{"from_address":"a@example.com","smtp_host":"h1.example.com"}}"#, headers: ["If-Match": etag])
        XCTAssertEqual(first.status, 200, first.text)
        let second = try env.admin.post(path, json: #"{"data":{"from_address":"a@example.com","smtp_host":"h2.example.com"}}"#, headers: ["If-Match": etag])
        XCTAssertEqual(second.status, 409, second.text)
        XCTAssertNotNil(second.errors?["version"])
        XCTAssertEqual(second.headers["etag"], first.headers["etag"])
        XCTAssertEqual(try env.admin.request("GET", path).data?["smtp_host"] as? String, "h1.example.com")
    }

    func testAuthentication() throws {
        XCTAssertEqual(try env.anonymous.request("GET", path).status, 401)
        let wrong = HTTPTestClient(port: env.port, user: "admin", password: "wrong")
        XCTAssertEqual(try wrong.request("GET", path).status, 401)
    }

    func testResponderRefusesWithoutRemoteUser() throws {
        // Straight to the binary as CGI: no web server, no REMOTE_USER.
        let result = try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": path, "GATEWAY_INTERFACE": "CGI/1.1",
            "EMAILSETUP_CONFIG": env.stateDirectory + "/emailsetup.conf",
        ])
        XCTAssertTrue(result.output.contains("Status: 401"), result.output)
    }

    func testCSRF() throws {
        let body = #"{"data":{"from_address":"a@example.com","smtp_host":"csrf.example.com"}}"#
        let noHeader = try env.admin.request("POST", path, headers: ["Content-Type": "application/json"], body: Array(body.utf8))
        XCTAssertEqual(noHeader.status, 403, noHeader.text)
        XCTAssertNotNil(noHeader.errors?["csrf"])
        let foreign = try env.admin.post(path, json: body, headers: ["Origin": "https://attacker.example"])
        XCTAssertEqual(foreign.status, 403, foreign.text)
        let same = try env.admin.post(path, json: body, headers: ["Origin": "http://127.0.0.1:\(env.port)"])
        XCTAssertEqual(same.status, 200, same.text)
    }

    func testTooLargeIs413() throws {
        let big = #"{"data":{"smtp_username":""# + String(repeating: "x", count: 70_000) + #""}}"#
        let r = try env.admin.post(path, json: big)
        XCTAssertEqual(r.status, 413, r.text)
        XCTAssertEqual(r.json?["status"] as? String, "error")
        let huge = try env.admin.post(path, json: String(repeating: "y", count: 2_000_000))
        XCTAssertEqual(huge.status, 413)
        XCTAssertEqual(huge.json?["status"] as? String, "error", huge.text)
    }

    func testUnknownRouteAndWrongMethod() throws {
        let r = try env.admin.request("GET", "/api/setup/nothing_here")
        XCTAssertEqual(r.status, 404)
        XCTAssertEqual(r.json?["status"] as? String, "error")
        let m = try env.admin.request("DELETE", path)
        XCTAssertEqual(m.status, 405)
        XCTAssertEqual(m.headers["allow"], "GET, POST")
    }

    func testDatabaseOutageGives503ThenRecovers() throws {
        XCTAssertEqual(try env.admin.request("GET", path).status, 200)
        try env.script("scripts/lib/mariadb.sh", ["stop", env.stateDirectory])
        var restarted = false
        defer { if !restarted { _ = try? env.script("scripts/lib/mariadb.sh", ["start", env.stateDirectory]) } }
        for _ in 0..<3 {
            let started = Date()
            let r = try env.admin.request("GET", path)
            XCTAssertEqual(r.status, 503, r.text)
            XCTAssertNotNil(r.errors?["database"])
            XCTAssertLessThan(Date().timeIntervalSince(started), 2.0)
        }
        try env.script("scripts/lib/mariadb.sh", ["start", env.stateDirectory])
        restarted = true
        let back = try env.admin.request("GET", path)
        XCTAssertEqual(back.status, 200, back.text)
    }

    func testConcurrentSaversLeaveOneConsistentVersion() throws {
        let savers = 20
        let group = DispatchGroup()
        let statuses = StatusList()
        let admin = env.admin, path = self.path
        for i in 0..<savers {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                let body = #"{"data":{"from_address":"saver\#(i)@example.com","smtp_host":"host\#(i).example.com","smtp_port":"\#(1000 + i)","smtp_username":"user\#(i)","smtp_connect_timeout":"\#(1 + i)"}}"#
                let status = (try? admin.post(path, json: body).status) ?? -1
                statuses.append(status)
            }
        }
        // Readers while the savers run: every answer is one saver's set, never a mix.
        for _ in 0..<40 {
            let r = try env.admin.request("GET", path)
            XCTAssertEqual(r.status, 200)
            try assertConsistent(r)
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(statuses.values.filter { $0 == 200 }.count, savers, "statuses: \(statuses.values)")
        try assertConsistent(try env.admin.request("GET", path))
    }

    private func assertConsistent(_ r: HTTPTestClient.Response) throws {
        let data = try XCTUnwrap(r.data)
        let host = data["smtp_host"] as? String ?? ""
        guard host.hasPrefix("host"), host.hasSuffix(".example.com"),
              let i = Int(host.dropFirst(4).dropLast(12)) else { return }
        XCTAssertEqual(data["from_address"] as? String, "saver\(i)@example.com")
        XCTAssertEqual(data["smtp_port"] as? String, "\(1000 + i)")
        XCTAssertEqual(data["smtp_username"] as? String, "user\(i)")
        XCTAssertEqual(data["smtp_connect_timeout"] as? String, "\(1 + i)")
    }
}

/// Statuses collected from several threads.
final class StatusList: Sendable {
    private let list = Mutex<[Int]>([])
    func append(_ status: Int) { list.withLock { $0.append(status) } }
    var values: [Int] { list.withLock { $0 } }
}
