import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Logging
import ProcessIO

/// Tells other programs that the SMTP settings changed (the team's issue 8), the way
/// the original system did: by writing `SYSTEM_UPDATED*RESET*` to a unix socket, or
/// by running a command.
///
/// `notify(version:)` is fire-and-forget for the caller: it never throws, and it
/// returns within `timeout` (default 1 s) however the targets behave. All targets run
/// at once, each against the same deadline. A target that is missing, refuses, or
/// hangs is logged with its path and given up on.
///
/// Sockets are non-blocking: connect, then poll for writability until the deadline.
/// A full listen backlog or datagram queue is retried until the deadline.
///
/// Commands run with posix_spawn, without a shell (the path must be absolute), with a
/// minimal environment — `PATH`, `EMAILSETUP_SETTINGS_VERSION` and nothing of the
/// responder's own environment, which may hold credentials. Their stdin, stdout and
/// stderr are /dev/null (the responder's stdout is the CGI/FastCGI response), and no
/// other descriptor is inherited. A command still running at the deadline is sent
/// SIGTERM (SIGKILL 5 s later, then reaped) and logged as timed out.
///
/// ```swift
/// let notifier = SettingsChangeNotifier(
///     targets: [.unixDatagram(path: "/run/legacy/notify.sock"),
///               .command(path: "/usr/local/bin/emailsetup-changed", arguments: [])],
///     logger: logger)
/// notifier.notify(version: newVersion)   // after the commit
/// ```
struct SettingsChangeNotifier: Sendable {
    /// Where one notification goes.
    enum Target: Sendable, Hashable, CustomStringConvertible {
        /// Connect to a unix stream socket and write `message`.
        case unixStream(path: String, message: [UInt8] = SettingsChangeNotifier.defaultMessage)
        /// Send `message` as one datagram to a unix datagram socket.
        case unixDatagram(path: String, message: [UInt8] = SettingsChangeNotifier.defaultMessage)
        /// Run the executable at `path` (absolute; no shell) with `arguments`.
        case command(path: String, arguments: [String] = [])

        /// The path, for logs.
        var path: String {
            switch self {
            case .unixStream(let path, _), .unixDatagram(let path, _), .command(let path, _): return path
            }
        }

        /// "unix-stream:/run/x.sock", "unix-datagram:…", "command:…".
        var description: String {
            switch self {
            case .unixStream(let path, _): return "unix-stream:\(path)"
            case .unixDatagram(let path, _): return "unix-datagram:\(path)"
            case .command(let path, _): return "command:\(path)"
            }
        }

        /// Parses one target of the configuration file: `unix-stream:PATH`,
        /// `unix-datagram:PATH` or `command:/ABSOLUTE/PATH [ARG …]` (arguments split at
        /// spaces; no quoting, no shell). Nil when it is none of these.
        init?(configuration text: String, message: [UInt8] = SettingsChangeNotifier.defaultMessage) {
            if text.hasPrefix("unix-stream:"), text.count > "unix-stream:".count {
                self = .unixStream(path: String(text.dropFirst("unix-stream:".count)), message: message)
            } else if text.hasPrefix("unix-datagram:"), text.count > "unix-datagram:".count {
                self = .unixDatagram(path: String(text.dropFirst("unix-datagram:".count)), message: message)
            } else if text.hasPrefix("command:") {
                let words = text.dropFirst("command:".count).split(separator: " ").map(String.init)
                guard let path = words.first, path.hasPrefix("/") else { return nil }
                self = .command(path: path, arguments: Array(words.dropFirst()))
            } else {
                return nil
            }
        }
    }

    /// What happened to one target.
    enum Outcome: Sendable, Equatable {
        /// The bytes were handed to the socket, or the command exited with status 0.
        case delivered
        /// The target refused or failed; the reason names the system call and errno text.
        case failed(String)
        /// The deadline passed first.
        case timedOut
    }

    /// The bytes the original system's listeners expect.
    static let defaultMessage: [UInt8] = Array("SYSTEM_UPDATED*RESET*".utf8)
    /// The only environment variable a command gets besides PATH.
    static let versionVariable = "EMAILSETUP_SETTINGS_VERSION"
    /// PATH for commands, which get none of the responder's environment.
    static let commandPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The targets, notified all at once.
    var targets: [Target]
    /// How long `notify` may take in all, in seconds.
    var timeout: Double
    /// Where failures (warning) and deliveries (debug) are logged.
    var logger: Logger

