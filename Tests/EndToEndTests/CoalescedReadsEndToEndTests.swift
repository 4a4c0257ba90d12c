import Foundation
import TestSupport
import XCTest
import Synchronization

/// Read-your-writes across responder processes, with the per-process read
/// coalescing in place: a save answered by one responder is seen by every GET
/// sent afterwards to another, also when those GETs arrive together and share
/// reads inside that responder. Responder A is scripts/test's (behind nginx),
/// responder B a second process with 4 workers on the same database.
final class CoalescedReadsEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    let path = "/api/setup/email_smtp"

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    /// What a GET or POST answered: the status, the version in its ETag, the host saved.
    struct Answer: Equatable, CustomStringConvertible {
        var status: Int
        var version: Int?
        var host: String?
        var description: String { "\(status) v\(version.map(String.init) ?? "?") \(host ?? "?")" }

        init(status: Int, etag: String?, body: String) {
            self.status = status
            version = etag.flatMap { Int($0.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))) }
            let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            host = (json?["data"] as? [String: Any])?["smtp_host"] as? String
        }
    }

    /// One request to responder B over FastCGI (libfcgi's cgi-fcgi), as nginx would send it.
    func askB(_ port: Int, _ method: String, body: String = "") throws -> Answer {
        try Self.askB(env, path, port, method, body: body)
    }

    /// `askB` without the test case, for closures that run on other threads.
    static func askB(_ env: EndToEndEnvironment, _ path: String, _ port: Int, _ method: String, body: String = "") throws -> Answer {
        var variables = ["REQUEST_METHOD": method, "REQUEST_URI": path, "REMOTE_USER": env.adminUser,
                         "GATEWAY_INTERFACE": "CGI/1.1"]
        if method == "POST" {
            variables["HTTP_X_REQUESTED_WITH"] = "EmailSetup"
            variables["CONTENT_TYPE"] = "application/json"
            variables["CONTENT_LENGTH"] = String(body.utf8.count)
        }
        let output = try ScriptRunner.run("/usr/bin/cgi-fcgi", ["-bind", "-connect", "127.0.0.1:\(port)"],
                                          environment: variables, input: Array(body.utf8), timeout: 10)
        let parts = output.components(separatedBy: "\r\n\r\n")
        var status = 200, etag: String?
        for line in parts[0].components(separatedBy: "\r\n") {
            let lower = line.lowercased()
            if lower.hasPrefix("status:") { status = Int(line.dropFirst(7).trimmingCharacters(in: .whitespaces).prefix(3)) ?? -1 }
            if lower.hasPrefix("etag:") { etag = String(line.dropFirst(5)) }
        }
        return Answer(status: status, etag: etag, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// One request to responder A through nginx.
    func askA(_ method: String, body: String = "") throws -> Answer {
        try Self.askA(env, path, method, body: body)
    }

    /// `askA` without the test case, for closures that run on other threads.
    static func askA(_ env: EndToEndEnvironment, _ path: String, _ method: String, body: String = "") throws -> Answer {
        let r = method == "POST" ? try env.admin.post(path, json: body) : try env.admin.request(method, path)
        return Answer(status: r.status, etag: r.headers["etag"], body: r.text)
    }

    /// `count` GETs sent at once (threads), each answer collected.
    func concurrently(_ count: Int, _ get: @escaping @Sendable () throws -> Answer) -> [String] {
        let answers = AnswerList()
        let group = DispatchGroup()
        for _ in 0..<count {
            group.enter()
            Thread {
                defer { group.leave() }
                do { answers.append("\(try get())") } catch { answers.append("failed: \(error)") }
            }.start()
        }
        if group.wait(timeout: .now() + 30) == .timedOut { answers.append("timed out") }
        return answers.values
    }

    func testASaveThroughOneResponderIsSeenByTheNextGetsThroughAnother() throws {
        let port = smtpUnusedLoopbackPort()
        let responderB = try ManagedProcess(executable: env.binary, arguments: [
            "serve", "--listen", "127.0.0.1:\(port)", "--threads", "4", "--config", env.stateDirectory + "/emailsetup.conf",
        ])
        defer { responderB.stop() }
        var ready = false
        for _ in 0..<50 where !ready {
            ready = (try? askB(port, "GET"))?.status == 200
            if !ready { usleep(100_000) }
        }
        XCTAssertTrue(ready, "responder B did not answer: \(responderB.stderrText.suffix(2000))")

        for round in 0..<4 {
            let host = "ryw\(round)-\(getpid()).example.com"
            let body = #"{"data":{"from_address":"app@example.com","smtp_host":"\#(host)"}}"#
            let writeThroughA = round % 2 == 0
            let saved = writeThroughA ? try askA("POST", body: body) : try askB(port, "POST", body: body)
            XCTAssertEqual(saved.status, 200, "round \(round): save failed")
            let version = try XCTUnwrap(saved.version)
            // Right away, several GETs at once through the other responder, so some share a read there.
            let readers = writeThroughA ? 4 : 8
            let answers = writeThroughA
                ? concurrently(readers) { [env = env!, path] in try Self.askB(env, path, port, "GET") }
                : concurrently(readers) { [env = env!, path] in try Self.askA(env, path, "GET") }
            let expected = Answer(status: 200, etag: "\"\(version)\"", body: #"{"data":{"smtp_host":"\#(host)"}}"#)
            XCTAssertEqual(answers, Array(repeating: "\(expected)", count: readers),
                           "round \(round): a GET after the save through the other responder saw an older version")
        }
    }
}

/// Answers collected from several threads.
final class AnswerList: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ answer: String) { list.withLock { $0.append(answer) } }
    var values: [String] { list.withLock { $0 } }
}
