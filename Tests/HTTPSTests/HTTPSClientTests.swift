import Foundation
import Synchronization
import HTTPS
import TestSupport
import XCTest

/// HTTPSClient (POST and GET) against a real local HTTPS server (Tests/Fixtures/https) with the test CA:
/// verification, refused and unresolvable hosts, deadlines, size limit, redirects, abort.
final class HTTPSClientTests: XCTestCase {
    private static let shared = Result { try CannedHTTPSServer() }
    private var server: CannedHTTPSServer { get throws { try Self.shared.get() } }

    private func failure(_ body: () throws -> Any) -> HTTPSError? {
        do {
            _ = try body()
            XCTFail("expected an HTTPSError")
            return nil
        } catch {
            guard let error = error as? HTTPSError else { XCTFail("not an HTTPSError: \(error)"); return nil }
            return error
        }
    }

    func testPostsAFormWithJSONAcceptAndVerifiesAgainstTheCAFile() throws {
        let server = try server
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10)
        let url = server.answerURL(status: 200, body: #"{"ok":true}"#)
        let response = try client.postForm(url, fields: [("grant_type", "client_credentials"), ("client_secret", "a+b&c=d")])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), #"{"ok":true}"#)
        XCTAssertEqual(response.contentType, "application/json")
        let request = try XCTUnwrap(server.requests().last { $0.path.hasPrefix("/answer") && $0.body.contains("client_credentials") })
        XCTAssertEqual(request.method, "POST")
        XCTAssertEqual(request.headers["accept"], "application/json")
        XCTAssertEqual(request.headers["content-type"], "application/x-www-form-urlencoded")
        XCTAssertEqual(request.form["client_secret"], "a+b&c=d")
    }

    func testErrorStatusesAreAnswersNotThrows() throws {
        let server = try server
        let response = try HTTPSClient(caFile: server.caFile).postForm(server.answerURL(status: 400, body: #"{"error":"invalid_grant"}"#), fields: [])
        XCTAssertEqual(response.status, 400)
    }

    func testWrongCAFailsVerification() throws {
        let server = try server
        let other = try SmtpTestCertificates.shared().certificate("other-ca")
        let error = failure { try HTTPSClient(caFile: other, connectTimeout: 5, deadline: 10).postForm(server.answerURL(status: 200, body: "{}"), fields: []) }
        XCTAssertEqual(error?.kind, .tlsVerify)
        XCTAssertTrue(error?.hint.contains("private CA") ?? false, error?.hint ?? "")
        // Without any CA file the test CA is unknown too (system CAs only).
        XCTAssertEqual(failure { try HTTPSClient(connectTimeout: 5, deadline: 10).postForm(server.answerURL(status: 200, body: "{}"), fields: []) }?.kind, .tlsVerify)
    }

    func testHostNameIsVerified() throws {
        // Issued by the trusted test CA, but for mail.example.org, not 127.0.0.1.
        let server = try CannedHTTPSServer(certificate: "wronghost")
        let url = server.answerURL(status: 200, body: "{}")
        let error = failure { try HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10).postForm(url, fields: []) }
        XCTAssertEqual(error?.kind, .tlsVerify, error?.description ?? "")
    }

    func testConnectionRefused() throws {
        let port = try freeLoopbackPort()
        let error = failure { try HTTPSClient(connectTimeout: 5, deadline: 10).postForm("https://127.0.0.1:\(port)/token", fields: []) }
        XCTAssertEqual(error?.kind, .refused)
        XCTAssertTrue(error?.hint.contains("127.0.0.1:\(port)") ?? false, error?.hint ?? "")
    }

    func testUnresolvableHostIsUnreachable() {
        let error = failure { try HTTPSClient(connectTimeout: 5, deadline: 10).postForm("https://no-such-host.invalid/token", fields: []) }
        XCTAssertEqual(error?.kind, .unreachable, error?.description ?? "")
    }

    func testServerThatNeverAnswersTimesOutAtTheDeadline() throws {
        let server = try server
        let start = Date()
        let error = failure { try HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 1.5).postForm(server.baseURL + "/slow", fields: []) }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertGreaterThanOrEqual(elapsed, 1.4)
        XCTAssertLessThan(elapsed, 3.0)
    }

    func testOversizedBodiesAreProtocolErrors() throws {
        let server = try server
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10)
        // With a Content-Length (refused up front) and without one (cut off while reading).
        for path in ["/big?bytes=70000", "/big-unsized?bytes=200000"] {
            let error = failure { try client.postForm(server.baseURL + path, fields: []) }
            XCTAssertEqual(error?.kind, .tooLarge, path)
            XCTAssertTrue(error?.hint.contains("larger than 64 KiB") ?? false, "\(path): \(error?.hint ?? "")")
        }
        // Just under the limit passes.
        XCTAssertEqual(try client.postForm(server.baseURL + "/big?bytes=65000", fields: []).body.count, 65000)
    }

    func testRedirectsAreNotFollowed() throws {
        let server = try server
        let error = failure { try HTTPSClient(caFile: server.caFile).postForm(server.baseURL + "/redirect", fields: []) }
        XCTAssertEqual(error?.kind, .redirect)
        XCTAssertEqual(error?.httpStatus, 302)
        XCTAssertEqual(error?.location, "https://example.org/token")
        XCTAssertTrue(error?.hint.contains("https://example.org/token") ?? false, error?.hint ?? "")
    }

    func testPlainHTTPIsRefusedBeforeConnecting() {
        XCTAssertEqual(failure { try HTTPSClient().postForm("http://127.0.0.1:1/token", fields: []) }?.kind, .invalidInput)
    }

    func testMissingCAFileIsInvalidInput() {
        XCTAssertEqual(failure { try HTTPSClient(caFile: "/nonexistent/ca.pem").postForm("https://127.0.0.1:1/token", fields: []) }?.kind, .invalidInput)
    }

    func testAbortCheckEndsAWaitingTransferWithinASecond() throws {
        let server = try server
        let start = Date()
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 30,
                                 shouldAbort: { Date().timeIntervalSince(start) > 0.3 })
        let error = failure { try client.postForm(server.baseURL + "/slow", fields: []) }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(error?.kind, .aborted)
        XCTAssertLessThan(elapsed, 1.3, "abort took \(elapsed) s")
    }

    func testGetSendsAcceptAndReadsTheBody() throws {
        let server = try server
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10)
        let url = server.answerURL(status: 200, body: "<clientConfig/>", contentType: "text/xml") + "&probe=get"
        let response = try client.get(url, maxBytes: 1024, accept: "application/xml, text/xml")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "<clientConfig/>")
        let request = try XCTUnwrap(server.requests().last { $0.path.contains("probe=get") })
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.headers["accept"], "application/xml, text/xml")
        XCTAssertEqual(request.body, "")
    }

    func testGetEnforcesItsOwnLimitWhileReading() throws {
        let server = try server
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10)
        for path in ["/big?bytes=5000", "/big-unsized?bytes=200000"] {
            let error = failure { try client.get(server.baseURL + path, maxBytes: 4096, accept: "*/*") }
            XCTAssertEqual(error?.kind, .tooLarge, path)
            XCTAssertTrue(error?.hint.contains("larger than 4 KiB") ?? false, "\(path): \(error?.hint ?? "")")
        }
        XCTAssertEqual(try client.get(server.baseURL + "/big?bytes=4000", maxBytes: 4096, accept: "*/*").body.count, 4000)
    }

    func testGetDoesNotFollowRedirects() throws {
        let server = try server
        let error = failure { try HTTPSClient(caFile: server.caFile).get(server.baseURL + "/redirect", accept: "*/*") }
        XCTAssertEqual(error?.kind, .redirect)
        XCTAssertEqual(error?.location, "https://example.org/token")
    }

    func testAddressesOverrideTheSystemResolverAndTheNameIsStillVerified() throws {
        let server = try server
        // "localhost.invalid" resolves nowhere; the override sends it to 127.0.0.1, where the
        // certificate (localhost, 127.0.0.1, ::1) does not name it: verification fails,
        // proving the name, not the address, is what is checked.
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10,
                                 addresses: ["localhost.invalid": ["127.0.0.1"], "localhost": ["127.0.0.1"]])
        let wrong = failure { try client.get("https://localhost.invalid:\(server.port)/answer?status=200&body=x", accept: "*/*") }
        XCTAssertEqual(wrong?.kind, .tlsVerify, wrong?.description ?? "")
        let right = try client.get("https://localhost:\(server.port)/answer?status=200&body=ok", accept: "*/*")
        XCTAssertEqual(String(decoding: right.body, as: UTF8.self), "ok")
        XCTAssertEqual(failure { try HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10)
            .get("https://localhost.invalid:\(server.port)/", accept: "*/*") }?.kind, .unreachable)
    }

    func testConcurrentRequestsFromManyThreads() throws {
        let server = try server
        let client = HTTPSClient(caFile: server.caFile, connectTimeout: 5, deadline: 10)
        let url = server.answerURL(status: 200, body: #"{"n":1}"#)
        let failures = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            if (try? client.postForm(url, fields: []))?.status != 200 { failures.mutate { $0 += 1 } }
        }
        XCTAssertEqual(failures.value, 0)
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw NSError(domain: "bind", code: Int(errno)) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A value behind a lock, for counting across threads in tests.
final class Locked<Value: Sendable>: Sendable {
    private let stored: Mutex<Value>
    init(_ value: Value) { stored = Mutex(value) }
    var value: Value { stored.withLock { $0 } }
    func mutate(_ change: (inout Value) -> Void) { stored.withLock { change(&$0) } }
}