    /// - Parameters:
    ///   - targets: where to send notifications; none is fine.
    ///   - timeout: seconds `notify` may take in all; 1 by default.
    ///   - logger: for failures, with the target's path in the metadata.
    init(targets: [Target], timeout: Double = 1, logger: Logger) {
        self.targets = targets
        self.timeout = timeout
        self.logger = logger
    }

    /// Notifies every target that the settings are now at `version`. Never throws,
    /// never takes (much) longer than `timeout`.
    ///
    /// ```swift
    /// notifier.notify(version: 42)
    /// ```
    /// - Parameter version: the new `smtp_settings_version`.
    /// - Returns: one outcome per target, in order; callers usually ignore it.
    @discardableResult
    func notify(version: Int) -> [Outcome] {
        guard !targets.isEmpty else { return [] }
        let deadline = MonotonicDeadline.after(seconds: timeout)
        let results = OutcomeBox(count: targets.count)
        let group = DispatchGroup()
        for (index, target) in targets.enumerated() {
            group.enter()
            DispatchQueue.global().async {
                let outcome = Self.run(target, version: version, deadline: deadline)
                results.set(index, outcome)
                group.leave()
            }
        }
        // Each target honours the deadline itself; this is a safety net with a small grace.
        _ = group.wait(timeout: .now() + .milliseconds(Int(timeout * 1000) + 200))
        let outcomes = results.values
        for (target, outcome) in zip(targets, outcomes) {
            var metadata: Logger.Metadata = ["target": "\(target)", "path": "\(target.path)", "settings_version": "\(version)"]
            switch outcome {
            case .delivered:
                logger.debug("settings change notification delivered", metadata: metadata)
            case .failed(let reason):
                metadata["error"] = "\(reason)"
                logger.warning("settings change notification failed", metadata: metadata)
            case .timedOut:
                metadata["timeout_seconds"] = "\(timeout)"
                logger.warning("settings change notification timed out", metadata: metadata)
            }
        }
        return outcomes
    }

    private static func run(_ target: Target, version: Int, deadline: MonotonicDeadline) -> Outcome {
        switch target {
        case .unixStream(let path, let message):
            return Outcome(UnixSocket.send(message, to: path, datagram: false, deadline: deadline))
        case .unixDatagram(let path, let message):
            return Outcome(UnixSocket.send(message, to: path, datagram: true, deadline: deadline))
        case .command(let path, let arguments):
            return runCommand(path, arguments, version: version, deadline: deadline)
        }
    }

    /// Runs the command with stdin, stdout and stderr on /dev/null and no other
    /// descriptor inherited (`ChildProcess`); SIGTERM at the deadline, SIGKILL 5 s later.
    private static func runCommand(_ path: String, _ arguments: [String], version: Int, deadline: MonotonicDeadline) -> Outcome {
        guard path.hasPrefix("/") else { return .failed("the command path must be absolute") }
        do {
            let child = try ChildProcess.spawn(path, arguments, environment: ["PATH=\(commandPath)", "\(versionVariable)=\(version)"])
            guard let exit = try child.wait(until: deadline) else {
                child.terminateAndReapLater()
                return .timedOut
            }
            switch exit {
            case .exited(0): return .delivered
            case .exited(let code): return .failed("exited with status \(code)")
            case .signalled(let signal): return .failed("killed by signal \(signal)")
            }
        } catch {
            return .failed("\(error)")
        }
    }
}

extension SettingsChangeNotifier.Outcome {
    /// The outcome of a socket target.
    init(_ result: UnixSocket.SendResult) {
        switch result {
        case .sent: self = .delivered
        case .failed(let reason): self = .failed(reason)
        case .timedOut: self = .timedOut
        }
    }
}

/// The outcomes of targets running on other threads.
private final class OutcomeBox: Sendable {
    private let storage: Mutex<[SettingsChangeNotifier.Outcome]>

    init(count: Int) { storage = Mutex(Array(repeating: .timedOut, count: count)) }

    func set(_ index: Int, _ outcome: SettingsChangeNotifier.Outcome) {
        storage.withLock { $0[index] = outcome }
    }

    var values: [SettingsChangeNotifier.Outcome] { storage.withLock { $0 } }
}
