import Foundation
import TestSupport
import XCTest

/// Issue 12: test emails and checks run on their own bounded pool, so an SMTP server
/// that accepts TCP and never answers holds pool slots, never the request workers.
/// Through nginx against the suite's responder (4 SMTP sessions, the default).
final class SmtpPoolEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    var silent: HostileSmtpServer!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        silent = try HostileSmtpServer(mode: "silent")
        // Long enough that only the pool, the client or the session limit ends a session.
        try env.saveSettings(["smtp_port": "\(silent.port)", "smtp_connect_timeout": "5", "smtp_command_timeout": "60"])
    }

    override func tearDown() {
        silent?.stop()
    }

    func testStalledSessionsLeaveTheAPIAnsweringAndAFullPoolAnswers503AtOnce() throws {
        let stalled = try (0..<4).map { _ in try HeldRequest(port: env.port, client: env.admin, path: "/api/setup/email_test/ops%40example.com") }
        defer { stalled.forEach { $0.close() } }
        // Wait (bounded) until all four slots are taken: the next check is refused.
        let busy = try eventually(seconds: 10) { try probe() }
        XCTAssertEqual(busy.header("retry-after"), "5", busy.text)
        XCTAssertNotNil(busy.errors?["smtp"], busy.text)

        // Everything else answers in its usual time while every SMTP slot is stalled.
        for _ in 0..<20 {
            let started = Date()
            let get = try env.admin.request("GET", "/api/setup/email_smtp")
            XCTAssertEqual(get.status, 200, get.text)
            XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "a GET waited behind stalled SMTP sessions")
        }
        let started = Date()
        XCTAssertEqual(try env.admin.request("GET", "/api/setup/health").status, 200)
        let refused = try env.sendTestEmail()
        XCTAssertEqual(refused.status, 503, refused.text)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0, "a full pool must answer at once")
        XCTAssertEqual(try env.saveSettings(["smtp_connect_timeout": "6"]).status, 200, "a save is never queued behind SMTP")
    }

    func testAClientThatGoesAwayEndsItsSessionWithinASecondAndTheAuditSaysSo() throws {
        let held = try HeldRequest(port: env.port, client: env.admin, path: "/api/setup/email_check")
        // The session is running once the pool has one slot fewer; give it a moment to connect.
        usleep(700_000)
        let closedAt = Date()
        held.close()
        let row = try eventually(seconds: 3) { () -> [String: Any]? in
            let r = try env.admin.request("GET", "/api/setup/email_audit?limit=10")
            let entries = r.data?["entries"] as? [[String: Any]] ?? []
            return entries.first { $0["action"] as? String == "test.check" && $0["outcome"] as? String == "abandoned" }
        }
        XCTAssertLessThan(Date().timeIntervalSince(closedAt), 2.0, "the session ran on after the client left")
        let detail = try XCTUnwrap(row["detail"] as? [String: Any], "\(row)")
        XCTAssertEqual(detail["host"] as? String, "127.0.0.1")
        XCTAssertEqual(detail["port"] as? Int, silent.port)
        // And its slot is free again: four new sessions fit (then they are let go).
        let again = try (0..<4).map { _ in try HeldRequest(port: env.port, client: env.admin, path: "/api/setup/email_check") }
        defer { again.forEach { $0.close() } }
        _ = try eventually(seconds: 10) { try probe() }
    }

    func testTheSessionLimitStopsASlowTestBeforeTheWebServerGivesUp() throws {
        // The responder as plain CGI with a 5 s limit (the suite's responder keeps 170 s).
        let started = Date()
        let result = try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/setup/email_check", "REMOTE_USER": "admin",
            "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": "0", "GATEWAY_INTERFACE": "CGI/1.1",
            "EMAILSETUP_CONFIG": env.stateDirectory + "/emailsetup.conf", "EMAILSETUP_SMTP_SESSION_LIMIT": "5",
        ], timeout: 30)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertTrue(result.output.contains("Status: 504"), result.output)
        XCTAssertTrue(result.output.contains("smtp_session_limit"), "the hint must name the limit: \(result.output)")
        XCTAssertGreaterThan(elapsed, 4.5)
        XCTAssertLessThan(elapsed, 12, "saved command timeout is 60 s; the limit is 5 s")
    }

    /// A check with a short client timeout: its 503 when the pool is full, else nil (a
    /// check that got a slot stalls, times out here and is let go, freeing the slot).
    func probe() throws -> HTTPTestClient.Response? {
        usleep(200_000)
        var client = env.admin
        client.timeout = 1
        guard let r = try? client.post("/api/setup/email_check", json: "") else { return nil }
        return r.status == 503 ? r : nil
    }

    /// Calls `body` until it returns a value, for at most `seconds`.
    func eventually<T>(seconds: Double, _ body: () throws -> T?) throws -> T {
        let end = Date().addingTimeInterval(seconds)
        while true {
            if let value = try body() { return value }
            if Date() > end { throw EndToEndFailure("condition not met within \(seconds) s") }
            usleep(100_000)
        }
    }
}

/// A POST sent through nginx whose answer nobody reads until `close()`: a browser
/// waiting for a test email, or one that gives up.
final class HeldRequest {
    private var fd: Int32

    init(port: Int, client: HTTPTestClient, path: String) throws {
        var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: 0\r\n"
        if let credentials = client.credentials {
            head += "Authorization: Basic \(Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString())\r\n"
        }
        head += "X-Requested-With: EmailSetup\r\n\r\n"
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EndToEndFailure("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { Glibc.close(fd); throw EndToEndFailure("connect to nginx: \(errno)") }
        let bytes = Array(head.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            Glibc.close(fd)
            throw EndToEndFailure("send to nginx failed")
        }
    }

    deinit { close() }

    /// Goes away without reading the answer.
    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}

extension HTTPTestClient.Response {
    /// A header's value (names are stored in lower case).
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}
