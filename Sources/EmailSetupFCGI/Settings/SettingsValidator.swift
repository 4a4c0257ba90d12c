import Foundation
import Smtp

/// What a POST to email_smtp asks for the password.
enum PasswordChange: Equatable, Sendable {
    /// `smtp_password` absent: keep the stored one.
    case unchanged
    /// `smtp_password: ""`: remove it.
    case cleared
    /// Base64 RSA-OAEP ciphertext from the browser or `openssl pkeyutl`.
    case encrypted(String)
}

/// The outcome of validating a settings submission: the complete set of values to
/// store (input merged over what is stored, then defaults), the password change,
/// and warnings for combinations that are valid but probably wrong.
struct ValidatedSettings: Sendable {
    /// Every writable key except the password, in canonical form.
    var values: [String: String]
    var password: PasswordChange
    /// What the submission asks for `oauth_client_secret` (same rules as the password).
    var clientSecret: PasswordChange = .unchanged
    /// Field → message, for combinations that work but are likely mistakes.
    var warnings: [(String, String)]
}

/// Checks a settings submission field by field and across fields, reporting every
/// problem at once, keyed by field, with a message a person can act on.
///
/// Semantics of a submission (documented in the README): a field that is absent
/// keeps its stored value (or default); `null` or `""` resets an optional field;
/// `smtp_password` absent keeps the password, `""` clears it. Read-only fields a
/// client copied from GET (`smtp_settings_version`, `smtp_password_set`) are
/// ignored; any other unknown field is an error, so typos do not pass silently.
///
/// ```swift
/// let result = SettingsValidator().validate(submission, stored: current)
/// ```
struct SettingsValidator: Sendable {
    /// Returns an error message for an invalid email address, else nil.
    var checkAddress: @Sendable (String) -> String? = SettingsValidator.smtpAddressCheck
    /// The host in the one form the SMTP client connects to, or why it is refused
    /// (in the client's words).
    var canonicalHost: @Sendable (String) -> Result<HostName, ValidationError> = SettingsValidator.smtpCanonicalHost
    /// The responder's `smtp_denied_networks`: an IP literal host inside one is refused
    /// at save time with the words the SMTP client would use at connect time.
    var deniedNetworks: [IPNetwork] = []
    /// Returns an error message when the PEM text holds no parseable certificate, else nil.
    var checkCertificatesPEM: @Sendable (String) -> String? = SettingsValidator.smtpCertificatesCheck
    /// Returns the canonical fingerprint (64 lower-case hex digits) or nil if invalid.
    var normalizeFingerprint: @Sendable (String) -> String? = SettingsValidator.smtpFingerprint

    static let connectTimeoutRange = 1...120
    static let commandTimeoutRange = 1...600
    /// Longest accepted value of a one-line field.
    static let maxLineLength = 1024
    /// Longest accepted CA bundle.
    static let maxPEMLength = 60_000

    /// Validates `submission` (the members of `data`) against the stored values.
    /// - Returns: the values to save, or every field error at once.
    func validate(_ submission: [(String, JSONValue)], stored: [String: String]) -> Result<ValidatedSettings, APIError> {
        var errors: [(String, String)] = []
        func fail(_ key: String, _ message: String) { if !errors.contains(where: { $0.0 == key }) { errors.append((key, message)) } }

        var given: [String: String] = [:]
        var password = PasswordChange.unchanged
        var clientSecret = PasswordChange.unchanged
        for (name, value) in submission {
            if SettingsKey.readOnlyFields.contains(name) { continue }
            guard let key = SettingsKey(rawValue: name), key != .settingsVersion else {
                fail(name.count > 64 ? String(name.prefix(64)) : name, "unknown field")
                continue
            }
            let text: String
            switch value {
            case .string(let s): text = s
            case .null: text = ""
            case .number(let n) where [.port, .connectTimeout, .commandTimeout].contains(key):
                guard n == n.rounded(), abs(n) < 1e9 else { fail(name, "must be a whole number"); continue }
                text = String(Int(n))
            default:
                fail(name, [.port, .connectTimeout, .commandTimeout].contains(key) ? "must be a whole number" : "must be a string")
                continue
            }
            if text.utf8.contains(0) { fail(name, "must not contain NUL characters"); continue }
            if key == .tlsCAPEM {
                guard text.utf8.count <= Self.maxPEMLength else { fail(name, "is longer than \(Self.maxPEMLength) bytes"); continue }
                // PEM is multi-line by nature: line breaks are allowed here and only here,
                // stored as LF whatever the client sent (CRLF, or a lone CR as old Macs write).
                given[name] = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
                continue
            }
            if text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) { fail(name, "must not contain line breaks"); continue }
            guard text.utf8.count <= Self.maxLineLength else { fail(name, "is longer than \(Self.maxLineLength) bytes"); continue }
            if key == .password {
                password = text.isEmpty ? .cleared : .encrypted(text)
                continue
            }
            if key == .oauthClientSecret {
                clientSecret = text.isEmpty ? .cleared : .encrypted(text)
                continue
            }
            given[name] = text.trimmingCharacters(in: .whitespaces)
        }

