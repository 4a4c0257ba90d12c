import Foundation
import Synchronization

/// A second responder and nginx of the run, for tests that need a configuration or
/// users of their own (an allow-list, `smtp_denied_networks`): same MariaDB, same
/// key directory and the same scripts as `scripts/test` (`scripts/lib/services.sh`),
/// in a state folder of its own under the run's. Stopped by `stop()` or on deinit.
///
/// ```swift
/// let stack = try PrivateWebStack(env, config: "admins = Kate", users: [("Kate", "pw")])
/// let r = try stack.client(user: "Kate", password: "pw").request("GET", "/api/setup/email_smtp")
/// ```
public final class PrivateWebStack: Sendable {
    public let port: Int
    public let stateDirectory: String
    private let env: EndToEndEnvironment
    private let running = Mutex(true)

    /// Starts the responder (the run's configuration with `config` lines appended; a
    /// later line wins) and nginx with basic-auth `users`, and waits until they answer.
    public init(_ env: EndToEndEnvironment, config: String, users: [(user: String, password: String)]) throws {
        self.env = env
        stateDirectory = env.stateDirectory + "/private-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let base = try String(contentsOfFile: env.stateDirectory + "/emailsetup.conf", encoding: .utf8)
        try (base + "\n# PrivateWebStack\n" + config + "\n").write(toFile: stateDirectory + "/emailsetup.conf", atomically: true, encoding: .utf8)
        port = Self.freePort()
        // Users and passwords go as arguments, never through a shell's word splitting.
        let script = """
            set -e
            source "$ROOT/scripts/lib/services.sh"
            state=$1 binary=$2 port=$3; shift 3
            (umask 027; : > "$state/htpasswd")
            while (( $# )); do
                printf '%s:%s\\n' "$1" "$(openssl passwd -apr1 -stdin <<<"$2")" >> "$state/htpasswd"
                shift 2
            done
            chgrp www-data "$state/htpasswd"
            responder_start "$state" "$binary"
            nginx_start "$state" "$port"
            """
        let arguments = ["-c", script, "private-stack", stateDirectory, env.binary, String(port)] + users.flatMap { [$0.user, $0.password] }
        try ScriptRunner.run("/bin/bash", arguments, environment: ["ROOT": env.root], timeout: 60)
    }

    deinit { stop() }

    /// A client of this stack's nginx.
    public func client(user: String, password: String) -> HTTPTestClient {
        HTTPTestClient(port: port, user: user, password: password)
    }

    /// Stops nginx and the responder.
    public func stop() {
        guard running.withLock({ running in defer { running = false }; return running }) else { return }
        let script = """
            source "$ROOT/scripts/lib/services.sh"
            nginx_stop "$1"; responder_stop "$1"
            """
        _ = try? ScriptRunner.run("/bin/bash", ["-c", script, "private-stack", stateDirectory], environment: ["ROOT": env.root], timeout: 30)
    }

    private static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
