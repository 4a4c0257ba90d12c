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
import MailDNS
import Smtp
import Storage

/// The responder's own configuration: one `key = value` file plus environment
/// overrides (`EMAILSETUP_<KEY>`, e.g. `EMAILSETUP_DB_SOCKET`), as DESIGN.md's
/// "Configuration of the responder itself" describes.
///
/// A bad or missing setting stops start-up with one line naming it, e.g.
/// `config: db_port = "abc" (/etc/emailsetup/emailsetup.conf line 4): must be a port from 1 to 65535`.
///
/// ```swift
/// let config = try ResponderConfig.load(path: "/etc/emailsetup/emailsetup.conf", environment: ProcessInfo.processInfo.environment)
/// ```
struct ResponderConfig: Sendable {
    var database: DatabaseSettings
    /// Directory of the RSA transport key pair and the data keys (0700).
    var keyDirectory: String
    /// Passphrase file of the original system's `openssl enc` secrets, if migrating.
    var legacyKeyFile: String?
    /// The key-encryption key every host shares (`kek_file`, a systemd credential, or `<key_dir>/kek`).
    var kekLocation: KEKLocation
    /// Worker threads, each with one database connection.
    var workers: Int
    var access: AccessPolicy
    /// Test emails and checks per user per minute, and for everyone together.
    var testRateLimitPerUser: Int
    var testRateLimitTotal: Int
    /// Mode of a unix socket the responder creates with --socket.
    var socketMode: mode_t
    /// Group of that socket (e.g. www-data), if set.
    var socketGroup: String?
    /// Notification targets for committed saves (see the README).
    var notify: [String]
    /// Seconds a notification target may take.
    var notifyTimeout: Double
    /// The bytes sent to socket targets.
    var notifyMessage: [UInt8]
    var logLevel: String
    /// Settings versions kept in history (the current one and the last known good always are).
    var historyKeep: Int
    /// Days of audit log kept.
    var auditKeepDays: Int
    /// SMTP sessions (test emails, checks) that may run at once, on their own threads.
    var smtpSessions: Int = 4
    /// Seconds one SMTP session of the API may take, whatever the saved timeouts say;
    /// below nginx's `fastcgi_read_timeout` so the browser always gets our answer.
    var smtpSessionLimit: Double = 170
    /// The address administrators open the page at (`public_url`, e.g.
    /// https://admin.example.com/email-setup): the OAuth redirect URI is built from it,
    /// never from the request's Host. Without it, OAuth sign-in in the browser is off.
    var publicURL: String?
    /// Replaces scheme, host and port of Microsoft's and Google's OAuth endpoints
    /// (`oauth_base_override`): a sovereign cloud, an air-gapped proxy, the test suite.
    var oauthBaseOverride: String?
    /// Extra trusted CA certificates (PEM file) for the OAuth endpoints (`oauth_ca_file`).
    var oauthCAFile: String?
    /// Destinations no test email or check may connect to (`smtp_denied_networks`).
    var smtpDeniedNetworks: [IPNetwork] = []
    /// DNS servers for discovery and the domain check (`dns_servers`); empty: /etc/resolv.conf's.
    var dnsServers: [DNSServerAddress] = []
    /// Extra trusted CAs (PEM file) for discovery's autoconfig fetch and probes (`discovery_ca_file`).
    var discoveryCAFile: String?
    /// The autoconfig HTTPS port (`discovery_autoconfig_port`, 443); only tests change it.
    var discoveryAutoconfigPort: Int?
    /// Ports probed on guessed hosts (`discovery_probe_ports`); only tests change them.
    var discoveryProbes = SmtpAdvice.usualProbes

    /// How to reach MariaDB.
    struct DatabaseSettings: Sendable {
        var socket: String?
        var host: String?
        var port: Int
        var user: String
        var passwordFile: String?
        var name: String
        /// Seconds to wait for the database's answer (`db_timeout`).
        var timeout: Int = 2
        /// TLS to the server (`db_ssl_*`), nil when none of them is set.
        var tls: DatabaseConfiguration.TLS?
    }

    /// A setting that stops start-up; `description` is the one line to print.
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static let defaultPath = "/etc/emailsetup/emailsetup.conf"

