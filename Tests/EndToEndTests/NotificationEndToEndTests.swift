import Foundation
import ProcessIO
import TestSupport
import XCTest

/// After every committed save the rest of the system hears `SYSTEM_UPDATED*RESET*`
/// on a unix socket (or a command runs); rolled-back saves say nothing, and a
/// missing or hung target never fails or slows the save beyond its timeout.
final class NotificationEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    var dir: TemporaryDirectory!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        dir = try TemporaryDirectory(prefix: "notify")
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }
    /// A save that changes something each time: a save that changes nothing makes no
    /// version and notifies no one (issue 12).
    var valid: String { #"{"data":{"from_address":"app@example.com","smtp_host":"notify-\#(UUID().uuidString.prefix(8).lowercased()).example.com"}}"# }

    /// One POST through the responder as CGI, with extra configuration in the environment.
    func cgiSave(_ body: String, ifMatch: String? = nil, environment: [String: String]) throws -> (status: String, seconds: Double) {
        var variables = [
            "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/setup/email_smtp", "REMOTE_USER": "admin",
            "GATEWAY_INTERFACE": "CGI/1.1", "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": String(body.utf8.count),
            "EMAILSETUP_CONFIG": config,
        ].merging(environment) { $1 }
        if let ifMatch { variables["HTTP_IF_MATCH"] = ifMatch }
        let started = Date()
        let result = try ScriptRunner.runWithStatus(env.binary, [], environment: variables, input: Array(body.utf8), timeout: 20)
        let status = result.output.split(separator: "\r\n").first { $0.hasPrefix("Status:") }.map(String.init) ?? result.output
        return (status, Date().timeIntervalSince(started))
    }

    func testCommittedSaveNotifiesAStreamAndADatagramSocketWithTheExactBytes() throws {
        let stream = try UnixListener(path: dir.path + "/app.sock", datagram: false)
        let datagram = try UnixListener(path: dir.path + "/app.dgram", datagram: true)
        let saved = try cgiSave(valid, environment: ["EMAILSETUP_NOTIFY": "unix-stream:\(stream.path), unix-datagram:\(datagram.path)"])
        XCTAssertTrue(saved.status.contains("200"), saved.status)
        XCTAssertEqual(stream.receive(timeout: 3), Array("SYSTEM_UPDATED*RESET*".utf8))
        XCTAssertEqual(datagram.receive(timeout: 3), Array("SYSTEM_UPDATED*RESET*".utf8))
    }

    func testConfigurableMessageAndACommandWithTheVersion() throws {
        let stream = try UnixListener(path: dir.path + "/custom.sock", datagram: false)
        let out = dir.path + "/version.txt"
        let script = dir.path + "/hook.sh"
        try "#!/bin/sh\necho \"$EMAILSETUP_SETTINGS_VERSION\" > '\(out)'\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let saved = try cgiSave(valid, environment: ["EMAILSETUP_NOTIFY": "unix-stream:\(stream.path), command:\(script)",
                                                    "EMAILSETUP_NOTIFY_MESSAGE": "RELOAD smtp"])
        XCTAssertTrue(saved.status.contains("200"), saved.status)
        XCTAssertEqual(stream.receive(timeout: 3), Array("RELOAD smtp".utf8))
        let version = try env.admin.request("GET", "/api/setup/email_smtp").headers["etag"]?.replacingOccurrences(of: "\"", with: "")
        var written = ""
        for _ in 0..<30 where written.isEmpty {
            written = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if written.isEmpty { usleep(100_000) }
        }
        XCTAssertEqual(written, version)
    }

    func testRolledBackSavesNotifyNothing() throws {
        let stream = try UnixListener(path: dir.path + "/quiet.sock", datagram: false)
        let notify = ["EMAILSETUP_NOTIFY": "unix-stream:\(stream.path)"]
        let invalid = try cgiSave(#"{"data":{"smtp_port":"99999"}}"#, environment: notify)
        XCTAssertTrue(invalid.status.contains("400"), invalid.status)
        let conflict = try cgiSave(valid, ifMatch: "\"999999\"", environment: notify)
        XCTAssertTrue(conflict.status.contains("409"), conflict.status)
        XCTAssertNil(stream.receive(timeout: 1.5), "a save that did not commit must not notify")
    }

    func testMissingOrHungTargetsLeaveTheSaveFastAndSuccessful() throws {
        let hung = try UnixListener(path: dir.path + "/hung.sock", datagram: false, backlog: 0, accept: false)
        _ = hung
        let targets = "unix-stream:\(dir.path)/absent.sock, command:/bin/sleep 30, unix-stream:\(hung.path)"
        let saved = try cgiSave(valid, environment: ["EMAILSETUP_NOTIFY": targets, "EMAILSETUP_NOTIFY_TIMEOUT": "0.5"])
        XCTAssertTrue(saved.status.contains("200"), saved.status)
        XCTAssertLessThan(saved.seconds, 0.5 + 1.5, "the answer waited for a hung target")
    }

    func testFastCGIAnswersBeforeASlowTargetFinishes() throws {
        let port = smtpUnusedLoopbackPort()
        let responder = try ManagedProcess(executable: env.binary, arguments: ["serve", "--listen", "127.0.0.1:\(port)", "--threads", "2", "--config", config],
                                           environment: ProcessInfo.processInfo.environment.merging(
                                            ["EMAILSETUP_NOTIFY": "command:/bin/sleep 5", "EMAILSETUP_NOTIFY_TIMEOUT": "3"]) { $1 })
        defer { responder.stop() }
        let body = valid
        var answer = ""
        var seconds = 0.0
        for _ in 0..<50 {
            let started = Date()
            answer = (try? ScriptRunner.runWithStatus("/usr/bin/cgi-fcgi", ["-bind", "-connect", "127.0.0.1:\(port)"], environment: [
                "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/setup/email_smtp", "REMOTE_USER": "admin",
                "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": String(body.utf8.count), "GATEWAY_INTERFACE": "CGI/1.1",
            ], input: Array(body.utf8), timeout: 10).output) ?? ""
            seconds = Date().timeIntervalSince(started)
            if answer.contains("Status: 200") { break }
            usleep(100_000)
        }
        XCTAssertTrue(answer.contains("Status: 200"), answer)
        XCTAssertLessThan(seconds, 1.0, "FastCGI answers first; notifications run beside it")
    }
}

/// A unix socket that records the first message it gets; optionally never accepts
/// (a hung listener) or is a datagram socket.
final class UnixListener: Sendable {
    let path: String
    private let fd: Int32
    private let datagram: Bool

    init(path: String, datagram: Bool, backlog: Int32 = 8, accept: Bool = true) throws {
        self.path = path
        self.datagram = datagram
        do {
            fd = try UnixSocket.listen(path, datagram: datagram, backlog: backlog)
        } catch {
            throw ScriptRunner.Failed(description: "\(error)")
        }
        if !datagram, !accept {
            // Fill the backlog so a connect() blocks: a listener that is alive but never answers.
            for _ in 0..<4 { _ = UnixSocket.connectNonBlocking(path, datagram: false) }
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The bytes of the first connection (until it closes) or datagram, or nil after `timeout`.
    func receive(timeout: Double) -> [UInt8]? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        if datagram {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            return n >= 0 ? Array(buffer[0..<n]) : nil
        }
        let c = accept(fd, nil, nil)
        guard c >= 0 else { return nil }
        defer { close(c) }
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var cp = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            guard poll(&cp, 1, 100) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(c, $0.baseAddress!, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }
}
