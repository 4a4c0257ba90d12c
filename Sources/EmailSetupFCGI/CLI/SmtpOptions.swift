import ArgumentParser
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
import Smtp

/// The SETTINGS options shared by `send` and `check` (DESIGN.md "Command line").
///
/// Either `--stored` (the settings saved in the database, read with the responder's
/// configuration) or the explicit options. With `--stored` only `--helo` and the
/// timeouts may override what was saved; the other settings options are refused, so a
/// run never mixes a saved server with a typed-in login by accident.
struct SmtpOptions: ParsableArguments {
    @Flag(help: "Use the settings saved in the database (read with the responder's configuration) instead of the options below.")
    var stored = false

    @Option(name: .long, help: ArgumentHelp("Responder configuration file for --stored (default: $EMAILSETUP_CONFIG or \(ResponderConfig.defaultPath)).", valueName: "file"))
    var config: String?

    @Option(help: "SMTP server host name or IP address.")
    var host: String?

    @Option(help: "TCP port (default: 25 for none, 587 for starttls, 465 for ssl).")
    var port: Int?

    @Option(help: "none | starttls (required) | starttls-opportunistic | ssl (implicit TLS). Default: starttls.")
    var security: String?

    @Option(help: "none | plain | login | cram-md5 | xoauth2 | oauthbearer | auto (default: auto with --user, else none; auto prefers OAuth with --oauth-token-env).")
    var auth: String?

    @Option(help: "Login name.")
    var user: String?

    @Option(name: .customLong("password-env"), help: "Name of the environment variable holding the password.")
    var passwordEnv: String?

    @Option(name: .customLong("password-file"), help: "File holding the password (a trailing newline is ignored).")
    var passwordFile: String?

    @Option(name: .customLong("oauth-token-env"), help: "Name of the environment variable holding an OAuth 2.0 access token, for --auth xoauth2, oauthbearer or auto.")
    var oauthTokenEnv: String?

    @Flag(name: .customLong("allow-cleartext-auth"), help: "Allow PLAIN/LOGIN/XOAUTH2/OAUTHBEARER over a connection without TLS.")
    var allowCleartextAuth = false

    @Option(help: "Certificate check: full | pinned | none. Default: full.")
    var verify: String?

    @Option(name: .customLong("ca-file"), help: "Extra trusted CA certificates (PEM file) for --verify full.")
    var caFile: String?

    @Option(help: "SHA-256 fingerprint of the server certificate (64 hex digits) for --verify pinned.")
    var pin: String?

    @Option(help: "Sender address (MAIL FROM and From:).")
    var from: String?

    @Option(help: "EHLO name (default: the sender's domain, else this machine's host name).")
    var helo: String?

    @Option(name: .customLong("connect-timeout"), help: "Seconds for each connection attempt (default: 10, or the saved value).")
    var connectTimeout: Double?

    @Option(name: .customLong("command-timeout"), help: "Seconds to wait for each reply (default: 30, or the saved value).")
    var commandTimeout: Double?

    @Option(help: "Seconds for a whole session, connect to QUIT (default: 120; with --stored, connect + 4 × command timeout).")
    var deadline: Double?

    @Flag(help: "Print one JSON object per message (or per check).")
    var json = false

    /// The exit-status paragraph both subcommands put in their `--help`.
    static let exitStatusHelp = """
        Exit status: 0 all delivered / check passed; 2 bad usage or input — an unknown or missing option, a bad address, and with --stored also a configuration that cannot be read, an unreachable database ("--stored: cannot reach the database …") or settings never saved; 3 an SMTP failure; 4 a timeout.
        """

    /// The settings options given on the command line, by name: with `--stored` these
    /// would silently fight the saved values, so they are refused.
    var explicitSettingsGiven: [String] {
        var given: [String] = []
        if host != nil { given.append("--host") }
        if port != nil { given.append("--port") }
        if security != nil { given.append("--security") }
        if auth != nil { given.append("--auth") }
        if user != nil { given.append("--user") }
        if passwordEnv != nil { given.append("--password-env") }
        if passwordFile != nil { given.append("--password-file") }
        if oauthTokenEnv != nil { given.append("--oauth-token-env") }
        if allowCleartextAuth { given.append("--allow-cleartext-auth") }
        if verify != nil { given.append("--verify") }
        if caFile != nil { given.append("--ca-file") }
        if pin != nil { given.append("--pin") }
        if from != nil { given.append("--from") }
        return given
    }

