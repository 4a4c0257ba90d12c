import Smtp

/// What kind of value a setting holds; decides the page's input and the grammar the
/// validator applies (`GET /api/setup/email_smtp/schema` serves the raw value).
enum SettingType: String, Sendable {
    /// One line of text.
    case string
    /// Several lines (the CA bundle, PEM).
    case text
    /// A whole number in `SettingField.range`.
    case integer
    /// One of `SettingField.choices`.
    case enumeration = "enum"
    /// A host name or IP address (``HostName``).
    case host
    /// An email address (``EmailAddress``).
    case email
    /// A SHA-256 certificate fingerprint (``SHA256Fingerprint``).
    case fingerprint
    /// An https:// URL.
    case url
    /// Sent encrypted, stored sealed, never returned.
    case secret
}

/// One value the page may offer for an enumerated setting, with the page's words.
struct SettingChoice: Sendable {
    var value: String
    var label: String
}

/// One setting: everything about it that the validator, the mapper, the GET view and
/// the page need, in one place.
struct SettingField: Sendable {
    var key: SettingsKey
    var type: SettingType
    /// The value before anyone saved one; nil for a setting without default (required).
    var defaultValue: String?
    /// For integers: the accepted range.
    var range: ClosedRange<Int>? = nil
    /// For enumerations: the values offered, in the page's order, with their labels.
    var choices: [SettingChoice] = []
    /// Other stored spellings accepted and kept as they are (`TLS` beside `SSL`).
    var alsoAccepted: [String] = []
    /// Required whatever the other settings say (the conditional requirements are the validator's).
    var required = false
    /// The page's label: messages name the field with it.
    var label: String
    /// The page's help text under the field.
    var help: String

    /// Sent encrypted, stored sealed, never returned.
    var secret: Bool { type == .secret }
    /// Line breaks allowed (stored as LF).
    var multiline: Bool { type == .text }
    /// The longest value accepted, in UTF-8 bytes.
    var maxLength: Int { multiline ? SettingsSchema.maxPEMLength : SettingsSchema.maxLineLength }
    /// Every spelling the validator accepts (case-insensitively) for an enumeration.
    var acceptedValues: [String] { choices.map(\.value) + alsoAccepted }
}

/// The one description of the SMTP settings, in the page's order. `SettingsKey`'s
/// defaults, `SettingsEnumerations`, the validator's per-field rules, the GET view,
/// the mapper and the page (through `GET …/email_smtp/schema`) all read it.
enum SettingsSchema {
    /// Longest accepted value of a one-line field, bytes.
    static let maxLineLength = 1024
    /// Longest accepted CA bundle, bytes.
    static let maxPEMLength = 60_000
    /// The port range: ``PortNumber``'s, the one place it is checked.
    static let portRange = Int(PortNumber.range.lowerBound)...Int(PortNumber.range.upperBound)

