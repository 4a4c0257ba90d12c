import Foundation
import TestSupport
import XCTest
import Synchronization

/// The responder's ways of being started: a TCP socket it opens, a socket
/// inherited from spawn-fcgi (fd 0), and plain CGI; plus a clean SIGTERM.
final class DeploymentModeTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }

    /// Asks a FastCGI responder at `address` (host:port or socket path) through libfcgi's cgi-fcgi.
    func fastCGIRequest(_ address: String, uri: String, user: String = "admin") throws -> String {
        try ScriptRunner.run("/usr/bin/cgi-fcgi", ["-bind", "-connect", address], environment: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": uri, "REMOTE_USER": user, "GATEWAY_INTERFACE": "CGI/1.1",
        ], timeout: 10)
    }

    func testPlainCGIAnswersOneRequest() throws {
        let result = try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/setup/email_smtp", "REMOTE_USER": "admin",
            "GATEWAY_INTERFACE": "CGI/1.1", "EMAILSETUP_CONFIG": config,
        ])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("Status: 200 OK"), result.output)
        XCTAssertTrue(result.output.contains(#""status":"success""#), result.output)
    }

    /// One plain CGI request with `extra` in its environment; output is stdout and stderr.
    func cgi(_ method: String, _ uri: String, _ extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": method, "REQUEST_URI": uri, "REMOTE_USER": "admin",
            "GATEWAY_INTERFACE": "CGI/1.1", "EMAILSETUP_CONFIG": config,
        ].merging(extra) { $1 })
    }

    /// Start-up is every CGI request's cost (issue 19): libcurl and its ~30 libraries
    /// are loaded only by an OAuth 2.0 token request, not by the dynamic loader at start.
    func testPlainCGIDoesNotLoadLibcurl() throws {
        let result = try cgi("GET", "/api/setup/email_smtp", ["LD_DEBUG": "libs"])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("Status: 200 OK"), result.output)
        XCTAssertTrue(result.output.contains("libmariadb"), "LD_DEBUG=libs printed no loader lines:\n\(result.output)")
        XCTAssertFalse(result.output.contains("libcurl"), "libcurl was loaded for a GET")
    }

    /// Under CGI the keys are read by the request that needs them (issue 17): a GET of
    /// the settings never opens the KEK file or the key tables — it answers 200 even
    /// with a KEK file that would be refused — while the public-key endpoint reads both:
    /// refused with one line naming the file, then served (the same key the FastCGI
    /// responder serves) with the suite's KEK file.
    func testPlainCGIReadsTheKeysOnlyWhenARequestNeedsThem() throws {
        let temporary = try TemporaryDirectory(prefix: "es-cgi-kek")
        let badKEK = temporary.path + "/kek"
        try String(repeating: "ab", count: 32).appending("\n").write(toFile: badKEK, atomically: true, encoding: .utf8)
        chmod(badKEK, 0o644)
        let get = try cgi("GET", "/api/setup/email_smtp", ["EMAILSETUP_KEK_FILE": badKEK])
        XCTAssertTrue(get.output.contains("Status: 200 OK"), get.output)
        let refused = try cgi("GET", "/api/setup/email_public_key", ["EMAILSETUP_KEK_FILE": badKEK])
        XCTAssertFalse(refused.output.contains("Status: 200 OK"), refused.output)
        XCTAssertTrue(refused.output.contains(badKEK) || refused.output.contains(badKEK.replacingOccurrences(of: "/", with: "\\/")), refused.output)
        let key = try cgi("GET", "/api/setup/email_public_key", ["EMAILSETUP_KEK_FILE": env.stateDirectory + "/keys/kek"])
        XCTAssertTrue(key.output.contains("Status: 200 OK"), key.output)
        let served = try env.admin.request("GET", "/api/setup/email_public_key")
        let pem = try XCTUnwrap(served.data?["public_key"] as? String, served.text)
        let body = try XCTUnwrap(key.output.components(separatedBy: "\r\n\r\n").dropFirst().first, key.output)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        XCTAssertEqual((json?["data"] as? [String: Any])?["public_key"] as? String, pem, "one key pair for every responder")
    }

    /// A CGI request on a database whose schema is behind (here: migration 6 undone)
    /// migrates it first, then answers.
    func testPlainCGIMigratesAnOldSchema() throws {
        let lines = try env.script("scripts/lib/mariadb.sh", ["env", env.stateDirectory])
        let line = try XCTUnwrap(lines.split(separator: "\n").first { $0.contains("EMAILSETUP_DB_SOCKET=") })
        let socket = String(line.split(separator: "=", maxSplits: 1)[1]).replacingOccurrences(of: "'", with: "")
        func sql(_ statement: String) throws -> String {
            try ScriptRunner.run("/usr/bin/mariadb", ["--no-defaults", "--socket", socket, "-uroot", "-N", "-B", "emailsetup", "-e", statement])
        }
        defer { _ = try? ScriptRunner.run(env.binary, ["migrate", "--config", config]) }
        _ = try sql("DROP TABLE oauth_pending; DELETE FROM schema_migrations WHERE version = 6")
        let tableCount = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'emailsetup' AND table_name = 'oauth_pending'"
        XCTAssertEqual(try sql(tableCount).trimmingCharacters(in: .whitespacesAndNewlines), "0")
        let result = try cgi("GET", "/api/setup/email_smtp")
        XCTAssertTrue(result.output.contains("Status: 200 OK"), result.output)
        XCTAssertEqual(try sql(tableCount).trimmingCharacters(in: .whitespacesAndNewlines), "1")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM schema_migrations WHERE version = 6").trimmingCharacters(in: .whitespacesAndNewlines), "1")
    }

    /// A CGI server may pass the words of a query without "=" as argv (RFC 3875 4.4);
    /// they must not select a subcommand: the request is answered as with no arguments.
    func testPlainCGIIgnoresQueryWordsInArgv() throws {
        let result = try ScriptRunner.runWithStatus(env.binary, ["send", "--to", "x@example.com"], environment: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/setup/email_smtp?send+--to+x%40example.com", "REMOTE_USER": "admin",
            "QUERY_STRING": "send+--to+x%40example.com", "GATEWAY_INTERFACE": "CGI/1.1", "EMAILSETUP_CONFIG": config,
        ])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("Status: 200 OK"), result.output)
    }

    func testTCPListenerAndGracefulSIGTERM() throws {
        let port = smtpUnusedLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: env.binary)
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--threads", "2", "--config", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.interrupt(); kill(process.processIdentifier, SIGKILL) } }
        var answer = ""
        for _ in 0..<50 {
            answer = (try? fastCGIRequest("127.0.0.1:\(port)", uri: "/api/setup/health")) ?? ""
            if answer.contains("Status: 200") { break }
            usleep(100_000)
        }
        XCTAssertTrue(answer.contains(#""database":"ok""#), answer)
        let stopped = Date()
        process.terminate() // SIGTERM
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
        XCTAssertFalse(process.isRunning, "still running 5 s after SIGTERM")
        XCTAssertLessThan(Date().timeIntervalSince(stopped), 2)
        XCTAssertEqual(process.terminationStatus, 0)
    }

    func testInheritedSocketFromSpawnFCGI() throws {
        let socket = NSTemporaryDirectory() + "es-spawn-\(getpid()).sock"
        let pidFile = NSTemporaryDirectory() + "es-spawn-\(getpid()).pid"
        defer {
            if let pid = try? String(contentsOfFile: pidFile, encoding: .utf8), let p = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(p, SIGTERM)
            }
            unlink(socket); unlink(pidFile)
        }
        try ScriptRunner.run("/usr/bin/spawn-fcgi", ["-s", socket, "-P", pidFile, "--", env.binary], environment: ["EMAILSETUP_CONFIG": config])
        var answer = ""
        for _ in 0..<50 {
            answer = (try? fastCGIRequest(socket, uri: "/api/setup/email_smtp")) ?? ""
            if answer.contains("Status: 200") { break }
            usleep(100_000)
        }
        XCTAssertTrue(answer.contains(#""status":"success""#), answer)
        let refused = try fastCGIRequest(socket, uri: "/api/setup/email_smtp", user: "")
        XCTAssertTrue(refused.contains("Status: 401"), refused)
    }

    /// SIGTERM while a request is being answered (a test email waiting on a silent
    /// SMTP server): the answer still arrives whole, then the responder exits 0.
    func testSIGTERMFinishesTheRequestInFlight() throws {
        let silent = try HostileSmtpServer(mode: "silent")
        defer { silent.stop() }
        let saved = try env.admin.post("/api/setup/email_smtp", json: """
            {"data":{"from_address":"app@example.com","smtp_host":"127.0.0.1","smtp_port":"\(silent.port)",
            "smtp_connection_type":"None","smtp_authentication_type":"None","smtp_connect_timeout":"2","smtp_command_timeout":"2"}}
            """)
        XCTAssertEqual(saved.status, 200, saved.text)
        let port = smtpUnusedLoopbackPort()
        let responder = try ManagedProcess(executable: env.binary, arguments: ["serve", "--listen", "127.0.0.1:\(port)", "--threads", "2", "--config", config])
        defer { responder.stop() }
        for _ in 0..<50 {
            if (try? fastCGIRequest("127.0.0.1:\(port)", uri: "/api/setup/health"))?.contains("Status: 200") == true { break }
            usleep(100_000)
        }
        let answer = OutputBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            let result = try? ScriptRunner.runWithStatus("/usr/bin/cgi-fcgi", ["-bind", "-connect", "127.0.0.1:\(port)"], environment: [
                "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/setup/email_test/ops%40example.com", "REMOTE_USER": "admin",
                "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": "0", "GATEWAY_INTERFACE": "CGI/1.1",
            ], timeout: 20)
            answer.set(result?.output ?? "")
            done.signal()
        }.start()
        usleep(700_000) // the request is now waiting for the silent server's greeting
        kill(responder.pid, SIGTERM)
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
        XCTAssertTrue(answer.value.contains("Status: 504"), "the in-flight test email was answered: \(answer.value)")
        XCTAssertTrue(answer.value.contains(#""stage":"greeting""#), answer.value)
        let exit = try responder.waitForExit(timeout: 5)
        XCTAssertEqual(exit.status, 0, exit.stderr)
    }
    /// systemd socket activation, the way deploy/systemd/emailsetup.socket starts it:
    /// systemd-socket-activate listens, and on the first connection execs the
    /// responder with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID = its pid).
    /// A GET through cgi-fcgi answers; SIGTERM ends it cleanly (status 0).
    func testSystemdSocketActivation() throws {
        let directory = try TemporaryDirectory(prefix: "es-sd")
        let socket = directory.path + "/emailsetup.sock"
        // The activator passes on only LISTEN_* and -E variables: the config goes by flag.
        let process = try ManagedProcess(executable: "/usr/bin/systemd-socket-activate",
                                         arguments: ["-l", socket, env.binary, "serve", "--threads", "2", "--config", config])
        defer { process.stop() }
        for _ in 0..<100 where access(socket, F_OK) != 0 { usleep(50_000) }
        var answer = ""
        for _ in 0..<50 {
            answer = (try? fastCGIRequest(socket, uri: "/api/setup/email_smtp")) ?? ""
            if answer.contains("Status: 200") { break }
            usleep(100_000)
        }
        XCTAssertTrue(answer.contains("Status: 200"), answer)
        XCTAssertTrue(answer.contains(#""status":"success""#), answer)
        XCTAssertTrue(process.stderrText.contains("inherited fd 3"), "not served on systemd's fd 3:\n\(process.stderrText)")
        // The activator exec'd the responder: SIGTERM to that pid is SIGTERM to the responder.
        let stopped = Date()
        kill(process.pid, SIGTERM)
        let exit = try process.waitForExit(timeout: 5)
        XCTAssertEqual(exit.status, 0, exit.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(stopped), 2)
        XCTAssertTrue(exit.stderr.contains("\"stopped\""), exit.stderr)
    }

    /// deploy/systemd's units pass `systemd-analyze verify` with no warning (the
    /// binary path is pointed at the one under test; nothing is installed).
    func testSystemdUnitFilesVerify() throws {
        let directory = try TemporaryDirectory(prefix: "es-units")
        let source = env.root + "/deploy/systemd/"
        for name in ["emailsetup.socket", "emailsetup.service"] {
            let text = try String(contentsOfFile: source + name, encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/emailsetup", with: env.binary)
            try text.write(toFile: directory.path + "/" + name, atomically: true, encoding: .utf8)
        }
        let result = try ScriptRunner.runWithStatus("/usr/bin/systemd-analyze",
                                                    ["verify", directory.path + "/emailsetup.socket", directory.path + "/emailsetup.service"],
                                                    timeout: 30)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "systemd-analyze verify warned:\n\(result.output)")
    }
}

/// A string written by one thread and read by another.
final class OutputBox: Sendable {
    private let text = Mutex("")
    func set(_ value: String) { text.withLock { $0 = value } }
    var value: String { text.withLock { $0 } }
}
