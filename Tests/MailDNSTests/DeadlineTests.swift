import Foundation
import XCTest
import MailDNS
import TestSupport

/// Time: a silent server costs exactly the deadline, and queries run at once.
final class DeadlineTests: XCTestCase {
    func testSilentServerTimesOutWithinTheDeadline() throws {
        let silent = try LoopbackUDPServer(.silent)
        defer { silent.stop() }
        let resolver = try DNSResolver(servers: [silent.address], timeout: 0.5, attempts: 2)
        let start = Date()
        XCTAssertThrowsError(try resolver.query("example.test", .mx)) { error in
            let error = error as! DNSError
            XCTAssertEqual(error.kind, .timeout)
            XCTAssertEqual(error.name, "example.test")
            XCTAssertTrue(error.hint.hasPrefix("no DNS server answered at \(silent.address) within 1 s:"), error.hint)
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(elapsed, 0.45)
        XCTAssertLessThan(elapsed, 1.8, "the deadline is timeout × attempts")
        XCTAssertGreaterThanOrEqual(silent.received, 2, "each attempt sent a question")
    }

    func testNothingListeningIsReportedAsUnreachable() throws {
        let resolver = try DNSResolver(servers: ["127.0.0.1:\(smtpUnusedLoopbackPort())"], timeout: 0.5, attempts: 1)
        let start = Date()
        XCTAssertThrowsError(try resolver.query("example.test", .a)) { error in
            XCTAssertEqual((error as! DNSError).kind, .timeout, "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.5)
    }

    func testIPv6ServerAddressReachesCAres() throws {
        // c-ares reads "[::1]:PORT"; nothing listens there, so DNS is unreachable
        // (not "the servers could not be set", which would be `.other`).
        let resolver = try DNSResolver(servers: ["[::1]:\(smtpUnusedLoopbackPort())"], timeout: 0.3, attempts: 1)
        XCTAssertThrowsError(try resolver.query("example.test", .a)) { error in
            XCTAssertEqual((error as! DNSError).kind, .timeout, "\(error)")
            XCTAssertTrue((error as! DNSError).hint.contains("[::1]:"), "\(error)")
        }
    }

    func testQueryAllAsksEverythingAtOnce() throws {
        let slow = try LoopbackUDPServer(.nxdomainAfter(0.4))
        defer { slow.stop() }
        let resolver = try DNSResolver(servers: [slow.address], timeout: 2, attempts: 1)
        let questions = (0..<8).map { DNSQuestion(name: "host\($0).example.test", type: .a) }
        let start = Date()
        let results = resolver.queryAll(questions)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(results.count, 8)
        for (index, result) in results.enumerated() {
            guard case .failure(let error) = result else { return XCTFail("\(result)") }
            XCTAssertEqual(error.kind, .nxdomain)
            XCTAssertEqual(error.name, "host\(index).example.test", "results in the order of the questions")
        }
        XCTAssertEqual(slow.received, 8)
        // One at a time would take 8 × 0.4 s.
        XCTAssertLessThan(elapsed, 1.2, "8 questions took \(elapsed) s")
    }
}