    /// Builds the settings, or throws a usage error (exit 2) naming the bad option.
    ///
    /// - Parameter environment: where `--password-env` and, for `--stored`,
    ///   `EMAILSETUP_CONFIG` and the responder's `EMAILSETUP_*` overrides are read.
    /// - Throws: `CLIUsage`.
    func settings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SmtpSettings {
        for (name, value) in [("--connect-timeout", connectTimeout), ("--command-timeout", commandTimeout), ("--deadline", deadline)] {
            if let value, !(value > 0 && value <= 86400) { throw CLIUsage("\(name) must be between 0 and 86400 seconds") }
        }
        var settings: SmtpSettings
        if stored {
            let conflicting = explicitSettingsGiven
            guard conflicting.isEmpty else {
                throw CLIUsage("--stored uses the saved server, sender, login and certificate settings; leave out \(conflicting.joined(separator: ", ")) (only --helo and the timeouts may override saved values)")
            }
            do {
                settings = try StoredSmtpSettings.load(configPath: config, environment: environment)
            } catch {
                throw CLIUsage("--stored: \(error)")
            }
            if connectTimeout != nil || commandTimeout != nil {
                settings.connectTimeout = connectTimeout ?? settings.connectTimeout
                settings.commandTimeout = commandTimeout ?? settings.commandTimeout
                // The responder caps its deadline below nginx's read timeout; the CLI has no proxy in front.
                settings.sessionTimeout = settings.connectTimeout + 4 * settings.commandTimeout
            }
        } else {
            if config != nil { throw CLIUsage("--config is only read with --stored") }
            settings = try explicitSettings(environment: environment)
            settings.connectTimeout = connectTimeout ?? 10
            settings.commandTimeout = commandTimeout ?? 30
            settings.sessionTimeout = 120
        }
        if let deadline { settings.sessionTimeout = deadline }
        if let helo { settings.ehloName = helo }
        return settings
    }

    /// The settings from the explicit options (no `--stored`).
    private func explicitSettings(environment: [String: String]) throws -> SmtpSettings {
        guard let host, !host.isEmpty else { throw CLIUsage("--host is required (or --stored)") }
        let securityName = security ?? SmtpSettings.Security.startTLSRequired.rawValue
        guard let securityMode = SmtpSettings.Security(rawValue: securityName) else {
            throw CLIUsage("--security must be none, starttls, starttls-opportunistic or ssl, not \(securityName)")
        }
        let defaultPort = securityMode == .implicitTLS ? 465 : securityMode == .none ? 25 : 587
        // The one range check of a port: PortNumber's.
        guard let portNumber = UInt16(exactly: port ?? defaultPort).flatMap(PortNumber.init) else {
            throw CLIUsage("--port must be \(PortNumber.range.lowerBound)–\(PortNumber.range.upperBound)")
        }
        var settings = SmtpSettings(host: host, port: Int(portNumber.value), security: securityMode)
        guard let from else { throw CLIUsage("--from ADDRESS is required") }
        switch EmailAddress.validate(from) {
        // The A-label form: it goes into MAIL FROM and names the EHLO default.
        case .success(let address): settings.senderAddress = address.address
        case .failure(let error): throw CLIUsage("--from \(from) is not a usable address: \(error.reason)")
        }
        let authName = auth ?? (user == nil && oauthTokenEnv == nil ? "none" : "auto")
        guard let authentication = SmtpSettings.Authentication(rawValue: authName) else {
            throw CLIUsage("--auth must be none, plain, login, cram-md5, xoauth2, oauthbearer or auto, not \(authName)")
        }
        settings.authentication = authentication
        settings.allowCleartextAuthentication = allowCleartextAuth
        let oauth = authentication == .xoauth2 || authentication == .oauthBearer
        if let oauthTokenEnv {
            guard oauth || authentication == .auto else { throw CLIUsage("--oauth-token-env is for --auth xoauth2, oauthbearer or auto, not \(authName)") }
            guard environment[oauthTokenEnv] != nil else { throw CLIUsage("environment variable \(oauthTokenEnv) (--oauth-token-env) is not set") }
            // Read at the moment of AUTH, like the password; never printed.
            settings.accessToken = { ProcessInfo.processInfo.environment[oauthTokenEnv] ?? "" }
        } else if oauth {
            throw CLIUsage("--auth \(authName) needs --oauth-token-env VAR (a variable holding the access token) or --stored")
        }
        if authentication != .none {
            guard let user else { throw CLIUsage("--auth \(authName) needs --user (for OAuth: the mailbox the token sends as)") }
            settings.username = user
            switch (passwordEnv, passwordFile) {
            case (nil, nil) where oauth || (authentication == .auto && oauthTokenEnv != nil): break
            case (let name?, nil):
                guard environment[name] != nil else { throw CLIUsage("environment variable \(name) (--password-env) is not set") }
                // Read at the moment of AUTH, not before.
                settings.password = { ProcessInfo.processInfo.environment[name] ?? "" }
            case (nil, let path?):
                guard FileManager.default.isReadableFile(atPath: path) else { throw CLIUsage("--password-file \(path) is not readable") }
                settings.password = {
                    var text = try String(contentsOfFile: path, encoding: .utf8)
                    while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
                    return text
                }
            case (nil, nil): throw CLIUsage("--auth \(authName) needs --password-env VAR or --password-file FILE")
            default: throw CLIUsage("give either --password-env or --password-file, not both")
            }
        }
        switch verify ?? "full" {
        case "full": settings.verification = .full
        case "none": settings.verification = .none
        case "pinned":
            guard let pin, let normalized = SmtpClient.normalizedPin(pin) else {
                throw CLIUsage("--verify pinned needs --pin with 64 hex digits (SHA-256 of the server certificate)")
            }
            settings.verification = .pinned(sha256: normalized)
        case let other: throw CLIUsage("--verify must be full, pinned or none, not \(other)")
        }
        if let caFile {
            guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8) else { throw CLIUsage("--ca-file \(caFile) is not readable") }
            do { try SmtpClient.validateCertificatesPEM(pem) } catch let error as SmtpError {
                throw CLIUsage("--ca-file \(caFile): \(error.hint)")
            }
            settings.extraCAPEM = pem
        }
        return settings
    }
}

