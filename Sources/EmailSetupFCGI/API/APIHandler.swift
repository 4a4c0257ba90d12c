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
import DomainCheck
import Logging
import Smtp
import Storage

/// The whole HTTP API as one function from `Request` to `Response`.
///
/// Each worker thread owns one handler (and through it one database connection);
/// the FastCGI and CGI adapters only translate bytes to `Request` and `Response`
/// back, so everything here is testable without a socket:
///
/// ```swift
/// let handler = APIHandler(repository: InMemorySettings(), logger: logger)
/// let response = handler.handle(Request(method: "GET", path: "/api/setup/email_smtp", remoteUser: "admin"))
/// ```
struct APIHandler {
    /// Bodies larger than this get 413 (``Request/bodyLimit``).
    static let bodyLimit = Request.bodyLimit
    static let prefix = "/api/setup/"

    var policy = AccessPolicy()
    var repository: SettingsRepository
    var vault: PasswordVault?
    var validator = SettingsValidator()
    var smtp: SmtpOperations = LiveSmtp()
    var limits = TestRateLimits()
    /// SMTP sessions that may run at once (shared by every worker of the process).
    var smtpCapacity: SmtpCapacity = SmtpSlots(capacity: 4)
    /// Seconds one SMTP session may take, whatever the saved timeouts (`smtp_session_limit`).
    var sessionLimit: Double = 170
    /// OAuth state on this worker's connection (sign-ins under way); nil: OAuth is off.
    var oauthStore: OAuthTokenStore?
    /// `public_url`, endpoint override and CA file for OAuth 2.0.
    var oauthOptions = OAuthOptions()
    /// How long a nonce from GET email_public_key stays usable, seconds.
    var transportNonceLifetime: TimeInterval = SettingsStore.defaultTransportNonceLifetime
    /// The responder's `smtp_denied_networks`: refused at save time (IP literals) and
    /// by every SMTP session (every resolved address).
    var deniedNetworks: [IPNetwork] = []
    /// DNS servers, CA file and ports of `POST /api/setup/email_discover/{address}`.
    var discovery = DiscoverySetup()
    /// Called after every committed save or restore with the new version (fire and forget).
    var settingsCommitted: (Int) -> Void = { _ in }
    /// The resolver of the domain check (POST email_domain_check, a test email's
    /// `domain_check`); nil: the check answers that no resolver is configured.
    var domainCheckDNS: (any DomainCheckDNS)?
    /// Names this system in test emails (the host name by default).
    var systemName = ProcessInfo.processInfo.hostName
    var logger: Logger
    /// Logs database outages once, then as counts (shared by the process's workers).
    var storageOutage: StorageOutageLog

    init(policy: AccessPolicy = AccessPolicy(), repository: SettingsRepository, vault: PasswordVault? = nil,
         validator: SettingsValidator = SettingsValidator(), logger: Logger) {
        self.policy = policy
        self.repository = repository
        self.vault = vault
        self.validator = validator
        self.logger = logger
        self.storageOutage = StorageOutageLog(logger: logger)
    }

    /// Answers one request. Never throws: every failure becomes a JSON error.
    func handle(_ request: Request) -> Response {
        do {
            return try route(request)
        } catch let error as APIError {
            if error.status == 403, let (topic, _) = error.errors.first, topic == "auth" || topic == "csrf" {
                // Thrown by authorize and checkCSRF; a flood of them is one row a minute.
                auditRefusal("access.refused", topic == "auth" ? "not_admin" : "csrf", request.remoteUser ?? "anonymous", request,
                             nil, detail: [("method", .string(request.method)), ("path", .string(String(request.path.prefix(200))))])
            }
            return error.response
        } catch let error as StorageError where error.code == .unavailable {
            // Logged once per outage, then as counts (StorageOutageLog), not per request.
            storageOutage.requestFailed(error: error, path: request.path)
            return ErrorResponses.response(for: error, logger: logger)
        } catch {
            // Every other error's status is decided in ErrorResponses.
            var logger = self.logger
            logger[metadataKey: "path"] = "\(request.path)"
            return ErrorResponses.response(for: error, logger: logger)
        }
    }

    /// The endpoints, by path segments after /api/setup/.
    private enum Endpoint {
        case settings, settingsSchema, validateSettings, test(address: String), check, domainCheck, publicKey, history, restore(version: Int), audit, health
        case discover(address: String)
        case oauth(OAuthAction)
    }

