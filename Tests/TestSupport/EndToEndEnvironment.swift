import Foundation
import ProcessIO
import XCTest

/// Where the servers of an end-to-end run are, read from the variables that the
/// README's test command (`scripts/test`) exports. A run without them fails
/// loudly, naming what is missing: integration tests never pass silently.
public struct EndToEndEnvironment: Sendable {
    /// The checkout (for scripts).
    public var root: String
    /// nginx on 127.0.0.1 in front of the responder.
    public var port: Int
    public var adminUser: String
    public var adminPassword: String
    /// The state folder of MariaDB, responder and nginx of this run.
    public var stateDirectory: String
    /// The emailsetup binary under test.
    public var binary: String

    public static let variables = ["EMAILSETUP_TEST_ROOT", "EMAILSETUP_TEST_PORT", "EMAILSETUP_TEST_ADMIN_PASSWORD",
                                   "EMAILSETUP_TEST_STATE_DIR", "EMAILSETUP_TEST_BINARY"]

    /// The environment, or an XCTFail naming the missing variables and a thrown error.
    public static func require(file: StaticString = #filePath, line: UInt = #line) throws -> EndToEndEnvironment {
        let env = ProcessInfo.processInfo.environment
        let missing = variables.filter { (env[$0] ?? "").isEmpty }
        guard missing.isEmpty, let port = Int(env["EMAILSETUP_TEST_PORT"]!) else {
            let message = "end-to-end test NOT RUN: \(missing.joined(separator: ", ")) unset — run the suite with scripts/test, which starts MariaDB, the responder and nginx"
            XCTFail(message, file: file, line: line)
            throw XCTSkip(message)
        }
        return EndToEndEnvironment(root: env["EMAILSETUP_TEST_ROOT"]!, port: port, adminUser: env["EMAILSETUP_TEST_ADMIN_USER"] ?? "admin",
                                   adminPassword: env["EMAILSETUP_TEST_ADMIN_PASSWORD"]!, stateDirectory: env["EMAILSETUP_TEST_STATE_DIR"]!,
                                   binary: env["EMAILSETUP_TEST_BINARY"]!)
    }

    /// A client that logs in as the administrator.
    public var admin: HTTPTestClient { HTTPTestClient(port: port, user: adminUser, password: adminPassword) }
    /// A client that sends no credentials.
    public var anonymous: HTTPTestClient { HTTPTestClient(port: port) }

    /// Runs one of the project's scripts (e.g. `scripts/lib/mariadb.sh stop STATE`).
    @discardableResult
    public func script(_ path: String, _ arguments: [String]) throws -> String {
        try ScriptRunner.run(root + "/" + path, arguments, environment: ["ROOT": root])
    }
}

/// Runs a program to completion and returns its output; throws when it fails.
public enum ScriptRunner {
    public struct Failed: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: [UInt8]? = nil, timeout: Double = 60) throws -> String {
        let result = try runWithStatus(executable, arguments, environment: environment, input: input, timeout: timeout)
        guard result.status == 0 else {
            throw Failed(description: "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.output.suffix(2000))")
        }
        return result.output
    }

    /// Writes `input` to a program's stdin and stops quietly when the program has closed
    /// it. A program may exit without reading (cgi-fcgi does when nothing listens yet),
    /// and the write's SIGPIPE would kill the whole test process: it is blocked on this
    /// thread for the write and, if raised, taken off the pending set before unblocking.
    private static func feed(_ input: [UInt8], to fd: Int32) {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer {
            var pending = sigset_t()
            if sigpending(&pending) == 0, sigismember(&pending, SIGPIPE) == 1 {
                var now = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipeSignal, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        input.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return  // EPIPE: the program is gone; its status and output tell the rest
                }
            }
        }
    }

    /// Runs a program and returns its exit status and combined stdout+stderr; kills it
    /// after `timeout`. The input is written whole before output is read, so a program
    /// that echoes its input must get less than a pipe holds (64 KiB).
    ///
    /// Uses `ChildProcess` (posix_spawn and waitpid): Foundation's Process leaks pipe
    /// descriptors to grandchildren and, here, sometimes never noticed a child's
    /// exit, which hung the suite. Output is read until the program has exited
    /// (plus half a second), so a daemon left holding the pipe cannot hang a test.
    public static func runWithStatus(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                                     input: [UInt8]? = nil, timeout: Double = 60) throws -> (status: Int32, output: String) {
        var outPipe: [Int32] = [0, 0], inPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&inPipe) == 0 else { throw Failed(description: "pipe: \(errno)") }
        // Close-on-exec: only the dup2'ed copies (0, 1, 2) reach the program.
        for fd in outPipe + inPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(executable, arguments, environment: env, stdin: .descriptor(inPipe[0]),
                                           stdout: .descriptor(outPipe[1]), stderr: .descriptor(outPipe[1]))
        } catch {
            close(outPipe[0]); close(inPipe[1]); close(outPipe[1]); close(inPipe[0])
            throw Failed(description: "posix_spawn \(executable): \(error)")
        }
        let pid = child.pid
        close(outPipe[1]); close(inPipe[0])
        if let input, !input.isEmpty { feed(input, to: inPipe[1]) }
        close(inPipe[1])

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var exitedAt: Date?
        var eof = false
        while true {
            if exitedAt == nil {
                let w = waitpid(pid, &status, WNOHANG)
                if w == pid { exitedAt = Date() }
            }
            if let exitedAt, eof || Date().timeIntervalSince(exitedAt) > 0.5 { break }
            if exitedAt == nil, Date() > deadline {
                kill(pid, SIGTERM)
                usleep(200_000)
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                exitedAt = Date()
                continue
            }
            if eof { usleep(10_000); continue }
            var pfd = pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 20) > 0 {
                let n = buffer.withUnsafeMutableBytes { read(outPipe[0], $0.baseAddress!, $0.count) }
                if n > 0 { output.append(contentsOf: buffer[0..<n]) } else if n == 0 { eof = true }
            }
        }
        close(outPipe[0])
        // WIFEXITED / WEXITSTATUS, spelled out: the macros are not imported.
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitStatus, String(decoding: output, as: UTF8.self))
    }
}
