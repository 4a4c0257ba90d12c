import Foundation
import Synchronization

/// A three-node MariaDB Galera cluster (`scripts/lib/galera.sh`) with two responders
/// on different nodes — A on node 1, B on node 2; node 3 serves no responder and is
/// the donor of state transfers — each behind an nginx of its own (to address one
/// responder), and one nginx whose upstream holds both (as a multi-host deployment).
///
/// Everything lives in `galera-e2e/` under the run's state folder: `cluster` (the
/// nodes), `a`, `b` (responder + direct nginx), `lb` (the upstream nginx). Made once
/// per test class (start-up takes seconds); ``stop()`` (or deinit) stops every process,
/// and `scripts/test` stops whatever a crashed test run left there.
///
/// ```swift
/// let galera = try GaleraCluster(env)
/// defer { galera.stop() }
/// let r = try galera.client(.a).request("GET", "/api/setup/email_smtp")
/// try galera.kill(node: 2); try galera.rejoin(node: 2)
/// ```
public final class GaleraCluster: Sendable {
    /// One of the two responders, or the upstream that balances over both.
    public enum Entry: String, Sendable, CaseIterable {
        case a, b, lb
    }

    /// The folder of everything here.
    public let root: String
    /// The nginx port of each entry.
    public let ports: [Entry: Int]
    /// The node each responder uses.
    public static let nodeOf: [Entry: Int] = [.a: 1, .b: 2]
    private let env: EndToEndEnvironment
    private let running = Mutex(true)

    /// Starts the cluster, both responders (the run's configuration, the database
    /// lines pointing at their node over TCP) and the three nginx; waits until every
    /// one answers. On any failure everything already started is stopped again.
    public init(_ env: EndToEndEnvironment, extraConfig: String = "") throws {
        self.env = env
        root = env.stateDirectory + "/galera-e2e"
        var ports: [Entry: Int] = [:]
        for entry in Entry.allCases { ports[entry] = Self.freePort() }
        self.ports = ports
        do {
            try Self.stopAll(root: root, env: env)
            try? FileManager.default.removeItem(atPath: root)
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try run("scripts/lib/galera.sh", ["start", cluster], timeout: 240)
            let base = try String(contentsOfFile: env.stateDirectory + "/emailsetup.conf", encoding: .utf8)
            for entry in [Entry.a, .b] {
                let node = Self.nodeOf[entry]!
                let variables = try exports(node: node)
                let folder = root + "/" + entry.rawValue
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try (base + """

                    # GaleraCluster: responder \(entry.rawValue) on node \(node)
                    db_socket =
                    db_host = 127.0.0.1
                    db_port = \(variables["EMAILSETUP_DB_PORT"] ?? "")
                    db_password_file = \(variables["EMAILSETUP_DB_PASSWORD_FILE"] ?? "")
                    db_name = emailsetup
                    \(extraConfig)

                    """).write(toFile: folder + "/emailsetup.conf", atomically: true, encoding: .utf8)
            }
            // The run's htpasswd (same administrator); nginx a and b as services.sh starts
            // them; lb rendered from the same template with both sockets in its upstream.
            let script = """
                set -e
                source "$ROOT/scripts/lib/services.sh"
                root=$1 binary=$2 run=$3
                for e in a b; do
                    cp "$run/htpasswd" "$root/$e/htpasswd"; chgrp www-data "$root/$e/htpasswd"
                    responder_start "$root/$e" "$binary"
                done
                nginx_start "$root/a" "$4"
                nginx_start "$root/b" "$5"
                mkdir -p "$root/lb/nginx-tmp"
                cp "$run/htpasswd" "$root/lb/htpasswd"; chgrp www-data "$root/lb/htpasswd"
                a_sock=$(responder_socket "$root/a"); b_sock=$(responder_socket "$root/b")
                user=$(awk '$1 == "user" { sub(";", "", $2); print $2 }' "$root/a/nginx.conf")
                sed -e "s#@STATE@#$root/lb#g" -e "s#@ROOT@#$ROOT#g" -e "s#@PORT@#$6#g" -e "s#@USER@#$user#g" -e "s#@SOCKET@#$a_sock; server unix:$b_sock#" "$ROOT/nginx/local.conf.template" > "$root/lb/nginx.conf"
                nginx -q -t -p "$root/lb" -e "$root/lb/nginx-error.log" -c "$root/lb/nginx.conf"
                nginx -p "$root/lb" -e "$root/lb/nginx-error.log" -c "$root/lb/nginx.conf"
                """
            try ScriptRunner.run("/bin/bash", ["-c", script, "galera-stack", root, env.binary, env.stateDirectory,
                                               String(ports[.a]!), String(ports[.b]!), String(ports[.lb]!)],
                                 environment: ["ROOT": env.root], timeout: 120)
        } catch {
            try? Self.stopAll(root: root, env: env)
            running.withLock { $0 = false }
            throw error
        }
    }