    /// Every key the file may contain, with its default ("" = unset).
    static let keys: [(String, String)] = [
        ("db_socket", ""), ("db_host", ""), ("db_port", "3306"), ("db_timeout", "2"), ("db_user", "emailsetup"),
        ("db_password_file", ""), ("db_name", "emailsetup"),
        ("db_ssl_ca", ""), ("db_ssl_cert", ""), ("db_ssl_key", ""), ("db_ssl_verify", ""),
        ("key_dir", "/var/lib/emailsetup/keys"), ("legacy_key_file", ""), ("kek_file", ""),
        ("workers", ""), ("auth", "remote_user"), ("admins", ""),
        ("test_rate_limit_per_user", "10"), ("test_rate_limit_total", "60"),
        ("socket_mode", "0660"), ("socket_group", ""),
        ("notify", ""), ("notify_timeout", "1"), ("notify_message", "SYSTEM_UPDATED*RESET*"), ("log_level", "info"),
        ("history_keep", "500"), ("audit_keep_days", "365"),
        ("smtp_sessions", "4"), ("smtp_session_limit", "170"),
        ("public_url", ""), ("oauth_base_override", ""), ("oauth_ca_file", ""),
        ("smtp_denied_networks", IPNetwork.defaultDeniedText), ("dns_servers", ""),
        ("discovery_ca_file", ""), ("discovery_autoconfig_port", "443"),
        ("discovery_probe_ports", "465:ssl,587:starttls,25:starttls,2525:starttls"),
    ]

    /// Reads the file at `path` (nil: the default path, which may be absent when
    /// the environment supplies everything) and applies `EMAILSETUP_*` overrides.
    static func load(path: String?, environment: [String: String]) throws -> ResponderConfig {
        var raw: [String: (value: String, origin: String)] = [:]
        for (key, value) in keys { raw[key] = (value, "default") }
        let filePath = path ?? environment["EMAILSETUP_CONFIG"] ?? defaultPath
        let explicit = path != nil || environment["EMAILSETUP_CONFIG"] != nil
        if let text = try? String(contentsOfFile: filePath, encoding: .utf8) {
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingSpaces()
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                let origin = "\(filePath) line \(index + 1)"
                guard let eq = trimmed.firstIndex(of: "=") else {
                    throw Problem(description: "config: \(origin): expected `key = value`, got \"\(trimmed.prefix(60))\"")
                }
                let key = trimmed[..<eq].trimmingSpaces()
                var value = trimmed[trimmed.index(after: eq)...].trimmingSpaces()
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                guard raw[key] != nil else {
                    throw Problem(description: "config: \(origin): unknown setting \"\(key)\" (known: \(keys.map(\.0).joined(separator: ", ")))")
                }
                raw[key] = (value, origin)
            }
        } else if explicit || FileManager.default.fileExists(atPath: filePath) {
            throw Problem(description: "config: cannot read \(filePath)")
        }
        for (key, _) in keys {
            if let value = environment["EMAILSETUP_" + key.uppercased()] { raw[key] = (value, "EMAILSETUP_\(key.uppercased())") }
        }