    /// Every writable setting, in the order the page shows them.
    static let fields: [SettingField] = [
        SettingField(key: .fromAddress, type: .email, defaultValue: nil, required: true, label: "From address",
                     help: "The address every email is sent from. Many providers accept only addresses or domains you have verified with them."),
        SettingField(key: .host, type: .host, defaultValue: nil, required: true, label: "SMTP server",
                     help: "Host name or IP address (IPv4 or IPv6) of the server that accepts your mail."),
        SettingField(key: .port, type: .integer, defaultValue: "25", range: portRange, label: "Port",
                     help: "Usually 587, 465 or 25."),
        SettingField(key: .connectionType, type: .enumeration, defaultValue: "None", choices: [
            SettingChoice(value: "STARTTLS", label: "STARTTLS, required (port 587)"),
            SettingChoice(value: "SSL", label: "SSL/TLS from the start (port 465)"),
            SettingChoice(value: "None", label: "None: STARTTLS if offered (port 25)"),
        ], alsoAccepted: ["TLS"], label: "Connection security",
                     help: "How the connection is encrypted. STARTTLS starts plain and must switch to encryption (usually port 587); SSL/TLS is encrypted from the first byte (usually port 465). “None” still upgrades to STARTTLS when the server offers it, but carries on unencrypted when it does not."),
        SettingField(key: .tlsVerify, type: .enumeration, defaultValue: "Full", choices: [
            SettingChoice(value: "Full", label: "Full: trusted CA and host name"),
            SettingChoice(value: "Pinned", label: "Pinned: this certificate only"),
            SettingChoice(value: "None", label: "None: accept any (unsafe)"),
        ], label: "Certificate check",
                     help: "Full checks that a trusted certificate authority signed the certificate and that it names this host: right for public providers. Pinned suits a server with a self-signed certificate: “Check connection” shows its fingerprint with a one-click “Trust this certificate”."),
        SettingField(key: .tlsPinSHA256, type: .fingerprint, defaultValue: "", label: "Certificate fingerprint",
                     help: "The SHA-256 fingerprint of the server’s certificate: 64 hex digits, with or without colons."),
        SettingField(key: .authenticationType, type: .enumeration, defaultValue: "None", choices: [
            SettingChoice(value: "Auto", label: "Automatic (strongest offered)"),
            SettingChoice(value: "XOAUTH2", label: "OAuth 2.0 (XOAUTH2)"),
            SettingChoice(value: "OAUTHBEARER", label: "OAuth 2.0 (OAUTHBEARER)"),
            SettingChoice(value: "Plain", label: "PLAIN"),
            SettingChoice(value: "Login", label: "LOGIN"),
            SettingChoice(value: "Cram_MD5", label: "CRAM-MD5"),
            SettingChoice(value: "None", label: "None: no sign-in"),
        ], label: "Sign-in method",
                     help: "Automatic fits almost every server that takes a password: it uses the strongest method the server offers. OAuth 2.0 signs in with a token from Microsoft 365, Google or another provider instead of a password (XOAUTH2 for Microsoft 365 and Google; OAUTHBEARER is the standard, RFC 7628). Choose None for a relay that trusts this machine by its address."),
        SettingField(key: .username, type: .string, defaultValue: "", label: "User name",
                     help: "Usually the full email address; “apikey” for SendGrid. Required unless the sign-in method is None."),
        SettingField(key: .password, type: .secret, defaultValue: "", label: "Password",
                     help: "Encrypted in this browser before it is sent. It is never shown again, not even to administrators."),
        SettingField(key: .oauthProvider, type: .enumeration, defaultValue: "Microsoft", choices: [
            SettingChoice(value: "Microsoft", label: "Microsoft 365"),
            SettingChoice(value: "Google", label: "Google (Gmail, Workspace)"),
            SettingChoice(value: "Generic", label: "Other OAuth 2.0 server"),
        ], label: "Provider", help: "Who issues the tokens."),
        SettingField(key: .oauthGrant, type: .enumeration, defaultValue: "authorization_code", choices: [
            SettingChoice(value: "authorization_code", label: "Sign in as a user"),
            SettingChoice(value: "client_credentials", label: "App-only (no user)"),
        ], label: "How this system gets its tokens",
                     help: "“Sign in as a user”: a person signs in once here; the tokens renew themselves. “App-only”: the application’s own secret, nobody signs in."),
        SettingField(key: .oauthTenant, type: .string, defaultValue: "", label: "Tenant (directory) ID or domain",
                     help: "In the Microsoft Entra admin center: Overview → Tenant ID, or one of your organisation’s domains."),
        SettingField(key: .oauthClientID, type: .string, defaultValue: "", label: "Client ID",
                     help: "The application (client) ID of the registered application."),
        SettingField(key: .oauthClientSecret, type: .secret, defaultValue: "", label: "Client secret",
                     help: "The secret’s value (not its ID). Encrypted in this browser before it is sent, like the password, and never shown again."),
        SettingField(key: .oauthScope, type: .string, defaultValue: "", label: "Scope",
                     help: "Leave empty for the provider’s usual scope, shown greyed in the field."),
        SettingField(key: .oauthAuthorizationEndpoint, type: .url, defaultValue: "", label: "Authorization endpoint",
                     help: "Where the browser signs in. Needed for “Sign in as a user”."),
        SettingField(key: .oauthTokenEndpoint, type: .url, defaultValue: "", label: "Token endpoint",
                     help: "Where this system gets and renews its tokens."),
        SettingField(key: .oauthDeviceEndpoint, type: .url, defaultValue: "", label: "Device authorization endpoint",
                     help: "For signing in from the command line (emailsetup oauth login)."),
        SettingField(key: .oauthRevocationEndpoint, type: .url, defaultValue: "", label: "Revocation endpoint",
                     help: "Lets “Sign out” cancel the token at the server too."),
        SettingField(key: .connectTimeout, type: .integer, defaultValue: "10", range: 1...120, label: "Connect timeout",
                     help: "How long to wait for the server to answer at all: 1–120. Default 10."),
        SettingField(key: .commandTimeout, type: .integer, defaultValue: "30", range: 1...600, label: "Command timeout",
                     help: "How long to wait for each reply once connected: 1–600. Default 30."),
        SettingField(key: .tlsCAPEM, type: .text, defaultValue: "", label: "Extra trusted certificate authorities",
                     help: "For a server whose certificate comes from your organisation’s own CA. Trusted in addition to the system’s authorities, with the Full check."),
    ]