    private func route(_ request: Request) throws -> Response {
        let actor = try authorize(request)
        guard request.path.hasPrefix(Self.prefix) else { throw APIError.notFound }
        let rest = request.path.dropFirst(Self.prefix.count)
        let segments = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)

        let endpoint: Endpoint
        let allowed: [String]
        switch segments.count == 1 || (segments.count == 2 && segments[1].isEmpty) ? segments[0] : "" {
        case "email_smtp": endpoint = .settings; allowed = ["GET", "POST"]
        case "email_check": endpoint = .check; allowed = ["POST"]
        case "email_domain_check": endpoint = .domainCheck; allowed = ["POST"]
        case "email_public_key": endpoint = .publicKey; allowed = ["GET"]
        case "email_history": endpoint = .history; allowed = ["GET"]
        case "email_audit": endpoint = .audit; allowed = ["GET"]
        case "health": endpoint = .health; allowed = ["GET"]
        default:
            if segments.count == 2, segments[0] == "email_smtp", segments[1] == "schema" {
                endpoint = .settingsSchema; allowed = ["GET"]
            } else if segments.count == 2, segments[0] == "email_smtp", segments[1] == "validate" {
                endpoint = .validateSettings; allowed = ["POST"]
            } else if segments.count == 2, segments[0] == "email_test" {
                guard let address = segments[1].percentDecoded, !address.isEmpty else { throw APIError.notFound }
                endpoint = .test(address: address); allowed = ["POST"]
            } else if segments.count == 2, segments[0] == "email_discover" {
                guard let address = segments[1].percentDecoded, !address.isEmpty else { throw APIError.notFound }
                endpoint = .discover(address: address); allowed = ["POST"]
            } else if segments.count >= 2, segments[0] == "oauth",
                      let action = OAuthAction(rawValue: segments.dropFirst().joined(separator: "/")) {
                endpoint = .oauth(action); allowed = [action.method]
            } else if segments.count == 3, segments[0] == "email_history", segments[2] == "restore" {
                guard let version = Int(segments[1]), version > 0 else {
                    throw APIError(404, "version", "History versions are positive whole numbers.")
                }
                endpoint = .restore(version: version); allowed = ["POST"]
            } else {
                throw APIError.notFound
            }
        }
        let method = request.method == "HEAD" ? "GET" : request.method
        guard allowed.contains(method) else { throw APIError.methodNotAllowed(allowed) }
        if method == "POST" { try checkCSRF(request) }
        guard request.declaredContentLength <= Self.bodyLimit, request.body.count <= Self.bodyLimit else {
            throw APIError.payloadTooLarge
        }

