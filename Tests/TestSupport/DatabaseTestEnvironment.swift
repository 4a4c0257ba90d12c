import Foundation
import ProcessIO
#if canImport(Glibc)
import Glibc
#endif

/// Where the test MariaDB is, read from the environment that the project's test
/// command sets (it runs `scripts/lib/mariadb.sh start STATE_DIR` and exports
/// `scripts/lib/mariadb.sh env STATE_DIR`):
///
/// | variable | meaning |
/// |---|---|
/// | `EMAILSETUP_TEST_DB_SOCKET` | unix socket of the test server |
/// | `EMAILSETUP_TEST_DB_USER` | account (has ALL on the test database only) |
/// | `EMAILSETUP_TEST_DB_PASSWORD_FILE` | file holding the account's password |
/// | `EMAILSETUP_TEST_DB_NAME` | database; tests drop and recreate its tables |
/// | `EMAILSETUP_TEST_DB_STATE_DIR` | the STATE_DIR given to `mariadb.sh`; only the outage test needs it, to stop and start the server |
///
/// There is no silent skip: a missing variable is an error that names it, and the
/// tests turn it into a failure.
///
/// ```swift
/// let env = try DatabaseTestEnvironment.fromEnvironment()
/// ```
public struct DatabaseTestEnvironment: Sendable {
    public var socketPath: String
    public var user: String
    public var password: String
    public var databaseName: String
    /// `EMAILSETUP_TEST_DB_STATE_DIR`, when set.
    public var stateDirectory: String?

    /// What is missing or unreadable, worded for a test failure.
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// The command that prepares a shell for these tests.
    public static let howToSetUp = """
        scripts/lib/mariadb.sh start var/test && eval "$(scripts/lib/mariadb.sh test-env var/test)" \
        && swift test --filter StorageTests
        """

    /// Reads the variables; throws `Missing` naming every one that is unset.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DatabaseTestEnvironment {
        let required = ["EMAILSETUP_TEST_DB_SOCKET", "EMAILSETUP_TEST_DB_USER", "EMAILSETUP_TEST_DB_PASSWORD_FILE", "EMAILSETUP_TEST_DB_NAME"]
        let missing = required.filter { (environment[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw Missing(description: "the database tests did NOT run: \(missing.joined(separator: ", ")) not set. Run: \(howToSetUp)")
        }
        let passwordFile = environment["EMAILSETUP_TEST_DB_PASSWORD_FILE"]!
        let password: String
        do {
            password = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw Missing(description: "EMAILSETUP_TEST_DB_PASSWORD_FILE=\(passwordFile) cannot be read: \(error)")
        }
        let state = environment["EMAILSETUP_TEST_DB_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        return DatabaseTestEnvironment(socketPath: environment["EMAILSETUP_TEST_DB_SOCKET"]!, user: environment["EMAILSETUP_TEST_DB_USER"]!,
                                       password: password, databaseName: environment["EMAILSETUP_TEST_DB_NAME"]!,
                                       stateDirectory: state)
    }

    /// The package root (two levels above this file).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The state directory for stopping/starting the server; throws `Missing` when
    /// `EMAILSETUP_TEST_DB_STATE_DIR` is unset.
    public func requireStateDirectory() throws -> String {
        guard let stateDirectory else {
            throw Missing(description: "EMAILSETUP_TEST_DB_STATE_DIR is not set: the outage test needs the STATE_DIR given to scripts/lib/mariadb.sh (e.g. var/test) to stop and restart the server")
        }
        return stateDirectory
    }

    /// Runs `scripts/lib/mariadb.sh stop STATE_DIR`.
    public func stopServer() throws { try Self.runScript("stop", try requireStateDirectory()) }

    /// Runs `scripts/lib/mariadb.sh start STATE_DIR` (idempotent).
    public func startServer() throws { try Self.runScript("start", try requireStateDirectory()) }

    /// Freezes the server process (SIGSTOP): it keeps its socket but answers nothing,
    /// like a hung or unreachable server. Pair with ``resumeServer()``.
    public func suspendServer() throws { try signalServer(SIGSTOP) }

    /// Lets a suspended server run again (SIGCONT).
    public func resumeServer() throws { try signalServer(SIGCONT) }

    private func signalServer(_ signal: Int32) throws {
        let state = try requireStateDirectory()
        let statePath = state.hasPrefix("/") ? state : Self.packageRoot.appendingPathComponent(state).path
        let pidText = try String(contentsOfFile: statePath + "/mariadb.pid", encoding: .utf8)
        guard let pid = pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
            throw ScriptFailed(description: "\(statePath)/mariadb.pid holds no process id")
        }
        guard kill(pid, signal) == 0 else {
            throw ScriptFailed(description: "kill(\(pid), \(signal)): \(String(cString: strerror(errno)))")
        }
    }

    /// Failure of `mariadb.sh`, with its output.
    public struct ScriptFailed: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs the script with `posix_spawn` and `waitpid`, output to a temporary file.
    /// Not Foundation's `Process`: on Linux it decides that the child has exited when
    /// every holder of an inherited socket has closed it, and `mariadbd`, daemonised
    /// by `mariadb.sh start`, holds it for ever — `waitUntilExit()` never returns.
    private static func runScript(_ command: String, _ stateDirectory: String) throws {
        let script = packageRoot.appendingPathComponent("scripts/lib/mariadb.sh").path
        let logPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("emailsetup-mariadb-\(command)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log").path
        defer { unlink(logPath) }

        // A relative STATE_DIR is relative to the package root, whatever the cwd of the test.
        let state = stateDirectory.hasPrefix("/") ? stateDirectory : packageRoot.appendingPathComponent(stateDirectory).path
        let exit: ChildProcess.Exit
        do {
            exit = try ChildProcess.spawn(script, [command, state], environment: nil, stdout: .file(logPath), stderr: .standardOutput).wait()
        } catch {
            throw ScriptFailed(description: "cannot run \(script): \(error)")
        }
        guard exit == .exited(0) else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw ScriptFailed(description: "mariadb.sh \(command) \(stateDirectory) failed (\(exit)): \(output)")
        }
    }
}
