import Foundation
import ProcessIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A second MariaDB that accepts only TLS, for the database-over-TLS tests: started by
/// `scripts/lib/mariadb-tls.sh` with a throw-away test CA on 127.0.0.1 (a free port),
/// `require_secure_transport=ON`, and two accounts: ``tlsUser`` (`REQUIRE SSL`) and
/// ``x509User`` (`REQUIRE X509`). The server's certificate names 127.0.0.1 and
/// `db.emailsetup.test` only, so connecting by `localhost` is a host-name mismatch.
///
/// Start it once per test class and stop it in the class tear-down; `stop()` is
/// idempotent and also runs on deinit. Its files live in `var/test-tls` of the
/// checkout (git-ignored) and are kept between runs, so only the first run pays for
/// `mariadb-install-db`.
///
/// ```swift
/// let server = try TLSDatabaseServer.start()
/// defer { server.stop() }
/// let tls = (caFile: server.caFile, user: TLSDatabaseServer.tlsUser)
/// ```
public final class TLSDatabaseServer: Sendable {
    /// `REQUIRE SSL`: any TLS connection with the password.
    public static let tlsUser = "tls"
    /// `REQUIRE X509`: TLS with a client certificate signed by ``caFile``.
    public static let x509User = "x509"
    /// The database both accounts may use.
    public static let databaseName = "emailsetup_tls"

    /// Folder of certificates, datadir, socket and logs.
    public let stateDirectory: String
    /// TCP port on 127.0.0.1.
    public let port: Int
    /// Password of both accounts.
    public let password: String
    private let running = Mutex(true)

    /// The test CA that signed the server's and the client's certificates.
    public var caFile: String { stateDirectory + "/ca.pem" }
    /// A CA that signed nothing this server shows.
    public var otherCAFile: String { stateDirectory + "/other-ca.pem" }
    /// Client certificate (CN=emailsetup-client) and key, for ``x509User``.
    public var clientCertificateFile: String { stateDirectory + "/client.pem" }
    public var clientKeyFile: String { stateDirectory + "/client.key" }
    /// The server's log (for failure messages).
    public var logFile: String { stateDirectory + "/mariadb.log" }

    private init(stateDirectory: String, port: Int, password: String) {
        self.stateDirectory = stateDirectory
        self.port = port
        self.password = password
    }

    /// Makes the certificates (first time), starts the server on a free port and waits
    /// until it answers; throws with the script's output when it does not.
    public static func start() throws -> TLSDatabaseServer {
        let state = DatabaseTestEnvironment.packageRoot.appendingPathComponent("var/test-tls").path
        let port = freePort()
        try runScript(["start", state, String(port)])
        let password = try String(contentsOfFile: state + "/db-password", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return TLSDatabaseServer(stateDirectory: state, port: port, password: password)
    }

    /// Stops the server (the files stay for the next run).
    public func stop() {
        guard running.withLock({ running in defer { running = false }; return running }) else { return }
        try? Self.runScript(["stop", stateDirectory])
    }

    deinit { stop() }

    /// Failure of `mariadb-tls.sh`, with its output.
    public struct ScriptFailed: Error, CustomStringConvertible {
        public var description: String
    }

    /// posix_spawn + waitpid with output to a file, as `DatabaseTestEnvironment` does
    /// (the daemonised `mariadbd` must not hold a pipe of ours).
    private static func runScript(_ arguments: [String]) throws {
        let script = DatabaseTestEnvironment.packageRoot.appendingPathComponent("scripts/lib/mariadb-tls.sh").path
        let logPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("emailsetup-mariadb-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log").path
        defer { unlink(logPath) }
        let exit: ChildProcess.Exit
        do {
            exit = try ChildProcess.spawn(script, arguments, environment: nil, stdout: .file(logPath), stderr: .standardOutput).wait()
        } catch {
            throw ScriptFailed(description: "cannot run \(script): \(error)")
        }
        guard exit == .exited(0) else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw ScriptFailed(description: "mariadb-tls.sh \(arguments.joined(separator: " ")) failed (\(exit)): \(output)")
        }
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