        // Merge: given over stored over defaults.
        var values: [String: String] = [:]
        for key in SettingsKey.plain {
            values[key.rawValue] = given[key.rawValue] ?? stored[key.rawValue] ?? key.defaultValue ?? ""
        }

        func check(_ key: SettingsKey, _ body: (String) -> String?) {
            guard errors.allSatisfy({ $0.0 != key.rawValue }), let v = values[key.rawValue] else { return }
            if let message = body(v) { fail(key.rawValue, message) }
        }

        check(.fromAddress) { v in v.isEmpty ? "is required: the address every email is sent from" : checkAddress(v) }
        check(.host) { v in
            if v.isEmpty { return "is required: the SMTP server's host name or IP address" }
            switch canonicalHost(v) {
            case .failure(let error):
                return HostName.refusal(error)
            case .success(let host):
                // Names are checked after resolution, at connect time; literals now.
                if host.kind != .domainName, let network = IPNetwork.firstContaining(host.ascii, in: deniedNetworks) {
                    return IPNetwork.refusal(address: host.ascii, network: network)
                }
                values[SettingsKey.host.rawValue] = host.ascii
                return nil
            }
        }
        check(.port) { v in
            guard let p = Int(v), String(p) == v, (1...65535).contains(p) else { return "must be a whole number from 1 to 65535" }
            return nil
        }
        func canonicalize(_ key: SettingsKey, _ allowed: [String]) {
            check(key) { v in
                guard let c = SettingsEnumerations.canonical(v.isEmpty ? (key.defaultValue ?? "") : v, in: allowed) else {
                    return "must be one of \(allowed.joined(separator: ", "))"
                }
                values[key.rawValue] = c
                return nil
            }
        }
        canonicalize(.connectionType, SettingsEnumerations.connectionTypes)
        canonicalize(.authenticationType, SettingsEnumerations.authenticationTypes)
        canonicalize(.tlsVerify, SettingsEnumerations.tlsVerifyModes)
        canonicalize(.oauthProvider, SettingsEnumerations.oauthProviders)
        canonicalize(.oauthGrant, SettingsEnumerations.oauthGrants)
        check(.oauthTenant) { v in
            v.isEmpty || (v.count <= 100 && v.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "." || $0 == "-" })
                ? nil : "must be the directory (tenant) ID or a domain such as contoso.onmicrosoft.com: letters, digits, dots and hyphens"
        }
        check(.oauthClientID) { v in
            v.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F } ? nil : "must be the application (client) ID as the provider shows it: no spaces"
        }
        check(.oauthScope) { v in v.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F } ? nil : "must be scopes separated by spaces (ASCII)" }
        for key in [SettingsKey.oauthAuthorizationEndpoint, .oauthTokenEndpoint, .oauthDeviceEndpoint, .oauthRevocationEndpoint] {
            check(key) { v in
                guard !v.isEmpty else { return nil }
                guard let url = URL(string: v), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty,
                      url.user == nil, url.fragment == nil else {
                    return "must be an https:// URL of the authorization server"
                }
                return nil
            }
        }
        check(.tlsPinSHA256) { v in
            if v.isEmpty { return nil }
            guard let normalized = normalizeFingerprint(v) else { return "must be a SHA-256 fingerprint: 64 hex digits (colons allowed)" }
            values[SettingsKey.tlsPinSHA256.rawValue] = normalized
            return nil
        }
        check(.tlsCAPEM) { v in v.isEmpty ? nil : checkCertificatesPEM(v) }
        func checkTimeout(_ key: SettingsKey, _ range: ClosedRange<Int>) {
            check(key) { v in
                guard let t = Int(v), String(t) == v, range.contains(t) else {
                    return "must be a whole number of seconds from \(range.lowerBound) to \(range.upperBound)"
                }
                return nil
            }
        }
        checkTimeout(.connectTimeout, Self.connectTimeoutRange)
        checkTimeout(.commandTimeout, Self.commandTimeoutRange)
        // The SMTP client's rule (SmtpConnection.checkLine): DEL is a control character too.
        check(.username) { v in v.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? "must not contain control characters" : nil }

        // Across fields.
        if values[SettingsKey.tlsVerify.rawValue] == "Pinned", (values[SettingsKey.tlsPinSHA256.rawValue] ?? "").isEmpty {
            fail(SettingsKey.tlsPinSHA256.rawValue, "is required when smtp_tls_verify is Pinned")
        }
        let auth = values[SettingsKey.authenticationType.rawValue] ?? "None"
        if auth != "None", (values[SettingsKey.username.rawValue] ?? "").isEmpty {
            fail(SettingsKey.username.rawValue, SettingsEnumerations.oauthAuthenticationTypes.contains(auth)
                 ? "is required for OAuth 2.0: the mailbox the token sends as" : "is required when smtp_authentication_type is \(auth)")
        }
        if SettingsEnumerations.oauthAuthenticationTypes.contains(auth) {
            let provider = values[SettingsKey.oauthProvider.rawValue] ?? "Microsoft"
            let grant = values[SettingsKey.oauthGrant.rawValue] ?? "authorization_code"
            func require(_ key: SettingsKey, _ why: String) {
                if (values[key.rawValue] ?? "").isEmpty { fail(key.rawValue, "is required \(why)") }
            }
            require(.oauthClientID, "for OAuth 2.0: the application (client) ID registered at the provider")
            if provider == "Microsoft" { require(.oauthTenant, "for Microsoft 365: the directory (tenant) ID or domain") }
            if provider == "Generic" {
                require(.oauthTokenEndpoint, "for a Generic provider")
                if grant == "authorization_code" { require(.oauthAuthorizationEndpoint, "for a Generic provider signing in as a user") }
            }
            if provider == "Google", grant == "client_credentials" {
                fail(SettingsKey.oauthGrant.rawValue, "client_credentials is not offered by Google for SMTP; choose authorization_code (Sign in with Google)")
            }
        }

        guard errors.isEmpty else { return .failure(APIError(status: 400, errors: errors)) }
        var warned = warnings(for: values, password: password, stored: stored)
        if SettingsEnumerations.oauthAuthenticationTypes.contains(auth), values[SettingsKey.oauthGrant.rawValue] == "client_credentials" {
            let hasSecret: Bool
            switch clientSecret {
            case .encrypted: hasSecret = true
            case .cleared: hasSecret = false
            case .unchanged: hasSecret = !(stored[SettingsKey.oauthClientSecret.rawValue] ?? "").isEmpty
            }
            if !hasSecret {
                warned.append((SettingsKey.oauthClientSecret.rawValue, "App-only sign-in (client credentials) needs the client secret of the application; none is set."))
            }
        }
        return .success(ValidatedSettings(values: values, password: password, clientSecret: clientSecret, warnings: warned))
    }

    /// Valid but probably wrong: said in the answer, never blocking a save.
    func warnings(for values: [String: String], password: PasswordChange, stored: [String: String]) -> [(String, String)] {
        var w: [(String, String)] = []
        let port = values[SettingsKey.port.rawValue] ?? "25"
        let type = values[SettingsKey.connectionType.rawValue] ?? "None"
        let auth = values[SettingsKey.authenticationType.rawValue] ?? "None"
        if port == "465", type == "STARTTLS" || type == "None" {
            w.append((SettingsKey.connectionType.rawValue, "Port 465 normally expects SSL/TLS (implicit TLS), not \(type == "None" ? "a plain connection" : "STARTTLS")."))
        }
        if port == "587", type == "SSL" || type == "TLS" {
            w.append((SettingsKey.connectionType.rawValue, "Port 587 normally expects STARTTLS, not SSL/TLS."))
        }
        if auth == "Plain" || auth == "Login", type == "None" {
            w.append((SettingsKey.authenticationType.rawValue, "With connection type None the password may cross the network unencrypted if the server does not offer STARTTLS; choose STARTTLS or SSL/TLS."))
        }
        if values[SettingsKey.tlsVerify.rawValue] == "None" {
            w.append((SettingsKey.tlsVerify.rawValue, "Certificate verification is off: anyone between this system and the server can read the password and the mail. Prefer Full, or Pinned for a self-signed server."))
        }
        let hasPassword: Bool
        switch password {
        case .encrypted: hasPassword = true
        case .cleared: hasPassword = false
        case .unchanged: hasPassword = !(stored[SettingsKey.password.rawValue] ?? "").isEmpty
        }
        if auth != "None", !SettingsEnumerations.oauthAuthenticationTypes.contains(auth), !hasPassword {
            w.append((SettingsKey.password.rawValue, "Authentication \(auth) is chosen but no password is set."))
        }
        return w
    }

    // MARK: - Checks from the Smtp module, so the form and the client agree

    static let smtpAddressCheck: @Sendable (String) -> String? = { v in
        switch EmailAddress.validate(v) {
        case .success: return nil
        case .failure(let e): return "is not a valid email address: \(e.reason)"
        }
    }

    /// Stored as `HostName.ascii`: no trailing dot, A-labels, dotted-quad IPv4,
    /// compressed IPv6 — what `SmtpConnection` resolves, sends as SNI and verifies.
    static let smtpCanonicalHost: @Sendable (String) -> Result<HostName, ValidationError> = { v in
        HostName.validate(v)
    }

    /// Parsed by OpenSSL, as the SMTP client will load them.
    static let smtpCertificatesCheck: @Sendable (String) -> String? = { pem in
        do {
            try SmtpClient.validateCertificatesPEM(pem)
            return nil
        } catch let error as SmtpError {
            return "must be PEM certificates (-----BEGIN CERTIFICATE-----): \(error.hint)"
        } catch {
            return "must be PEM certificates (-----BEGIN CERTIFICATE-----)"
        }
    }

    static let smtpFingerprint: @Sendable (String) -> String? = { v in
        try? SHA256Fingerprint.validate(v).get().hex
    }
}
