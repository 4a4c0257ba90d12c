import Dispatch
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
        init?(configuration text: String) {
            if text.hasPrefix("unix-stream:"), text.count > "unix-stream:".count {
                self = .unixStream(path: String(text.dropFirst("unix-stream:".count)))
            } else if text.hasPrefix("unix-datagram:"), text.count > "unix-datagram:".count {
                self = .unixDatagram(path: String(text.dropFirst("unix-datagram:".count)))
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
        let deadline = NotifierDeadline(seconds: timeout)
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

    private static func run(_ target: Target, version: Int, deadline: NotifierDeadline) -> Outcome {
        switch target {
        case .unixStream(let path, let message):
            return UnixSocket.send(message, to: path, datagram: false, deadline: deadline)
        case .unixDatagram(let path, let message):
            return UnixSocket.send(message, to: path, datagram: true, deadline: deadline)
        case .command(let path, let arguments):
            return runCommand(path, arguments, version: version, deadline: deadline)
        }
    }

    private static func runCommand(_ path: String, _ arguments: [String], version: Int, deadline: NotifierDeadline) -> Outcome {
        guard path.hasPrefix("/") else { return .failed("the command path must be absolute") }
        return Spawn.run(path, arguments, environment: ["PATH=\(commandPath)", "\(versionVariable)=\(version)"], deadline: deadline)
    }
}

/// A point in time on the monotonic clock.
private struct NotifierDeadline: Sendable {
    private let end: DispatchTime

    init(seconds: Double) {
        end = .now() + .milliseconds(Int(max(0, seconds) * 1000))
    }

    /// Milliseconds left, 0 when passed.
    var remainingMilliseconds: Int {
        let now = DispatchTime.now().uptimeNanoseconds
        return end.uptimeNanoseconds > now ? Int((end.uptimeNanoseconds - now) / 1_000_000) : 0
    }

    var hasPassed: Bool { DispatchTime.now() >= end }
}

/// The outcomes of targets running on other threads.
private final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [SettingsChangeNotifier.Outcome]

    init(count: Int) { storage = Array(repeating: .timedOut, count: count) }

    func set(_ index: Int, _ outcome: SettingsChangeNotifier.Outcome) {
        lock.lock(); defer { lock.unlock() }
        storage[index] = outcome
    }

    var values: [SettingsChangeNotifier.Outcome] {
        lock.lock(); defer { lock.unlock() }
        return storage
    }
}

/// Runs a command with posix_spawn rather than Foundation's `Process`, for control
/// over what the child inherits: Process leaves descriptors without FD_CLOEXEC open in
/// the child (the FastCGI socket, a database connection); here every descriptor above
/// 2 is closed, 0–2 are /dev/null, signals are reset to their defaults and unblocked.
private enum Spawn {
    static func run(_ path: String, _ arguments: [String], environment: [String], deadline: NotifierDeadline) -> SettingsChangeNotifier.Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard spawned == 0 else { return .failed("could not start: \(String(cString: strerror(spawned)))") }

        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return .failed("waitpid: \(String(cString: strerror(errno)))") }
            if deadline.hasPassed {
                kill(pid, SIGTERM)
                reapLater(pid)
                return .timedOut
            }
            _ = poll(nil, 0, Int32(min(10, max(1, deadline.remainingMilliseconds))))
        }
        let signal = status & 0x7F
        if signal != 0 { return .failed("killed by signal \(signal)") }
        let code = (status >> 8) & 0xFF
        return code == 0 ? .delivered : .failed("exited with status \(code)")
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc
    /// module does not declare (it needs _GNU_SOURCE), found with dlsym.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Adds actions closing every descriptor above 2 in the child.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let addCloseFrom, addCloseFrom(&actions, 3) == 0 { return }
        // Older C libraries: close what is open now (racy against other threads opening
        // descriptors meanwhile, which is why closefrom is preferred).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap(Int32.init) where fd > 2 && fcntl(fd, F_GETFD) >= 0 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    /// Collects a child sent SIGTERM, so it leaves no zombie; SIGKILL after 5 s.
    private static func reapLater(_ pid: pid_t) {
        DispatchQueue.global().async {
            var status: Int32 = 0
            for _ in 0..<500 {
                if waitpid(pid, &status, WNOHANG) != 0 { return }
                usleep(10_000)
            }
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
    }
}

/// The socket system calls of the notifier, all in this one file.
private enum UnixSocket {
    /// Connects (non-blocking) to the unix socket at `path` and writes `message`,
    /// retrying a full backlog or queue and partial writes until `deadline`.
    static func send(_ message: [UInt8], to path: String, datagram: Bool, deadline: NotifierDeadline) -> SettingsChangeNotifier.Outcome {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let pathBytes = Array(path.utf8)
        guard !pathBytes.isEmpty, pathBytes.count < capacity, !pathBytes.contains(0) else {
            return .failed("the socket path is empty, has a NUL, or is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }

        let type = datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let socketType = type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_UNIX, socketType, 0)
        guard fd >= 0 else { return .failed(errorText("socket")) }
        defer { close(fd) }

        // Connect: a unix socket answers at once, except that a full backlog (stream)
        // gives EAGAIN, retried until the deadline.
        while true {
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if result == 0 { break }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                if deadline.hasPassed { return .timedOut }
                _ = poll(nil, 0, Int32(min(20, max(1, deadline.remainingMilliseconds))))
                continue
            }
            if error == EINPROGRESS {
                guard waitWritable(fd, deadline) else { return .timedOut }
                var socketError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
                if socketError != 0 { return .failed("connect: \(String(cString: strerror(socketError)))") }
                break
            }
            return .failed(errorText("connect", error))
        }

        // Write: a datagram goes whole or not at all; a stream may take it in parts.
        // A full datagram queue or socket buffer gives EAGAIN: wait for POLLOUT.
        var sent = 0
        repeat {
            let count = message.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress.map { $0 + sent }, message.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count >= 0 {
                sent = datagram ? message.count : sent + count
                continue
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                guard waitWritable(fd, deadline) else { return .timedOut }
                continue
            }
            return .failed(errorText("send", error))
        } while sent < message.count
        return .delivered
    }

    /// Polls until `fd` is writable; false when the deadline passes first.
    private static func waitWritable(_ fd: Int32, _ deadline: NotifierDeadline) -> Bool {
        while true {
            let remaining = deadline.remainingMilliseconds
            if remaining <= 0 { return false }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, Int(Int32.max))))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }

    private static func errorText(_ call: String, _ error: Int32 = errno) -> String {
        "\(call): \(String(cString: strerror(error))) (errno \(error))"
    }
}
