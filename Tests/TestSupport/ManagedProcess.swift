import Foundation
#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// A child process for tests (a fixture server): started with pipes, waited on for a
/// ready line with a bounded loop, and always stopped — by `stop()`, or in `deinit`.
///
/// Its stdin is a pipe kept open for the child's lifetime: fixtures that exit when
/// stdin closes die with the test process even if it crashes.
///
/// ```swift
/// let server = try ManagedProcess(executable: "/usr/bin/python3", arguments: [script, "--mode", "plain"])
/// let port = try server.waitForReadyPort()
/// ```
public final class ManagedProcess: Sendable {
    private let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    /// Where the child's stderr goes (kept for failure messages).
    public let stderrPath: String
    /// Stdout read but not yet returned as a line.
    private let pending = Mutex<[UInt8]>([])
    private let stopped = Mutex(false)

    /// Starts `executable` with `arguments`.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        stderrPath = NSTemporaryDirectory() + "managed-process-\(UUID().uuidString).stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    deinit { stop() }

    /// The child's process id.
    public var pid: Int32 { process.processIdentifier }

    /// Reads stdout until a line starting with `prefix`, within `timeout` seconds.
    /// Throws when the deadline passes or the child exits first (with its stderr).
    public func waitForLine(prefix: String, timeout: Double) throws -> String {
        let fd = stdoutPipe.fileHandleForReading.fileDescriptor
        let end = Date().addingTimeInterval(timeout)
        while true {
            let next: String? = pending.withLock { pending in
                guard let newline = pending.firstIndex(of: 0x0A) else { return nil }
                defer { pending.removeSubrange(...newline) }
                return String(decoding: pending[..<newline], as: UTF8.self)
            }
            if let line = next {
                if line.hasPrefix(prefix) { return line }
                continue
            }
            let remaining = end.timeIntervalSinceNow
            guard remaining > 0 else { throw Failure(message: "no line starting with \"\(prefix)\" within \(timeout) s", stderr: stderrText) }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(min(remaining, 1) * 1000) + 1)
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 {
                throw Failure(message: "process exited before printing \"\(prefix)\"", stderr: stderrText)
            }
            pending.withLock { $0 += chunk.prefix(count) }
        }
    }

    /// Reads the port a fixture announces with a "READY <port>" line (every server in
    /// Tests/Fixtures prints one when it listens); throws like `waitForLine`.
    public func waitForReadyPort(timeout: Double = 20) throws -> Int {
        let line = try waitForLine(prefix: "READY ", timeout: timeout)
        guard let port = Int(line.dropFirst("READY ".count).trimmingCharacters(in: .whitespaces)) else {
            throw Failure(message: "not a port in \"\(line)\"", stderr: stderrText)
        }
        return port
    }

    /// Waits (bounded) for the child to exit and returns its status, stdout (what is
    /// left unread) and stderr. Throws when it is still running after `timeout` (and kills it).
    public func waitForExit(timeout: Double) throws -> (status: Int32, stdout: String, stderr: String) {
        let fd = stdoutPipe.fileHandleForReading.fileDescriptor
        let end = Date().addingTimeInterval(timeout)
        var output = pending.withLock { pending in
            defer { pending = [] }
            return pending
        }
        while true {
            let remaining = end.timeIntervalSinceNow
            guard remaining > 0 else {
                stop()
                throw Failure(message: "process still running after \(timeout) s", stderr: stderrText)
            }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, Int32(min(remaining, 1) * 1000) + 1) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            output += chunk.prefix(count)
        }
        while process.isRunning && Date() < end { usleep(5_000) }
        guard !process.isRunning else {
            stop()
            throw Failure(message: "process still running after \(timeout) s", stderr: stderrText)
        }
        let errors = stderrText
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), errors)
    }

    /// Runs a command to completion (bounded) and returns status, stdout and stderr.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           timeout: Double = 60) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try ManagedProcess(executable: executable, arguments: arguments, environment: environment)
        defer { process.stop() }
        return try process.waitForExit(timeout: timeout)
    }

    /// The child's stderr so far.
    public var stderrText: String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    /// Stops the child: SIGTERM, up to 2 s, then SIGKILL; reaps it. Safe to call twice.
    public func stop() {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let end = Date().addingTimeInterval(2)
            while process.isRunning && Date() < end { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                let killEnd = Date().addingTimeInterval(2)
                while process.isRunning && Date() < killEnd { usleep(20_000) }
            }
        }
        try? stdinPipe.fileHandleForWriting.close()
        try? stdoutPipe.fileHandleForReading.close()
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    /// Why a process did not become ready.
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var stderr: String
        public var description: String { message + (stderr.isEmpty ? "" : "\n--- stderr ---\n" + stderr) }
    }
}

/// A temporary directory removed in `deinit`.
public final class TemporaryDirectory: Sendable {
    /// Its absolute path.
    public let path: String

    /// Creates a fresh directory under the system temporary directory.
    public init(prefix: String = "test") throws {
        path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
