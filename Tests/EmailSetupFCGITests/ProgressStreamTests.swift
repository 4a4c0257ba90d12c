import Foundation
import Smtp
import XCTest

@testable import EmailSetupFCGI

/// The framing of a streamed test email or check: one JSON object per line, the
/// steps in the page's words with their limits, the plain answer last.
final class ProgressStreamTests: XCTestCase {
    func parse(_ bytes: [UInt8]) throws -> [String: Any] {
        XCTAssertEqual(bytes.last, UInt8(ascii: "\n"))
        XCTAssertEqual(bytes.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line per frame")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func testOnlyAClientThatAsksGetsTheStream() {
        XCTAssertTrue(ProgressStream.isWanted(by: Request(method: "POST", path: "/", headers: ["accept": "application/x-ndjson, application/json;q=0.5"])))
        XCTAssertFalse(ProgressStream.isWanted(by: Request(method: "POST", path: "/", headers: ["accept": "application/json"])))
        XCTAssertFalse(ProgressStream.isWanted(by: Request(method: "POST", path: "/")))
    }

    func testTheHeadTellsNginxNotToBuffer() {
        let head = String(decoding: ProgressStream.head(), as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("Status: 200 OK\r\n"), head)
        XCTAssertTrue(head.contains("Content-Type: application/x-ndjson"), head)
        XCTAssertTrue(head.contains("X-Accel-Buffering: no\r\n"), head)
        XCTAssertFalse(head.contains("Content-Length"), head)
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"))
    }

    func testAStepLineNamesTheStepAndItsLimit() throws {
        let connect = WorkProgress(SmtpProgressStep(stage: .connect, detail: "smtp.example.com:587", limitSeconds: 10))
        let line = try parse(ProgressStream.line(connect, elapsedMilliseconds: 3))
        XCTAssertEqual(line["step"] as? String, "connect")
        XCTAssertEqual(line["label"] as? String, "connecting to smtp.example.com:587")
        XCTAssertEqual(line["limit_seconds"] as? Double, 10)
        XCTAssertEqual(line["elapsed_ms"] as? Int, 3)
        let greeting = try parse(ProgressStream.line(WorkProgress(SmtpProgressStep(stage: .greeting, detail: "greeting", limitSeconds: 29.96)),
                                                     elapsedMilliseconds: 40))
        XCTAssertEqual(greeting["label"] as? String, "waiting for the greeting")
        XCTAssertEqual(greeting["limit_seconds"] as? Double, 30)
    }

    func testTheLastLineCarriesThePlainAnswerAndItsStatus() throws {
        let plain = Response.json(504, .object([("status", "error"), ("errors", .object([("smtp", .string("no greeting within 3 s"))]))]))
        let last = try parse(ProgressStream.finalLine(plain))
        XCTAssertEqual(last["http_status"] as? Int, 504)
        let response = try XCTUnwrap(last["response"] as? [String: Any])
        XCTAssertEqual(response["status"] as? String, "error")
        XCTAssertEqual((response["errors"] as? [String: String])?["smtp"], "no greeting within 3 s")
        XCTAssertNil(last["step"], "the page tells the last line from a step by its members")
    }

    func testTheSessionReportsEachStageOnceInOrder() {
        let seen = Seen()
        let progress = SmtpProgress { seen.append($0.stage) }
        for stage in [SmtpError.Stage.connect, .greeting, .ehlo, .ehlo, .auth, .auth, .auth, .quit] {
            progress.enter(stage, detail: "x", limitSeconds: 1)
        }
        XCTAssertEqual(seen.stages, [.connect, .greeting, .ehlo, .auth, .quit])
    }
}

private final class Seen: @unchecked Sendable {
    // @unchecked: the test calls it from one thread.
    var stages: [SmtpError.Stage] = []
    func append(_ stage: SmtpError.Stage) { stages.append(stage) }
}