/// A bad option or input: the message goes to stderr and the exit status is 2.
struct CLIUsage: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Output helpers shared by `send` and `check`.
enum CLIOutput {
    static func stderr(_ text: String) {
        StandardStreams.error(text + "\n")
    }

    static func stdout(_ text: String) {
        StandardStreams.output(text + "\n")
    }

    /// One JSON value on one line (the HTTP API's renderer, ``SmtpJSON``).
    static func json(_ value: JSONValue) {
        StandardStreams.output(value.serialized() + [0x0A])
    }

    /// An Encodable as one JSON object on one line, keys sorted, with `extra` members
    /// set (replacing members of the same name).
    static func json<T: Encodable>(_ value: T, with extra: [(String, JSONValue)]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var members: [(String, JSONValue)] = []
        if let data = try? encoder.encode(value), case .object(let encoded)? = try? JSONValue.parse(Array(data)) {
            members = encoded
        }
        for (key, member) in extra {
            members.removeAll { $0.0 == key }
            members.append((key, member))
        }
        json(.object(members.sorted { $0.0 < $1.0 }))
    }

    /// A failure as `--json` prints it: `ok` false and the diagnosis of the HTTP API
    /// (``SmtpJSON/diagnosis(_:)``), with `extra` members (the message's index…).
    static func diagnosis(_ error: SmtpError, _ extra: [(String, JSONValue)] = []) -> JSONValue {
        .object([("ok", false)] + extra + SmtpJSON.diagnosis(error))
    }

    /// Exit status for a set of failures: 4 if any timed out, 2 for refused input, else 3.
    static func exitStatus(for errors: [SmtpError]) -> Int32 {
        if errors.isEmpty { return ExitStatus.ok }
        if errors.contains(where: { $0.kind == .timeout }) { return ExitStatus.timeout }
        if errors.allSatisfy({ $0.kind == .invalidInput }) { return ExitStatus.usage }
        return ExitStatus.smtpFailure
    }

    /// Human-readable failure, with the transcript.
    static func describe(_ error: SmtpError, transcript: Bool) {
        var line = "failed at \(error.stage.rawValue) (\(error.kind.rawValue))"
        if let code = error.replyCode { line += ": \(code)" + (error.enhancedCode.map { " " + $0 } ?? "") }
        stderr(line)
        stderr("hint: \(error.hint)")
        if let suggestion = error.suggestion {
            stderr("suggestion: port \(suggestion.port) with \(suggestion.securityLabel) (--port \(suggestion.port) --security \(suggestion.security.rawValue)): \(suggestion.verified)")
        }
        if let cert = error.certificate {
            stderr("certificate: \(cert.subject), issuer \(cert.issuer), valid \(cert.notBefore) – \(cert.notAfter)")
            stderr("  SHA-256 \(cert.sha256Fingerprint); names: \(cert.subjectAlternativeNames.joined(separator: ", "))")
        }
        if transcript && !error.transcript.entries.isEmpty {
            stderr("transcript:")
            for entry in error.transcript.lines { stderr("  " + entry) }
        }
    }
}
