import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths and helpers for the SMTP fixtures in Tests/Fixtures/smtp. Fixtures always run
/// under /usr/bin/python3 (Debian's, which has aiosmtpd and cryptography), never the
/// `python3` first on PATH.
public enum SmtpFixtures {
    /// Debian's interpreter.
    public static let python = "/usr/bin/python3"

    /// Tests/Fixtures/smtp of this checkout.
    public static let directory: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/smtp").path
    }()

    /// The fixture script at `name`.
    public static func script(_ name: String) -> String { directory + "/" + name }
}

/// The test CA and certificates (made once per test process by make_certs.py).
public final class SmtpTestCertificates: @unchecked Sendable {
    /// The directory holding ca.pem, good.pem/.key, wronghost, expired, selfsigned, other-ca.pem.
    public let directory: TemporaryDirectory

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cached: SmtpTestCertificates?

    /// The shared set, made on first use.
    public static func shared() throws -> SmtpTestCertificates {
        lock.lock(); defer { lock.unlock() }
        if let cached { return cached }
        let made = try SmtpTestCertificates()
        cached = made
        return made
    }

    private init() throws {
        directory = try TemporaryDirectory(prefix: "smtp-certs")
        let maker = try ManagedProcess(executable: SmtpFixtures.python,
                                       arguments: [SmtpFixtures.script("make_certs.py"), directory.path])
        _ = try maker.waitForLine(prefix: "OK", timeout: 30)
        maker.stop()
    }

    /// Path of `<name>.pem`.
    public func certificate(_ name: String) -> String { directory.path + "/\(name).pem" }
    /// Path of `<name>.key`.
    public func key(_ name: String) -> String { directory.path + "/\(name).key" }
    /// The PEM text of `<name>.pem`.
    public func pem(_ name: String) throws -> String { try String(contentsOfFile: certificate(name), encoding: .utf8) }
}

/// One message as the aiosmtpd fixture received it.
public struct SmtpReceivedMessage {
    /// MAIL FROM address.
    public var mailFrom: String
    /// RCPT TO addresses.
    public var recipients: [String]
    /// MAIL FROM parameters ("SIZE=123", "BODY=8BITMIME", "SMTPUTF8").
    public var mailOptions: [String]
    /// The login that authenticated, if any.
    public var login: String?
    /// True when the session was encrypted.
    public var tls: Bool
    /// The EHLO name the client used.
    public var ehlo: String?
    /// The content as received, after dot-unstuffing.
    public var raw: [UInt8]
    /// `raw` as text.
    public var text: String { String(decoding: raw, as: UTF8.self) }
}

/// The aiosmtpd fixture server (Tests/Fixtures/smtp/smtp_server.py) on 127.0.0.1.
///
/// ```swift
/// let server = try SmtpTestServer(mode: .starttls, certificate: "good", user: "alice", password: "s3cret")
/// // … send to 127.0.0.1:server.port …
/// let messages = try server.waitForMessages(count: 1)
/// ```
public final class SmtpTestServer: @unchecked Sendable {
    /// How the server offers TLS.
    public enum Mode: String { case plain, starttls, implicit }

    /// The port it listens on.
    public let port: Int
    /// Where it writes received messages.
    public let outbox: TemporaryDirectory
    private let process: ManagedProcess

    /// Starts the server and waits (bounded) until it listens.
    public init(mode: Mode, certificate: String = "good", user: String = "", password: String = "",
                authRequireTLS: Bool = true, excludeAuth: [String] = [], smtputf8: Bool = false,
                pipelining: Bool = true, size: Int = 33_554_432, bindAddress: String = "127.0.0.1",
                authRequired: Bool = false, port requestedPort: Int = 0) throws {
        outbox = try TemporaryDirectory(prefix: "smtp-outbox")
        var arguments = [SmtpFixtures.script("smtp_server.py"), "--mode", mode.rawValue, "--outdir", outbox.path,
                         "--auth-require-tls", authRequireTLS ? "1" : "0", "--smtputf8", smtputf8 ? "1" : "0",
                         "--pipelining", pipelining ? "1" : "0", "--size", String(size), "--host", bindAddress,
                         "--auth-required", authRequired ? "1" : "0", "--port", String(requestedPort)]
        if !user.isEmpty { arguments += ["--user", user, "--password", password] }
        if !excludeAuth.isEmpty { arguments += ["--exclude-auth", excludeAuth.joined(separator: ",")] }
        if mode != .plain {
            let certificates = try SmtpTestCertificates.shared()
            arguments += ["--cert", certificates.certificate(certificate), "--key", certificates.key(certificate)]
        }
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: arguments)
        let line = try process.waitForLine(prefix: "READY ", timeout: 20)
        port = Int(line.dropFirst("READY ".count).trimmingCharacters(in: .whitespaces)) ?? 0
    }

    /// Stops the server (also done on deinit).
    public func stop() { process.stop() }

    /// Waits (bounded) until `count` messages were written, then returns them in order.
    public func waitForMessages(count: Int, timeout: Double = 10) throws -> [SmtpReceivedMessage] {
        let end = Date().addingTimeInterval(timeout)
        while true {
            let found = (try? FileManager.default.contentsOfDirectory(atPath: outbox.path))?.filter { $0.hasSuffix(".json") }.count ?? 0
            if found >= count { break }
            if Date() > end { throw ManagedProcess.Failure(message: "only \(found) of \(count) messages arrived within \(timeout) s", stderr: process.stderrText) }
            usleep(20_000)
        }
        return try (1...count).map { index in
            let base = outbox.path + "/msg-\(index)"
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json"))) as? [String: Any] ?? [:]
            let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: base + ".eml")))
            return SmtpReceivedMessage(
                mailFrom: meta["mail_from"] as? String ?? "", recipients: meta["rcpt_tos"] as? [String] ?? [],
                mailOptions: meta["mail_options"] as? [String] ?? [], login: meta["login"] as? String,
                tls: meta["tls"] as? Bool ?? false, ehlo: meta["ehlo"] as? String, raw: raw)
        }
    }

    /// How many messages arrived so far.
    public var messageCount: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: outbox.path)) ?? []).filter { $0.hasSuffix(".json") }.count
    }
}

/// The misbehaving server (Tests/Fixtures/smtp/hostile_server.py) on 127.0.0.1.
public final class HostileSmtpServer: @unchecked Sendable {
    /// The port it listens on.
    public let port: Int
    private let process: ManagedProcess
    private let logDirectory: TemporaryDirectory

    /// Starts the server in `mode` (see the script's doc) and waits until it listens.
    public init(mode: String, certificate: String? = nil) throws {
        logDirectory = try TemporaryDirectory(prefix: "smtp-hostile")
        var arguments = [SmtpFixtures.script("hostile_server.py"), "--mode", mode, "--log", logDirectory.path + "/received.log"]
        if let certificate {
            let certificates = try SmtpTestCertificates.shared()
            arguments += ["--cert", certificates.certificate(certificate), "--key", certificates.key(certificate)]
        }
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: arguments)
        let line = try process.waitForLine(prefix: "READY ", timeout: 20)
        port = Int(line.dropFirst("READY ".count).trimmingCharacters(in: .whitespaces)) ?? 0
    }

    /// Every byte received from clients so far (plaintext; TLS records after STARTTLS).
    public var received: [UInt8] {
        (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: logDirectory.path + "/received.log")))) ?? []
    }

    /// Stops the server (also done on deinit).
    public func stop() { process.stop() }
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
public func smtpUnusedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
