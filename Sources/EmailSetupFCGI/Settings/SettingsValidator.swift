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
/// store (input merged over what is stored, then defaults), the typed settings, the
/// password change, and warnings for combinations that are valid but probably wrong.
struct ValidatedSettings: Sendable {
    /// Every writable key except the password, in canonical form.
    var values: [String: String]
    /// The same settings as one typed value.
    var settings: EmailSettings
    var password: PasswordChange
    /// What the submission asks for `oauth_client_secret` (same rules as the password).
    var clientSecret: PasswordChange = .unchanged
    /// Field → message, for combinations that work but are likely mistakes.
    var warnings: [(String, String)]
}

/// A submission the validator refuses: every field error at once (a 400 for a save).
struct SettingsRefusal: Error, Sendable {
    /// Field → message, in the page's order.
    var errors: [(String, String)]
}

/// Input the validator recognises as misplaced (`smtp.example.com:587` in the server
/// field), with the field values that repair it and a note for the person.
struct SettingsFix: Sendable {
    /// Field → value, in the order the page should apply them.
    var set: [(String, String)]
    var note: String
}

/// Everything the validator found, valid or not: what `POST …/validate` answers.
struct SettingsCheck: Sendable {
    /// Every writable key except the secrets: canonical where valid, else as given.
    var values: [String: String]
    var password: PasswordChange
    var clientSecret: PasswordChange
    /// Field → message, in the page's order.
    var errors: [(String, String)]
    /// Field → message; computed from the fields that are valid, even when others are not.
    var warnings: [(String, String)]
    var fixes: [(String, SettingsFix)]
    /// The typed settings, when there are no errors.
    var settings: EmailSettings?

    var isValid: Bool { errors.isEmpty && settings != nil }
}

