import Foundation
import Smtp
import TestSupport
import XCTest

/// A session whose caller goes away (its `SessionAbort` descriptor hangs up) stops
/// at once, whatever its timeouts, and says it was abandoned; data on the descriptor
/// alone does not stop it.
final class SessionAbortTests: XCTestCase {
    /// A connected pair: the session watches `watched`; closing `other` is the caller leaving.
    private func socketPair() -> (watched: Int32, other: Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    private func runAgainstSilentServer(closeAfter: Double?, writeFirst: Bool = false) throws -> (SmtpError, Double) {
        let server = try HostileSmtpServer(mode: "silent")
        defer { server.stop() }
        let pair = socketPair()
        defer { close(pair.watched) }
        let settings = try loopbackSettings(port: server.port, security: .none, host: "127.0.0.1") {
            $0.commandTimeout = 3
            $0.sessionTimeout = 20
            $0.abort = SessionAbort(descriptor: pair.watched)
        }
        if writeFirst { _ = write(pair.other, "x", 1) }
        let other = pair.other
        if let closeAfter {
            DispatchQueue.global().asyncAfter(deadline: .now() + closeAfter) { close(other) }
        }
        let started = Date()
        do {
            _ = try SmtpClient.check(settings)
            XCTFail("a silent server cannot pass a check")
            throw EndOfTest()
        } catch let error as SmtpError {
            if closeAfter == nil { close(other) }
            return (error, Date().timeIntervalSince(started))
        }
    }

    func testAHangUpEndsTheWaitForTheGreetingAtOnce() throws {
        let (error, elapsed) = try runAgainstSilentServer(closeAfter: 0.5)
        XCTAssertTrue(error.wasAbandoned, "\(error)")
        XCTAssertEqual(error.stage, .greeting)
        XCTAssertTrue(error.hint.contains("went away"), error.hint)
        XCTAssertLessThan(elapsed, 1.5, "waited \(elapsed) s after the caller left at 0.5 s (command timeout 3 s)")
    }

    func testDataFromTheCallerIsNotAHangUp() throws {
        let (error, elapsed) = try runAgainstSilentServer(closeAfter: nil, writeFirst: true)
        XCTAssertFalse(error.wasAbandoned, "\(error)")
        XCTAssertEqual(error.kind, .timeout)
        XCTAssertGreaterThan(elapsed, 2.5, "unread data on the descriptor must not end the session")
    }

    private struct EndOfTest: Error {}
}
