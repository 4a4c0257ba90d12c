import Foundation
#if canImport(Glibc)
import Glibc
import Synchronization
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
public final class SmtpTestCertificates: Sendable {
    /// The directory holding ca.pem, good.pem/.key, wronghost, expired, selfsigned, other-ca.pem.
    public let directory: TemporaryDirectory

    private static let cached = Mutex<SmtpTestCertificates?>(nil)

    /// The shared set, made on first use.
    public static func shared() throws -> SmtpTestCertificates {
        try cached.withLock { cached in
            if let cached { return cached }
            let made = try SmtpTestCertificates()
            cached = made
            return made
        }
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
public final class SmtpTestServer: Sendable {
    /// How the server offers TLS.
    public enum Mode: String { case plain, starttls, implicit }

    /// The port it listens on.
    public let port: Int
    /// Where it writes received messages.
    public let outbox: TemporaryDirectory
    private let process: ManagedProcess

    /// Starts the server and waits (bounded) until it listens. `tlsMax` "1.1" makes an
    /// outdated server that offers nothing newer than TLS 1.1.
    public init(mode: Mode, certificate: String = "good", user: String = "", password: String = "",
                authRequireTLS: Bool = true, excludeAuth: [String] = [], smtputf8: Bool = false,
                pipelining: Bool = true, size: Int = 33_554_432, bindAddress: String = "127.0.0.1",
                authRequired: Bool = false, port requestedPort: Int = 0, tlsMax: String? = nil) throws {
        outbox = try TemporaryDirectory(prefix: "smtp-outbox")
        var arguments = [SmtpFixtures.script("smtp_server.py"), "--mode", mode.rawValue, "--outdir", outbox.path,
                         "--auth-require-tls", authRequireTLS ? "1" : "0", "--smtputf8", smtputf8 ? "1" : "0",
                         "--pipelining", pipelining ? "1" : "0", "--size", String(size), "--host", bindAddress,
                         "--auth-required", authRequired ? "1" : "0", "--port", String(requestedPort)]
        if !user.isEmpty { arguments += ["--user", user, "--password", password] }
        if !excludeAuth.isEmpty { arguments += ["--exclude-auth", excludeAuth.joined(separator: ",")] }
        if let tlsMax { arguments += ["--tls-max", tlsMax] }
        if mode != .plain {
            let certificates = try SmtpTestCertificates.shared()
            arguments += ["--cert", certificates.certificate(certificate), "--key", certificates.key(certificate)]
        }
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: arguments)
        port = try process.waitForReadyPort()
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

/// One message as the OAuth fixture spooled it.
public struct OAuthSmtpReceivedMessage {
    /// MAIL FROM address.
    public var mailFrom: String
    /// RCPT TO addresses.
    public var recipients: [String]
    /// The user that authenticated (the token's mailbox, or the login with --basic-auth ok).
    public var user: String?
    /// "XOAUTH2", "OAUTHBEARER" (or "PLAIN"/"LOGIN" with --basic-auth ok).
    public var mechanism: String?
    /// True when the session was encrypted.
    public var tls: Bool
    /// The content as received, after dot-unstuffing.
    public var raw: [UInt8]
    /// `raw` as text.
    public var text: String { String(decoding: raw, as: UTF8.self) }
}

/// The OAuth 2.0 submission server (Tests/Fixtures/smtp/oauth_smtp_server.py) on
/// 127.0.0.1, answering as Exchange Online or Gmail do. Tokens come from a map the test
/// controls (`tokens`, changeable with ``setTokens(_:)``) or from RFC 7662
/// introspection at the test authorization server.
///
/// ```swift
/// let server = try OAuthSmtpTestServer(flavor: .gmail, tokens: .map(["t0k3n": "alice@example.test"]))
/// // … AUTH XOAUTH2 as alice@example.test with t0k3n on 127.0.0.1:server.port …
/// let messages = try server.waitForMessages(count: 1)
/// ```
public final class OAuthSmtpTestServer: Sendable {
    /// Whose replies it imitates.
    public enum Flavor: String { case exchange, gmail }
    /// How it offers TLS.
    public enum Mode: String { case starttls, implicit, plain }
    /// What PLAIN and LOGIN get: the basic-auth-disabled replies, or a check against `password`.
    public enum BasicAuth: String { case disabled, unsupported, ok }
    /// Where it checks tokens.
    public enum Tokens {
        /// token → username; nil username: an app-only token (any of `mailboxes`).
        case map([String: String?])
        /// RFC 7662 introspection over HTTPS.
        case introspection(url: String, caFile: String)
    }

    /// The port it listens on.
    public let port: Int
    /// The maildir it spools accepted messages to (new/, meta/).
    public let spool: TemporaryDirectory
    private let state: TemporaryDirectory
    private let process: ManagedProcess

    /// Starts the server and waits (bounded) until it listens.
    public init(flavor: Flavor, mode: Mode = .starttls, certificate: String = "good", tokens: Tokens,
                mailboxes: [String] = [], basicAuth: BasicAuth = .disabled, password: String = "") throws {
        spool = try TemporaryDirectory(prefix: "oauth-smtp-spool")
        state = try TemporaryDirectory(prefix: "oauth-smtp-state")
        var arguments = [SmtpFixtures.script("oauth_smtp_server.py"), "--flavor", flavor.rawValue, "--mode", mode.rawValue,
                         "--spool", spool.path, "--basic-auth", basicAuth.rawValue, "--password", password,
                         "--mailboxes", mailboxes.joined(separator: ",")]
        switch tokens {
        case .map(let map):
            try Self.write(map, to: state.path + "/tokens.json")
            arguments += ["--tokens-file", state.path + "/tokens.json"]
        case .introspection(let url, let caFile):
            arguments += ["--introspect-url", url, "--ca-file", caFile]
        }
        if mode != .plain {
            let certificates = try SmtpTestCertificates.shared()
            arguments += ["--cert", certificates.certificate(certificate), "--key", certificates.key(certificate)]
        }
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: arguments)
        port = try process.waitForReadyPort()
    }

    /// Replaces the token map (read by the server at every AUTH): revoke or add tokens.
    public func setTokens(_ map: [String: String?]) throws {
        try Self.write(map, to: state.path + "/tokens.json")
    }

    private static func write(_ map: [String: String?], to path: String) throws {
        let object = map.mapValues { $0.map { $0 as Any } ?? NSNull() }
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Stops the server (also done on deinit).
    public func stop() { process.stop() }

    /// How many messages were spooled so far.
    public var messageCount: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool.path + "/new")) ?? []).filter { $0.hasSuffix(".eml") }.count
    }

    /// Waits (bounded) until `count` messages were spooled, then returns them in order.
    public func waitForMessages(count: Int, timeout: Double = 10) throws -> [OAuthSmtpReceivedMessage] {
        let end = Date().addingTimeInterval(timeout)
        while messageCount < count {
            if Date() > end { throw ManagedProcess.Failure(message: "only \(messageCount) of \(count) messages arrived within \(timeout) s", stderr: process.stderrText) }
            usleep(20_000)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: spool.path + "/new").filter { $0.hasSuffix(".eml") }.sorted()
        return try names.prefix(count).map { name in
            let base = String(name.dropLast(".eml".count))
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spool.path + "/meta/\(base).json"))) as? [String: Any] ?? [:]
            let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: spool.path + "/new/\(name)")))
            return OAuthSmtpReceivedMessage(mailFrom: meta["mail_from"] as? String ?? "", recipients: meta["rcpt_tos"] as? [String] ?? [],
                                            user: meta["user"] as? String, mechanism: meta["mechanism"] as? String,
                                            tls: meta["tls"] as? Bool ?? false, raw: raw)
        }
    }
}

/// The misbehaving server (Tests/Fixtures/smtp/hostile_server.py) on 127.0.0.1.
public final class HostileSmtpServer: Sendable {
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
        port = try process.waitForReadyPort()
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