/// Checks a settings submission field by field and across fields, reporting every
/// problem at once, keyed by field, in whole sentences that name fields with the
/// page's labels (``SettingsSchema``).
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

    static let connectTimeoutRange = SettingsSchema.field(.connectTimeout)!.range!
    static let commandTimeoutRange = SettingsSchema.field(.commandTimeout)!.range!
    /// Longest accepted value of a one-line field.
    static let maxLineLength = SettingsSchema.maxLineLength
    /// Longest accepted CA bundle.
    static let maxPEMLength = SettingsSchema.maxPEMLength

    /// Validates `submission` (the members of `data`) against the stored values.
    /// - Returns: the values to save, or every field error at once.
    func validate(_ submission: [(String, JSONValue)], stored: [String: String]) -> Result<ValidatedSettings, SettingsRefusal> {
        let result = check(submission, stored: stored)
        guard result.errors.isEmpty, let settings = result.settings else { return .failure(SettingsRefusal(errors: result.errors)) }
        return .success(ValidatedSettings(values: result.values, settings: settings, password: result.password,
                                          clientSecret: result.clientSecret, warnings: result.warnings))
    }

    /// Checks `submission` without deciding: errors, warnings, fixes and the values a
    /// save would store (the dry run of `POST …/email_smtp/validate`).
    func check(_ submission: [(String, JSONValue)], stored: [String: String]) -> SettingsCheck {
        var errors: [(String, String)] = []
        func fail(_ key: String, _ message: String) { if !errors.contains(where: { $0.0 == key }) { errors.append((key, message)) } }
        func label(_ key: SettingsKey) -> String { SettingsSchema.label(key) }
        let numeric: Set<SettingsKey> = Set(SettingsSchema.fields.filter { $0.type == .integer }.map(\.key))

        var given: [String: String] = [:]
        var password = PasswordChange.unchanged
        var clientSecret = PasswordChange.unchanged
        for (name, value) in submission {
            if SettingsKey.readOnlyFields.contains(name) { continue }
            guard let key = SettingsKey(rawValue: name), let field = SettingsSchema.field(key) else {
                let shown = name.count > 64 ? String(name.prefix(64)) : name
                fail(shown, "“\(shown)” is not a setting this server knows; check its spelling.")
                continue
            }
            let text: String
            switch value {
            case .string(let s): text = s
            case .null: text = ""
            case .number(let n) where numeric.contains(key):
                guard n == n.rounded(), abs(n) < 1e9 else { fail(name, "\(field.label) must be a whole number."); continue }
                text = String(Int(n))
            default:
                fail(name, numeric.contains(key) ? "\(field.label) must be a whole number." : "\(field.label) must be text (a JSON string).")
                continue
            }
            if text.utf8.contains(0) { fail(name, "\(field.label) must not contain NUL characters."); continue }
            if field.multiline {
                guard text.utf8.count <= field.maxLength else { fail(name, "\(field.label) is longer than \(field.maxLength) bytes."); continue }
                // PEM is multi-line by nature: line breaks are allowed here and only here,
                // stored as LF whatever the client sent (CRLF, or a lone CR as old Macs write).
                given[name] = text.replacing("\r\n", with: "\n").replacing("\r", with: "\n")
                continue
            }
            if text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) {
                fail(name, "\(field.label) must be on one line (no line breaks)."); continue
            }
            guard text.utf8.count <= field.maxLength else { fail(name, "\(field.label) is longer than \(field.maxLength) bytes."); continue }
            if key == .password {
                password = text.isEmpty ? .cleared : .encrypted(text)
                continue
            }
            if key == .oauthClientSecret {
                clientSecret = text.isEmpty ? .cleared : .encrypted(text)
                continue
            }
            given[name] = text.trimmingSpaces()
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

        var fixes: [(String, SettingsFix)] = []
        check(.fromAddress) { v in
            if v.isEmpty { return "\(label(.fromAddress)) is required: the address every email is sent from." }
            return checkAddress(v).map { "\(label(.fromAddress)) \(Self.sentence($0))" }
        }
        check(.host) { v in
            if v.isEmpty { return "\(label(.host)) is required: the host name or IP address of the server that accepts your mail." }
            if let (fix, message) = misplacedHost(v) {
                fixes.append((SettingsKey.host.rawValue, fix))
                return message
            }
            switch canonicalHost(v) {
            case .failure(let error):
                return "\(label(.host)) \(Self.sentence(HostName.refusal(error)))"
            case .success(let host):
                // Names are checked after resolution, at connect time; literals now.
                if host.kind != .domainName, let network = IPNetwork.firstContaining(host.ascii, in: deniedNetworks) {
                    return Self.sentence(IPNetwork.refusal(address: host.ascii, network: network))
                }
                values[SettingsKey.host.rawValue] = host.ascii
                return nil
            }
        }
        check(.port) { v in
            switch PortNumber.validate(v) {
            case .success: return nil
            case .failure(let error):
                let range = "\(label(.port)) must be a whole number from \(SettingsSchema.portRange.lowerBound) to \(SettingsSchema.portRange.upperBound)"
                return error.code == .outOfRange || error.code == .empty ? range + "." : "\(range) (\(error.reason))."
            }
        }
        for field in SettingsSchema.fields where field.type == .enumeration {
            let key = field.key
            check(key) { v in
                guard let c = SettingsEnumerations.canonical(v.isEmpty ? (key.defaultValue ?? "") : v, in: field.acceptedValues) else {
                    return "\(field.label) must be one of \(field.acceptedValues.joined(separator: ", ")), not “\(v.prefix(40))”."
                }
                values[key.rawValue] = c
                return nil
            }
        }
        check(.oauthTenant) { v in
            v.isEmpty || (v.count <= 100 && v.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "-" })
                ? nil : "\(label(.oauthTenant)) must be the ID as the Entra admin center shows it or a domain such as contoso.onmicrosoft.com: letters, digits, dots and hyphens."
        }
        check(.oauthClientID) { v in
            v.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F } ? nil
                : "\(label(.oauthClientID)) must be the application (client) ID as the provider shows it, without spaces."
        }
        check(.oauthScope) { v in
            v.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F } ? nil : "\(label(.oauthScope)) must be scopes separated by spaces, in ASCII."
        }
        for field in SettingsSchema.fields where field.type == .url {
            check(field.key) { v in
                guard !v.isEmpty else { return nil }
                guard let url = URL(string: v), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty,
                      url.user == nil, url.fragment == nil else {
                    return "\(field.label) must be an https:// URL of the authorization server."
                }
                return nil
            }
        }
        check(.tlsPinSHA256) { v in
            if v.isEmpty { return nil }
            guard let normalized = normalizeFingerprint(v) else {
                return "\(label(.tlsPinSHA256)) must be a SHA-256 fingerprint: 64 hex digits (colons allowed)."
            }
            values[SettingsKey.tlsPinSHA256.rawValue] = normalized
            return nil
        }
        check(.tlsCAPEM) { v in v.isEmpty ? nil : checkCertificatesPEM(v).map { "\(label(.tlsCAPEM)) \(Self.sentence($0))" } }
        for field in SettingsSchema.fields where field.type == .integer && field.key != .port {
            guard let range = field.range else { continue }
            check(field.key) { v in
                guard let t = Int(v), String(t) == v, range.contains(t) else {
                    return "\(field.label) must be a whole number of seconds from \(range.lowerBound) to \(range.upperBound)."
                }
                return nil
            }
        }
        // The SMTP client's rule (SmtpConnection.checkLine): DEL is a control character too.
        check(.username) { v in
            v.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? "\(label(.username)) must not contain control characters." : nil
        }

        // Across fields.
        if values[SettingsKey.tlsVerify.rawValue] == "Pinned", (values[SettingsKey.tlsPinSHA256.rawValue] ?? "").isEmpty {
            fail(SettingsKey.tlsPinSHA256.rawValue,
                 "\(label(.tlsPinSHA256)) is required when \(label(.tlsVerify)) is Pinned: the SHA-256 fingerprint of the server’s certificate.")
        }
        let auth = values[SettingsKey.authenticationType.rawValue] ?? "None"
        if auth != "None", (values[SettingsKey.username.rawValue] ?? "").isEmpty {
            fail(SettingsKey.username.rawValue, SettingsEnumerations.oauthAuthenticationTypes.contains(auth)
                 ? "\(label(.username)) is required for OAuth 2.0: the mailbox the token sends as."
                 : "\(label(.username)) is required when the \(label(.authenticationType)) is \(SettingsSchema.valueLabel(.authenticationType, auth)).")
        }
        if SettingsEnumerations.oauthAuthenticationTypes.contains(auth) {
            let provider = values[SettingsKey.oauthProvider.rawValue] ?? "Microsoft"
            let grant = values[SettingsKey.oauthGrant.rawValue] ?? "authorization_code"
            func require(_ key: SettingsKey, _ why: String) {
                if (values[key.rawValue] ?? "").isEmpty { fail(key.rawValue, "\(label(key)) is required \(why).") }
            }
            require(.oauthClientID, "for OAuth 2.0: the application (client) ID registered at the provider")
            if provider == "Microsoft" { require(.oauthTenant, "for Microsoft 365: Microsoft Entra admin center, Overview → Tenant ID") }
            if provider == "Generic" {
                require(.oauthTokenEndpoint, "for another OAuth provider: the full https:// URL where tokens are issued")
                if grant == "authorization_code" {
                    require(.oauthAuthorizationEndpoint, "for another OAuth provider when a user signs in: the full https:// URL of its sign-in page")
                }
            }
            if provider == "Google", grant == "client_credentials" {
                fail(SettingsKey.oauthGrant.rawValue, "Google offers no app-only sign-in (client credentials) for SMTP; choose “Sign in as a user” (Sign in with Google).")
            }
        }

        let order = Dictionary(uniqueKeysWithValues: SettingsSchema.fields.enumerated().map { ($0.element.key.rawValue, $0.offset) })
        let rank = { (key: String) in order[key] ?? Int.max }
        errors = errors.enumerated().sorted { (rank($0.element.0), $0.offset) < (rank($1.element.0), $1.offset) }.map(\.element)

        let errored = Set(errors.map(\.0))
        var warned = warnings(for: values, password: password, stored: stored, errored: errored)
        if SettingsEnumerations.oauthAuthenticationTypes.contains(auth), values[SettingsKey.oauthGrant.rawValue] == "client_credentials",
           !errored.contains(SettingsKey.oauthGrant.rawValue), !errored.contains(SettingsKey.authenticationType.rawValue) {
            let hasSecret: Bool
            switch clientSecret {
            case .encrypted: hasSecret = true
            case .cleared: hasSecret = false
            case .unchanged: hasSecret = !(stored[SettingsKey.oauthClientSecret.rawValue] ?? "").isEmpty
            }
            if !hasSecret {
                warned.append((SettingsKey.oauthClientSecret.rawValue,
                               "App-only sign-in (client credentials) needs the \(label(.oauthClientSecret).lowercased()) of the application; none is set."))
            }
        }
        var settings: EmailSettings?
        if errors.isEmpty {
            do {
                settings = try EmailSettings(stored: values)
            } catch {
                // The checks above and the typed value disagree: refuse rather than store what cannot be used.
                errors.append((error.field, error.message))
            }
        }
        return SettingsCheck(values: values, password: password, clientSecret: clientSecret, errors: errors,
                             warnings: warned, fixes: fixes, settings: settings)
    }

    /// Valid but probably wrong: said in the answer, never blocking a save. A warning
    /// that reads a field with an error (`errored`) is left out.
    func warnings(for values: [String: String], password: PasswordChange, stored: [String: String],
                  errored: Set<String> = []) -> [(String, String)] {
        var w: [(String, String)] = []
        func ok(_ keys: SettingsKey...) -> Bool { keys.allSatisfy { !errored.contains($0.rawValue) } }
        func label(_ key: SettingsKey) -> String { SettingsSchema.label(key) }
        let port = values[SettingsKey.port.rawValue] ?? "25"
        let type = values[SettingsKey.connectionType.rawValue] ?? "None"
        let auth = values[SettingsKey.authenticationType.rawValue] ?? "None"
        if ok(.port, .connectionType), port == "465", type == "STARTTLS" || type == "None" {
            w.append((SettingsKey.connectionType.rawValue,
                      "Port 465 normally expects SSL/TLS (encrypted from the start), not \(type == "None" ? "a plain connection" : "STARTTLS"); set \(label(.connectionType)) to SSL/TLS."))
        }
        if ok(.port, .connectionType), port == "587", type == "SSL" || type == "TLS" {
            w.append((SettingsKey.connectionType.rawValue, "Port 587 normally expects STARTTLS, not SSL/TLS; set \(label(.connectionType)) to STARTTLS."))
        }
        if ok(.authenticationType, .connectionType), auth == "Plain" || auth == "Login", type == "None" {
            w.append((SettingsKey.authenticationType.rawValue,
                      "With \(label(.connectionType)) None the password may cross the network unencrypted when the server does not offer STARTTLS; choose STARTTLS or SSL/TLS."))
        }
        if ok(.tlsVerify), values[SettingsKey.tlsVerify.rawValue] == "None" {
            w.append((SettingsKey.tlsVerify.rawValue, "\(label(.tlsVerify)) is None, so verification is off: anyone between this system and the server can read the password and the mail. Prefer Full, or Pinned for a self-signed server."))
        }
        let hasPassword: Bool
        switch password {
        case .encrypted: hasPassword = true
        case .cleared: hasPassword = false
        case .unchanged: hasPassword = !(stored[SettingsKey.password.rawValue] ?? "").isEmpty
        }
        if ok(.authenticationType), auth != "None", !SettingsEnumerations.oauthAuthenticationTypes.contains(auth), !hasPassword {
            w.append((SettingsKey.password.rawValue,
                      "\(label(.authenticationType)) \(SettingsSchema.valueLabel(.authenticationType, auth)) is chosen but no password is set."))
        }
        return w
    }

    /// A message from a lower layer ("is not a valid email address: …") as the end of
    /// a sentence: a full stop added when it has none.
    static func sentence(_ text: String) -> String {
        var text = text
        if !(text.hasSuffix(".") || text.hasSuffix("?") || text.hasSuffix("!")) { text += "." }
        return text
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