        func value(_ key: String) -> String { raw[key]!.value }
        func problem(_ key: String, _ message: String) -> Problem {
            let (v, origin) = raw[key]!
            return Problem(description: "config: \(key) = \"\(v)\" (\(origin)): \(message)")
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let n = Int(value(key)), range.contains(n) else {
                throw problem(key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        func optional(_ key: String) -> String? { value(key).isEmpty ? nil : value(key) }

        let socket = optional("db_socket"), host = optional("db_host")
        if socket == nil, host == nil {
            throw problem("db_socket", "set db_socket (a unix socket path) or db_host")
        }
        let passwordFile = optional("db_password_file")
        if let passwordFile, !FileManager.default.isReadableFile(atPath: passwordFile) {
            throw problem("db_password_file", "cannot read this file")
        }
        let tls = try Self.databaseTLS(value, problem, socket: socket)
        guard let auth = AccessPolicy.Mode(rawValue: value("auth")) else {
            throw problem("auth", "must be remote_user or none")
        }
        let admins = UserNames(value("admins").split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty })
        guard let mode = mode_t(value("socket_mode"), radix: 8), mode <= 0o777 else {
            throw problem("socket_mode", "must be an octal file mode such as 0660")
        }
        guard let notifyTimeout = Double(value("notify_timeout")), notifyTimeout > 0, notifyTimeout <= 30 else {
            throw problem("notify_timeout", "must be seconds from 0 to 30, such as 1 or 0.5")
        }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value("log_level")) else {
            throw problem("log_level", "must be one of debug, info, notice, warning, error")
        }
        let notify = value("notify").split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        for target in notify where SettingsChangeNotifier.Target(configuration: target) == nil {
            throw problem("notify", "\"\(target)\" is not unix-stream:PATH, unix-datagram:PATH or command:/ABSOLUTE/PATH [ARGS]")
        }
        guard !value("notify_message").isEmpty else { throw problem("notify_message", "must not be empty") }
        let deniedNetworks: [IPNetwork]
        do {
            deniedNetworks = try IPNetwork.list(value("smtp_denied_networks"))
        } catch {
            throw problem("smtp_denied_networks", "\(error.reason) (comma-separated networks such as 169.254.0.0/16, fe80::/10; empty for none)")
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let workers = value("workers").isEmpty ? max(2, 2 * cores) : try int("workers", 1...256)
        var config = ResponderConfig(
            database: DatabaseSettings(socket: socket, host: host, port: try int("db_port", 1...65535),
                                       user: value("db_user"), passwordFile: passwordFile, name: value("db_name"),
                                       timeout: try int("db_timeout", 2...60), tls: tls),
            keyDirectory: value("key_dir"),
            legacyKeyFile: optional("legacy_key_file"),
            kekLocation: KEKLocation.resolve(kekFile: optional("kek_file"), keyDirectory: value("key_dir"), environment: environment),
            workers: workers,
            access: AccessPolicy(mode: auth, admins: admins),
            testRateLimitPerUser: try int("test_rate_limit_per_user", 1...10_000),
            testRateLimitTotal: try int("test_rate_limit_total", 1...100_000),
            socketMode: mode,
            socketGroup: optional("socket_group"),
            notify: notify,
            notifyTimeout: notifyTimeout,
            notifyMessage: Array(value("notify_message").utf8),
            logLevel: value("log_level"),
            historyKeep: try int("history_keep", 1...1_000_000),
            auditKeepDays: try int("audit_keep_days", 1...36_500),
            smtpDeniedNetworks: deniedNetworks)
        config.smtpSessions = try int("smtp_sessions", 1...64)
        config.smtpSessionLimit = Double(try int("smtp_session_limit", 5...3600))
        if let url = optional("public_url") {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil,
                  parsed.query == nil, parsed.fragment == nil else {
                throw problem("public_url", "must be the http(s) address the page is opened at, e.g. https://admin.example.com/email-setup")
            }
            config.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        if let base = optional("oauth_base_override") {
            guard let parsed = URL(string: base), parsed.scheme?.lowercased() == "https", parsed.host != nil,
                  parsed.path.isEmpty || parsed.path == "/" else {
                throw problem("oauth_base_override", "must be https://HOST[:PORT] with no path")
            }
            config.oauthBaseOverride = base.hasSuffix("/") ? String(base.dropLast()) : base
        }
        if let ca = optional("oauth_ca_file") {
            guard FileManager.default.isReadableFile(atPath: ca) else { throw problem("oauth_ca_file", "cannot read this file") }
            config.oauthCAFile = ca
        }
        do throws(DNSError) { config.dnsServers = try DNSServerAddress.list(value("dns_servers")) } catch {
            throw problem("dns_servers", "\(error.hint); separate several with commas, or leave it empty for the system's resolver")
        }
        if let ca = optional("discovery_ca_file") {
            guard FileManager.default.isReadableFile(atPath: ca) else { throw problem("discovery_ca_file", "cannot read this file") }
            config.discoveryCAFile = ca
        }
        guard let autoconfigPort = Int(value("discovery_autoconfig_port")), (1...65535).contains(autoconfigPort) else {
            throw problem("discovery_autoconfig_port", "must be a port number (443 unless a test says otherwise)")
        }
        config.discoveryAutoconfigPort = autoconfigPort == 443 ? nil : autoconfigPort
        guard let probes = DiscoverySetup.probes(value("discovery_probe_ports")) else {
            throw problem("discovery_probe_ports", "must be PORT:ssl or PORT:starttls, separated by commas")
        }
        config.discoveryProbes = probes
        return config
    }

    /// The database password: the first line of `db_password_file`, or "".
    func databasePassword() throws -> String {
        guard let file = database.passwordFile else { return "" }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw Problem(description: "config: db_password_file = \"\(file)\": cannot read this file")
        }
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (what `trimmingCharacters(in:
    /// .whitespaces)` removes, without full Foundation: docs/DECISIONS.md, "CGI start-up").
    func trimmingSpaces() -> String {
        func isSpace(_ c: Character) -> Bool { c == "\t" || (c.isWhitespace && !c.isNewline) }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
