import Foundation
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

    /// Runs a program and returns its exit status and combined stdout+stderr; kills it
    /// after `timeout`. Output is collected until the program exits (plus a moment for
    /// the pipe to drain), so a daemon it leaves behind holding the pipe (spawn-fcgi's
    /// child) cannot hang the test.
    public static func runWithStatus(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                                     input: [UInt8]? = nil, timeout: Double = 60) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = Pipe()
        process.standardInput = stdin
        let collected = OutputBuffer()
        let reader = pipe.fileHandleForReading
        let drained = DispatchSemaphore(value: 0)
        let readerThread = Thread {
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                collected.append(chunk)
            }
            drained.signal()
        }
        try process.run()
        readerThread.start()
        if let input { stdin.fileHandleForWriting.write(Data(input)) }
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            usleep(200_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        _ = drained.wait(timeout: .now() + 1)
        return (process.terminationStatus, collected.text)
    }
}

/// Bytes appended by one thread and read by another.
final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.lock(); data.append(chunk); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
