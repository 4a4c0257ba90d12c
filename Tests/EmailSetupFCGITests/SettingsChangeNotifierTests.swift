import Foundation
import Logging
import ProcessIO
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import EmailSetupFCGI

final class SettingsChangeNotifierTests: XCTestCase {
    private var directory: URL!
    private var recorder: RecordingLogHandler.Store!
    private var logger: Logger!

    override func setUp() {
        super.setUp()
        // Short: sun_path holds 107 bytes.
        directory = URL(fileURLWithPath: "/tmp/notify-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        recorder = RecordingLogHandler.Store()
        let store = recorder!
        logger = Logger(label: "test.notifier") { _ in RecordingLogHandler(store: store) }
        logger.logLevel = .debug
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
        super.tearDown()
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func timed(_ body: () -> [SettingsChangeNotifier.Outcome]) -> ([SettingsChangeNotifier.Outcome], Double) {
        let start = Date()
        let outcomes = body()
        return (outcomes, Date().timeIntervalSince(start))
    }

    // MARK: Delivery

    func testStreamSocketReceivesTheExactBytes() throws {
        let server = try TestSocket.listen(path("stream.sock"), datagram: false, backlog: 8)
        defer { close(server) }
        let notifier = SettingsChangeNotifier(targets: [.unixStream(path: path("stream.sock"))], logger: logger)
        XCTAssertEqual(notifier.notify(version: 7), [.delivered])
        let client = accept(server, nil, nil)
        XCTAssertGreaterThanOrEqual(client, 0)
        defer { close(client) }
        XCTAssertEqual(TestSocket.readAll(client), Array("SYSTEM_UPDATED*RESET*".utf8))
        XCTAssertTrue(recorder.entries.contains { $0.level == .debug && $0.metadata["path"] == path("stream.sock") })
    }

    func testDatagramSocketReceivesTheExactBytesOrAConfiguredMessage() throws {
        let server = try TestSocket.listen(path("dgram.sock"), datagram: true)
        defer { close(server) }
        let notifier = SettingsChangeNotifier(targets: [
            .unixDatagram(path: path("dgram.sock")),
            .unixDatagram(path: path("dgram.sock"), message: Array("custom\0bytes".utf8)),
        ], logger: logger)
        XCTAssertEqual(notifier.notify(version: 1), [.delivered, .delivered])
        let received = [TestSocket.receive(server), TestSocket.receive(server)]
        XCTAssertEqual(Set(received), [Array("SYSTEM_UPDATED*RESET*".utf8), Array("custom\0bytes".utf8)])
    }

    func testCommandGetsTheVersionAndNothingElseOfOurEnvironment() throws {
        setenv("EMAILSETUP_TEST_SECRET", "hunter2", 1)
        defer { unsetenv("EMAILSETUP_TEST_SECRET") }
        let output = path("env.txt")
        let notifier = SettingsChangeNotifier(targets: [
            .command(path: "/bin/sh", arguments: ["-c", "env > \(output); echo fds: $(ls /proc/$$/fd) >> \(output)"]),
        ], logger: logger)
        XCTAssertEqual(notifier.notify(version: 42), [.delivered])
        let text = try String(contentsOfFile: output, encoding: .utf8)
        XCTAssertTrue(text.contains("EMAILSETUP_SETTINGS_VERSION=42\n"), text)
        XCTAssertFalse(text.contains("hunter2"), "the responder's environment must not reach the command")
        XCTAssertTrue(text.contains("PATH=/usr/local/sbin:"), text)
        // The shell's own descriptors: 0–2, plus the one it opened for the redirection.
        XCTAssertTrue(text.contains("fds: 0 1 2 3\n"), "no descriptor of ours leaks into the command: \(text)")
    }

    func testFailingCommandIsLoggedNotThrown() {
        let notifier = SettingsChangeNotifier(targets: [
            .command(path: "/bin/false"),
            .command(path: path("no-such-program")),
            .command(path: "relative/program"),
        ], logger: logger)
        let outcomes = notifier.notify(version: 3)
        XCTAssertEqual(outcomes[0], .failed("exited with status 1"))
        guard case .failed = outcomes[1] else { return XCTFail("\(outcomes[1])") }
        XCTAssertEqual(outcomes[2], .failed("the command path must be absolute"))
        XCTAssertEqual(recorder.entries.filter { $0.level == .warning }.count, 3)
        XCTAssertTrue(recorder.entries.contains { $0.metadata["path"] == path("no-such-program") })
    }

    // MARK: Absent, refusing and hung targets

    func testAbsentAndRefusingSocketsFailFastAndAreLogged() throws {
        // A socket file with nobody listening: bound, then closed.
        let stale = try TestSocket.listen(path("stale.sock"), datagram: false, backlog: 1)
        close(stale)
        let notifier = SettingsChangeNotifier(targets: [
            .unixStream(path: path("absent.sock")),
            .unixDatagram(path: path("absent-dgram.sock")),
            .unixStream(path: path("stale.sock")),
            .unixStream(path: "/" + String(repeating: "x", count: 200)),
        ], logger: logger)
        let (outcomes, elapsed) = timed { notifier.notify(version: 5) }
        XCTAssertLessThan(elapsed, 0.5)
        for outcome in outcomes {
            guard case .failed = outcome else { return XCTFail("\(outcomes)") }
        }
        if case .failed(let reason) = outcomes[0] { XCTAssertTrue(reason.contains("No such file"), reason) }
        if case .failed(let reason) = outcomes[2] { XCTAssertTrue(reason.contains("refused"), reason) }
        let warned = recorder.entries.filter { $0.level == .warning }
        XCTAssertEqual(warned.count, 4)
        XCTAssertEqual(warned.first?.metadata["path"], path("absent.sock"))
        XCTAssertNotNil(warned.first?.metadata["error"])
    }

    func testHungTargetsReturnWithinTheTimeout() throws {
        // A stream socket whose backlog is full: it never accepts, and one client already waits.
        let full = try TestSocket.listen(path("full.sock"), datagram: false, backlog: 0)
        defer { close(full) }
        var fillers: [Int32] = []
        defer { fillers.forEach { close($0) } }
        while let filler = TestSocket.connectNonBlocking(path("full.sock"), datagram: false) { fillers.append(filler) }
        XCTAssertFalse(fillers.isEmpty)

        // A datagram socket whose queue is full: nobody reads it.
        let queue = try TestSocket.listen(path("queue.sock"), datagram: true)
        defer { close(queue) }
        let sender = TestSocket.connectNonBlocking(path("queue.sock"), datagram: true)!
        defer { close(sender) }
        var queued = 0
        while Glibc.send(sender, "x", 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) == 1 { queued += 1 }
        XCTAssertGreaterThan(queued, 0)

        let notifier = SettingsChangeNotifier(targets: [
            .unixStream(path: path("full.sock")),
            .unixDatagram(path: path("queue.sock")),
            .command(path: "/bin/sleep", arguments: ["5"]),
        ], timeout: 0.5, logger: logger)
        let (outcomes, elapsed) = timed { notifier.notify(version: 9) }
        XCTAssertEqual(outcomes, [.timedOut, .timedOut, .timedOut])
        XCTAssertGreaterThanOrEqual(elapsed, 0.45)
        XCTAssertLessThan(elapsed, 0.5 + 0.4, "all targets share one deadline")
        XCTAssertEqual(recorder.entries.filter { $0.message == "settings change notification timed out" }.count, 3)
    }

    func testDefaultTimeoutIsOneSecond() {
        let notifier = SettingsChangeNotifier(targets: [.command(path: "/bin/sleep", arguments: ["10"])], logger: logger)
        XCTAssertEqual(notifier.timeout, 1)
        let (outcomes, elapsed) = timed { notifier.notify(version: 1) }
        XCTAssertEqual(outcomes, [.timedOut])
        XCTAssertLessThan(elapsed, 1.4)
    }

    func testNoTargetsIsANoOp() {
        XCTAssertEqual(SettingsChangeNotifier(targets: [], logger: logger).notify(version: 1), [])
        XCTAssertTrue(recorder.entries.isEmpty)
    }

    func testConfigurationSyntax() {
        XCTAssertEqual(SettingsChangeNotifier.Target(configuration: "unix-stream:/run/a.sock"), .unixStream(path: "/run/a.sock"))
        XCTAssertEqual(SettingsChangeNotifier.Target(configuration: "unix-datagram:/run/b.sock"), .unixDatagram(path: "/run/b.sock"))
        XCTAssertEqual(SettingsChangeNotifier.Target(configuration: "command:/usr/bin/hook --quiet x"),
                       .command(path: "/usr/bin/hook", arguments: ["--quiet", "x"]))
        XCTAssertNil(SettingsChangeNotifier.Target(configuration: "command:hook"))
        XCTAssertNil(SettingsChangeNotifier.Target(configuration: "unix-stream:"))
        XCTAssertNil(SettingsChangeNotifier.Target(configuration: "/run/a.sock"))
    }
}

/// The tests' side of the conversation: listening and connecting come from ProcessIO
/// (the notifier's own socket code), reading is here.
private enum TestSocket {
    static func listen(_ path: String, datagram: Bool, backlog: Int32 = 1) throws -> Int32 {
        try UnixSocket.listen(path, datagram: datagram, backlog: backlog)
    }

    /// A connected non-blocking client, or nil when the connect would block (backlog full).
    static func connectNonBlocking(_ path: String, datagram: Bool) -> Int32? {
        UnixSocket.connectNonBlocking(path, datagram: datagram)
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return out }
            out += buffer[..<count]
        }
    }

    static func receive(_ fd: Int32) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[..<count]) : []
    }
}