    deinit { stop() }

    /// The cluster's own state folder (`galera.sh … STATE`).
    public var cluster: String { root + "/cluster" }

    /// A client of one entry's nginx, as `user`.
    public func client(_ entry: Entry, user: String, password: String) -> HTTPTestClient {
        HTTPTestClient(port: ports[entry]!, user: user, password: password)
    }

    /// The run's environment with `port` pointing at one entry's nginx, so the shared
    /// end-to-end steps (`saveSettings`, `sendTestEmail`, `admin`) go through it.
    public func environment(_ entry: Entry) -> EndToEndEnvironment {
        var copy = env
        copy.port = ports[entry]!
        return copy
    }

    /// SIGKILLs a node (a crash).
    public func kill(node: Int) throws { try run("scripts/lib/galera.sh", ["kill", cluster, String(node)]) }
    /// Starts a node again and waits until it is Synced.
    public func rejoin(node: Int) throws { try run("scripts/lib/galera.sh", ["rejoin", cluster, String(node)], timeout: 180) }
    /// Cuts a node off the cluster; it stays up and answers 1047 until ``unisolate(node:)``.
    public func isolate(node: Int) throws { try run("scripts/lib/galera.sh", ["isolate", cluster, String(node)], timeout: 120) }
    /// Lets an isolated node back in and waits until it is Synced.
    public func unisolate(node: Int) throws { try run("scripts/lib/galera.sh", ["unisolate", cluster, String(node)], timeout: 180) }

    /// Runs SQL as root on one node, in the application database; tab-separated rows.
    @discardableResult
    public func sql(node: Int, _ statement: String) throws -> String {
        try run("scripts/lib/galera.sh", ["sql", cluster, String(node), "-N", "-B", "emailsetup", "-e", statement])
    }

    /// The log of one responder (to show in a failure).
    public func responderLog(_ entry: Entry) -> String {
        (try? String(contentsOfFile: root + "/\(entry.rawValue)/responder.log", encoding: .utf8)) ?? ""
    }

    /// Stops the nginx, the responders and the cluster; idempotent.
    public func stop() {
        guard running.withLock({ running in defer { running = false }; return running }) else { return }
        try? Self.stopAll(root: root, env: env)
    }

    // MARK: Internals

    private static func stopAll(root: String, env: EndToEndEnvironment) throws {
        let script = """
            source "$ROOT/scripts/lib/services.sh"
            for e in lb a b; do [[ -d $1/$e ]] && nginx_stop "$1/$e"; done
            for e in a b; do [[ -d $1/$e ]] && responder_stop "$1/$e"; done
            "$ROOT/scripts/lib/galera.sh" stop "$1/cluster"
            true
            """
        try ScriptRunner.run("/bin/bash", ["-c", script, "galera-stop", root], environment: ["ROOT": env.root], timeout: 120)
    }

    @discardableResult
    private func run(_ path: String, _ arguments: [String], timeout: Double = 60) throws -> String {
        try ScriptRunner.run(env.root + "/" + path, arguments, environment: ["ROOT": env.root], timeout: timeout)
    }

    /// The `export NAME='value'` lines of `galera.sh env` as a dictionary.
    private func exports(node: Int) throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try run("scripts/lib/galera.sh", ["env", cluster, String(node)]).split(separator: "\n") {
            guard line.hasPrefix("export "), let eq = line.firstIndex(of: "=") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 7)..<eq])
            values[name] = String(line[line.index(after: eq)...]).replacingOccurrences(of: "'", with: "")
        }
        return values
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