        switch (endpoint, method) {
        case (.settings, "GET"): return try getSettings()
        case (.settings, _): return try saveSettings(request, actor: actor)
        case (.settingsSchema, _): return .success(SettingsSchema.json)
        case (.validateSettings, _): return try validateSettings(request)
        case (.publicKey, _): return try publicKey()
        case (.health, _): return try health()
        case let (.test(address), _): return try sendTestEmail(to: address, request: request, actor: actor)
        case (.check, _): return try checkConnection(request: request, actor: actor)
        case (.domainCheck, _): return try domainCheck(request)
        case let (.discover(address), _): return try discover(address: address)
        case (.history, _): return try history(request)
        case let (.restore(version), _): return try restore(version: version, request: request, actor: actor)
        case (.audit, _): return try audit(request)
        case let (.oauth(action), _): return try oauth(action, request: request, actor: actor)
        }
    }

    // MARK: - Access

    /// The acting user, or a 401/403.
    private func authorize(_ request: Request) throws -> String {
        switch policy.mode {
        case .none:
            return request.remoteUser ?? "anonymous"
        case .remoteUser:
            guard let user = request.remoteUser, !user.isEmpty else {
                throw APIError.unauthenticated
            }
            // Byte for byte: "\u{212A}ate" (KELVIN SIGN) is another user than "Kate".
            if !policy.admins.isEmpty, !policy.admins.contains(user) {
                throw APIError(403, "auth", "User \(user) is not an email settings administrator.")
            }
            return user
        }
    }

    /// Every POST carries `X-Requested-With: EmailSetup` (a header a cross-site
    /// form cannot set) and, when the browser sends Origin, it names this host.
    private func checkCSRF(_ request: Request) throws {
        guard request.headers["x-requested-with"] == "EmailSetup" else {
            throw APIError(403, "csrf", "POST requests must carry the header X-Requested-With: EmailSetup.")
        }
        if let origin = request.headers["origin"], !Self.originMatches(origin, request: request) {
            throw APIError(403, "csrf", "The Origin \(origin.prefix(100)) does not match this server (\((request.headers["host"] ?? "").prefix(100))); cross-site requests are refused.")
        }
    }

    /// Same host, and the same port. Debian's nginx passes `HTTP_HOST $host`, which
    /// drops the port (a deliberate security workaround in its fastcgi_params), so
    /// when Host has no port the Origin's port may be the scheme's default or the
    /// port the web server received the request on (SERVER_PORT).
    static func originMatches(_ origin: String, request: Request) -> Bool {
        guard let url = URL(string: origin), let originHost = url.host, let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https" else { return false }
        let originPort = url.port ?? defaultPort(scheme)
        guard let (host, port) = splitHostHeader(request.headers["host"] ?? "") else { return false }
        guard normalizedHost(originHost) == normalizedHost(host) else { return false }
        if let port { return port == originPort }
        return originPort == defaultPort(scheme) || originPort == request.serverPort
    }

    private static func defaultPort(_ scheme: String) -> Int { scheme == "https" ? 443 : 80 }

    private static func normalizedHost(_ host: String) -> String {
        (host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host).lowercased()
    }

    /// "host", "host:port", "[v6]", "[v6]:port" → (host, port?); nil when malformed.
    private static func splitHostHeader(_ value: String) -> (String, Int?)? {
        guard !value.isEmpty else { return nil }
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            let host = String(value[value.index(after: value.startIndex)..<close])
            let rest = value[value.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()) else { return nil }
            return (host, port)
        }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return (value, nil)
        case 2: guard let port = Int(parts[1]) else { return nil }; return (String(parts[0]), port)
        default: return nil
        }
    }

    // MARK: - Settings

    /// The settings as GET returns them: every key as a string (as stored),
    /// defaults filled in, the password replaced by `smtp_password_set`, and
    /// `last_known_good_version` (the newest version whose test email went through).
    /// Members, so POST and restore answers can append theirs.
    static func publicView(_ snapshot: SettingsSnapshot, lastKnownGood: Int?) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = []
        for key in SettingsKey.allCases {
            switch key {
            case .password, .oauthClientSecret:
                members.append((key.rawValue + "_set", .bool(!(snapshot.values[key.rawValue] ?? "").isEmpty)))
            case .settingsVersion:
                members.append((key.rawValue, .string(String(snapshot.version))))
            case .host:
                let host = snapshot.values[key.rawValue] ?? ""
                members.append((key.rawValue, .string(host)))
                // The same host for people: U-labels of an internationalized name.
                let unicode = (try? HostName(host))?.unicode ?? host
                members.append(("smtp_host_unicode", .string(unicode)))
            default:
                members.append((key.rawValue, .string(snapshot.values[key.rawValue] ?? key.defaultValue ?? "")))
            }
        }
        members.append(("last_known_good_version", lastKnownGood.map { .string(String($0)) } ?? .null))
        // Who signed in for OAuth 2.0, and when; the refresh token itself never leaves.
        members.append((SettingsKey.SignIn.account, .string(snapshot.values[SettingsKey.SignIn.account] ?? "")))
        members.append((SettingsKey.SignIn.signedInAt, .string(snapshot.values[SettingsKey.SignIn.signedInAt] ?? "")))
        members.append(("oauth_default_scope", .string(OAuthSetup.defaultScope(snapshot.values))))
        return members
    }

    private func getSettings() throws -> Response {
        let (snapshot, good) = try repository.loadSettingsWithLastKnownGood()
        let view = Self.publicView(snapshot, lastKnownGood: good)
            + [("oauth_redirect_uri", oauthOptions.redirectURI.map { .string($0) } ?? .null)]
        return .success(.object(view), headers: [("ETag", ETag.format(snapshot.version))])
    }

    private func saveSettings(_ request: Request, actor: String) throws -> Response {
        let expected = try ETag.expectedVersion(ifMatch: request.headers["if-match"])
        let data = try Self.settingsSubmission(request)
        // One read gives both; saving does not change which version was last proven good.
        let (stored, good) = try repository.loadSettingsWithLastKnownGood()
        var validated = try configuredValidator.validate(data, stored: stored.values).get()
        var toSave = validated.values
        var nonces: [String: String] = [:]
        switch validated.password {
        case .unchanged:
            // A password still in the original system's format becomes v1 on this save.
            // If it cannot be opened here, the save goes on (the other fields are fine)
            // but says so: every test email would fail at AUTH with that password.
            if let vault {
                do {
                    if let migrated = try vault.migratedLegacy(stored.values[SettingsKey.password.rawValue] ?? "") {
                        toSave[SettingsKey.password.rawValue] = migrated
                        logger.info("legacy password re-sealed as v1")
                    }
                } catch let error as StorageError where error.code != .unavailable {
                    logger.warning("legacy password could not be opened", metadata: ["reason": "\(error.message)"])
                    validated.warnings.append((SettingsKey.password.rawValue,
                        "The stored password cannot be opened here (\(error.message)); test emails will fail at AUTH. "
                        + "Set legacy_key_file in the responder's configuration, or enter the password again."))
                }
            }
        case .cleared:
            toSave[SettingsKey.password.rawValue] = ""
        case .encrypted(let ciphertext):
            guard let vault else {
                throw APIError.badRequest(SettingsKey.password.rawValue,
                                          "Setting a password is not available yet in this version; send the other fields without smtp_password.")
            }
            let opened = try openTransportCiphertext(ciphertext, field: SettingsKey.password.rawValue, vault: vault)
            toSave[opened.field] = opened.sealed
            nonces[opened.field] = opened.nonce
        }
        switch validated.clientSecret {
        case .unchanged: break
        case .cleared: toSave[SettingsKey.oauthClientSecret.rawValue] = ""
        case .encrypted(let ciphertext):
            guard let vault else { throw APIError(503, "secrets", "The key pair is not available.") }
            let opened = try openTransportCiphertext(ciphertext, field: SettingsKey.oauthClientSecret.rawValue, vault: vault)
            toSave[opened.field] = opened.sealed
            nonces[opened.field] = opened.nonce
        }
        if nonces.isEmpty, toSave.allSatisfy({ stored.values[$0.key] ?? "" == $0.value }) {
            // Nothing would change: no version, history row, audit row or notification.
            // A stale If-Match is still a 409, as it would be for any other save: the
            // client's view is out of date either way (docs/DECISIONS.md).
            if let expected, expected != stored.version {
                throw StorageError(.conflict, "stale If-Match", currentVersion: stored.version)
            }
            let view = Self.publicView(SettingsSnapshot(values: stored.values, version: stored.version), lastKnownGood: good)
                + [("warnings", .object(validated.warnings.map { ($0.0, .string($0.1)) })), ("unchanged", true)]
            return .success(.object(view), headers: [("ETag", ETag.format(stored.version))])
        }
        let version: Int
        do {
            version = try repository.saveSettings(toSave, expectedVersion: expected, actor: actor, remoteAddress: request.remoteAddress,
                                                  consumingNonces: nonces)
        } catch let error as StorageError where error.code == .transportNonce {
            let field = error.field ?? SettingsKey.password.rawValue
            throw APIError.badRequest(field, "was encrypted with a nonce that is unknown, expired or already used (each encrypted value "
                                      + "is accepted once, within \(Int(transportNonceLifetime / 60)) minutes). " + Self.encryptAgain)
        }
        logger.info("settings saved", metadata: ["version": "\(version)", "user": "\(actor)"])
        // A refresh token belongs to one application of one tenant: when those change,
        // the sign-in is forgotten rather than tried against the new one.
        var saved = stored.values.merging(toSave) { $1 }
        if SettingsKey.signInIdentity.contains(where: { (stored.values[$0.rawValue] ?? $0.defaultValue ?? "") != (toSave[$0.rawValue] ?? "") }),
           !(stored.values[SettingsKey.SignIn.refreshToken] ?? "").isEmpty, let oauthStore {
            for label in SettingsKey.SignIn.labels { saved[label] = "" }
            try oauthStore.writeSignIn([SettingsKey.SignIn.refreshToken: "", SettingsKey.SignIn.account: "", SettingsKey.SignIn.signedInAt: ""],
                                       action: "oauth.forget", actor: actor, remoteAddress: request.remoteAddress,
                                       detail: #"{"reason":"the OAuth application or tenant changed"}"#)
        }
        settingsCommitted(version)
        saved[SettingsKey.settingsVersion.rawValue] = String(version)
        let view = Self.publicView(SettingsSnapshot(values: saved, version: version), lastKnownGood: good)
            + [("warnings", .object(validated.warnings.map { ($0.0, .string($0.1)) }))]
        return .success(.object(view), headers: [("ETag", ETag.format(version))])
    }

    /// The members of `{"data":{…}}`: the body of a save and of a validate.
    static func settingsSubmission(_ request: Request) throws -> [(String, JSONValue)] {
        let body = try JSONValue.parse(request.body)
        guard let data = body["data"]?.objectMembers else {
            throw APIError.badRequest("body", "The body must be a JSON object {\"data\":{…}} with the settings.")
        }
        return data
    }

    /// The validator with this responder's `smtp_denied_networks`.
    var configuredValidator: SettingsValidator {
        var validator = self.validator
        validator.deniedNetworks = deniedNetworks
        return validator
    }

    /// `POST …/email_smtp/validate`: what a save of the same body would answer — field
    /// errors, warnings, the values it would store — and the fixes for misplaced input,
    /// with 200 whether valid or not. Saves nothing, opens no secret, writes no audit row.
    private func validateSettings(_ request: Request) throws -> Response {
        let data = try Self.settingsSubmission(request)
        let stored = try repository.loadSettings()
        let result = configuredValidator.check(data, stored: stored.values)
        func messages(_ list: [(String, String)]) -> JSONValue { .object(list.map { ($0.0, .string($0.1)) }) }
        let values = SettingsKey.plain.map { ($0.rawValue, JSONValue.string(result.values[$0.rawValue] ?? "")) }
        let fixes = result.fixes.map { field, fix in
            (field, JSONValue.object([("set", .object(fix.set.map { ($0.0, .string($0.1)) })), ("note", .string(fix.note))]))
        }
        return .success(.object([
            ("valid", .bool(result.isValid)), ("errors", messages(result.errors)), ("warnings", messages(result.warnings)),
            ("values", .object(values)), ("fixes", .object(fixes)),
        ]))
    }

    /// What to do about any refused transport ciphertext.
    static let encryptAgain = #"Fetch a fresh key and nonce from GET /api/setup/email_public_key and encrypt {"nonce":"<nonce>","secret":"<the secret>"} with that key (RSA-OAEP, SHA-256), base64."#

    /// Opens a transport ciphertext sent in `field`; anything wrong with it is a
    /// 400 on that field (a database outage stays a 503).
    func openTransportCiphertext(_ ciphertext: String, field: String, vault: PasswordVault) throws -> TransportSecret {
        do {
            return try vault.openTransportCiphertext(ciphertext, field: field)
        } catch let error as StorageError where error.code != .unavailable {
            throw APIError.badRequest(field, "could not be decrypted: \(error.message). " + Self.encryptAgain)
        }
    }

    /// The transport key with a fresh single-use nonce: every encrypted secret
    /// needs its own, so clients fetch this right before they encrypt.
    private func publicKey() throws -> Response {
        guard let vault else { throw APIError(503, "secrets", "The password key pair is not available.") }
        let pem: String
        do {
            pem = try vault.publicKeyPEM
        } catch let error as StorageError {
            throw APIError(503, "secrets", "The password key pair is not available: \(error.message)")
        }
        let nonce = try repository.issueTransportNonce(lifetime: transportNonceLifetime)
        return .success(.object([("public_key", .string(pem)),
                                 ("algorithm", "RSA-OAEP"), ("hash", "SHA-256"),
                                 ("nonce", .string(nonce.value)), ("nonce_expires_in", .number(Double(nonce.expiresIn))),
                                 ("plaintext", .string(#"{"nonce":"<nonce>","secret":"<the secret>"}"#))]),
                        headers: [("Cache-Control", "no-store")])
    }

    private func health() throws -> Response {
        let snapshot = try repository.loadSettings()
        return .success(.object([("database", "ok"), ("settings_version", .number(Double(snapshot.version)))]))
    }
}
