// The process system calls the responder and the tests share: posix_spawn with
// control over what the child inherits, and waiting for it with a deadline.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A child started with posix_spawn rather than Foundation's `Process`, for control
/// over what it inherits: `Process` leaves descriptors without FD_CLOEXEC open in the
/// child (the FastCGI socket, a database connection) and, on Linux, may decide a child
/// has exited only when every holder of an inherited pipe closed it. Here signals are
/// reset to their defaults and unblocked, and every descriptor above 2 is closed.
///
/// ```swift
/// let child = try ChildProcess.spawn("/usr/local/bin/hook", ["--quiet"], environment: ["PATH=/usr/bin"])
/// switch child.wait(until: .after(seconds: 1)) { … }
/// ```
public struct ChildProcess: Sendable {
    /// Where one of the child's standard descriptors (0, 1, 2) comes from.
    public enum Stream: Sendable {
        /// /dev/null.
        case null
        /// A file opened for writing (created, truncated, mode 0600).
        case file(String)
        /// A copy of this process's descriptor (dup2).
        case descriptor(Int32)
        /// For stderr: the same as the child's stdout.
        case standardOutput
    }

    /// How a child ended.
    public enum Exit: Sendable, Equatable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it.
        case signalled(Int32)

        /// The shell's convention: the status, or 128 + the signal.
        public var shellStatus: Int32 {
            switch self {
            case .exited(let status): return status
            case .signalled(let signal): return 128 + signal
            }
        }
    }

    /// What failed: the call and the errno text.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The child's process id.
    public let pid: pid_t

    /// Starts `path` (absolute; no shell, no PATH search).
    /// - Parameters:
    ///   - arguments: after argv[0], which is `path`.
    ///   - environment: `NAME=value` entries; nil inherits this process's environment.
    ///   - stdin, stdout, stderr: where the standard descriptors come from.
    /// - Throws: `Failure` naming the error when posix_spawn refuses.
    public static func spawn(_ path: String, _ arguments: [String], environment: [String]?,
                             stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let file): posix_spawn_file_actions_addopen(&actions, target, file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            case .standardOutput: posix_spawn_file_actions_adddup2(&actions, 1, target)
            }
        }
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
        let envp = environment.map { $0.map { strdup($0) } + [nil] }
        defer { (argv + (envp ?? [])).forEach { free($0) } }

        var pid: pid_t = 0
        let spawned = envp.map { posix_spawn(&pid, path, &actions, &attributes, argv, $0) }
            ?? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw Failure(description: "could not start: \(String(cString: strerror(spawned)))") }
        return ChildProcess(pid: pid)
    }

    /// How it ended, if it has (reaping it), without waiting.
    /// - Throws: `Failure` when waitpid fails.
    public func exitIfEnded() throws -> Exit? {
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return Self.exit(status) }
            if reaped == 0 { return nil }
            if errno != EINTR { throw Failure(description: "waitpid: \(String(cString: strerror(errno)))") }
        }
    }

    /// Waits, polling every few milliseconds, until it ends or `deadline` passes
    /// (then nil: the child still runs).
    public func wait(until deadline: MonotonicDeadline) throws -> Exit? {
        while true {
            if let exit = try exitIfEnded() { return exit }
            if deadline.hasPassed { return nil }
            _ = poll(nil, 0, Int32(min(10, max(1, deadline.remainingMilliseconds))))
        }
    }

    /// Waits for it to end, however long that takes.
    public func wait() throws -> Exit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw Failure(description: "waitpid: \(String(cString: strerror(errno)))") }
        }
        return Self.exit(status)
    }

    /// Sends `signal` (SIGTERM by default).
    public func kill(_ signal: Int32 = SIGTERM) {
        _ = Glibc.kill(pid, signal)
    }

    /// SIGTERM now, then collects it on another thread so it leaves no zombie;
    /// SIGKILL if it is still there after `grace` seconds.
    public func terminateAndReapLater(grace: Double = 5) {
        kill(SIGTERM)
        let pid = self.pid
        DispatchQueue.global().async {
            var status: Int32 = 0
            let rounds = max(1, Int(grace * 100))
            for _ in 0..<rounds {
                if waitpid(pid, &status, WNOHANG) != 0 { return }
                usleep(10_000)
            }
            _ = Glibc.kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
    }

    /// WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out: the macros are not imported.
    private static func exit(_ status: Int32) -> Exit {
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
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
}

/// A point in time on the monotonic clock, for loops that must end by themselves.
public struct MonotonicDeadline: Sendable {
    private let end: DispatchTime

    /// `seconds` from now (negative counts as 0).
    public static func after(seconds: Double) -> MonotonicDeadline {
        MonotonicDeadline(end: .now() + .milliseconds(Int(max(0, seconds) * 1000)))
    }

    /// Milliseconds left, 0 when passed.
    public var remainingMilliseconds: Int {
        let now = DispatchTime.now().uptimeNanoseconds
        return end.uptimeNanoseconds > now ? Int((end.uptimeNanoseconds - now) / 1_000_000) : 0
    }

    /// True once the deadline is reached.
    public var hasPassed: Bool { DispatchTime.now() >= end }
}