    private static let byKey: [SettingsKey: SettingField] = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0) })

    /// The field of `key`; the version (not writable) has none.
    static func field(_ key: SettingsKey) -> SettingField? { byKey[key] }

    /// The page's label of `key`, or the key itself for one the page does not show.
    static func label(_ key: SettingsKey) -> String { byKey[key]?.label ?? key.rawValue }

    /// The label of a field named in an answer (`smtp_port` → "Port"); unknown names stay as they are.
    static func label(named name: String) -> String { SettingsKey(rawValue: name).map(label) ?? name }

    /// The page's label of one value of an enumeration ("Login" → "LOGIN"), without the
    /// explanation after a colon, comma or parenthesis ("Automatic (strongest offered)" →
    /// "Automatic", "None: no sign-in" → "None"), for naming it inside a sentence.
    static func valueLabel(_ key: SettingsKey, _ value: String) -> String {
        guard let choice = byKey[key]?.choices.first(where: { $0.value == value }) else { return value }
        let label = choice.label
        let cut = [label.firstIndex(of: ":"), label.firstIndex(of: ","), label.firstRange(of: " (")?.lowerBound].compactMap { $0 }.min()
        return String(label[..<(cut ?? label.endIndex)])
    }

    /// The schema as `GET /api/setup/email_smtp/schema` serves it.
    static var json: JSONValue {
        .object([("fields", .array(fields.map { field in
            var members: [(String, JSONValue)] = [
                ("key", .string(field.key.rawValue)), ("type", .string(field.type.rawValue)),
                ("default", field.defaultValue.map { .string($0) } ?? .null),
            ]
            if let range = field.range {
                members += [("min", .number(Double(range.lowerBound))), ("max", .number(Double(range.upperBound)))]
            }
            if !field.choices.isEmpty {
                // short_label: valueLabel's cut, served so the page's messages need no copy of the rule.
                members.append(("values", .array(field.choices.map {
                    .object([("value", .string($0.value)), ("label", .string($0.label)),
                             ("short_label", .string(valueLabel(field.key, $0.value)))])
                })))
            }
            if !field.alsoAccepted.isEmpty { members.append(("also_accepted", .array(field.alsoAccepted.map { .string($0) }))) }
            members += [
                ("required", .bool(field.required)), ("secret", .bool(field.secret)),
                ("label", .string(field.label)), ("help", .string(field.help)),
                ("max_length", .number(Double(field.maxLength))), ("multiline", .bool(field.multiline)),
            ]
            return .object(members)
        }))])
    }
}
