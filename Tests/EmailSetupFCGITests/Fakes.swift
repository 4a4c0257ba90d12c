@testable import EmailSetupFCGI
import Foundation
import Logging
@testable import Smtp
@testable import Storage
import Synchronization

/// An in-memory settings repository for the handler's unit tests (the real one
/// is tested against MariaDB in StorageTests and the end-to-end tests).
final class MemorySettingsRepository: SettingsRepository {
    /// OAuth: cached tokens (sealed, expiry on `clock`), sign-ins under way.
    var tokenCache: [String: (sealed: String, expiresAt: Double, storedAt: Double)] = [:]
    var clock: Double = 0
    var pending: [String: (kind: String, actor: String, sealed: String)] = [:]
    var values: [String: String] = [:]
    var version = 0
    var saves: [(values: [String: String], actor: String)] = []
    var failWith: StorageError?
    /// Reads of the settings so far.
    var loads = 0
    /// Runs after a read took its snapshot: a round trip that writes can overtake.
    var whileLoading: (() -> Void)?

    func loadSettings() throws -> SettingsSnapshot {
        if let failWith { throw failWith }
        loads += 1
        let snapshot = SettingsSnapshot(values: values, version: version)
        whileLoading?()
        return snapshot
    }

    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int {
        if let failWith { throw failWith }
        // As SettingsStore: nonces first, in the save's transaction (nothing is consumed when the save fails).
        var remaining = issuedNonces
        for field in nonces.keys.sorted() where remaining.remove(nonces[field]!) == nil {
            throw StorageError(.transportNonce, "unknown, expired or used", field: field)
        }
        if let expectedVersion, expectedVersion != version {
            throw StorageError(.conflict, "stale", currentVersion: version)
        }
        issuedNonces = remaining
        if values[SettingsStore.passwordLabel] == "" {
            for v in snapshots.keys where !(snapshots[v]![SettingsStore.passwordLabel] ?? "").isEmpty {
                snapshots[v]![SettingsStore.passwordLabel] = ""
                purgedVersions.insert(v)
            }
        }
        self.values.merge(values) { $1 }
        version += 1
        saves.append((values, actor))
        snapshots[version] = self.values
        return version
    }

    var snapshots: [Int: [String: String]] = [:]
    /// Versions whose password a clearing removed (SettingsStore's `password_purged_at`).
    var purgedVersions: Set<Int> = []
    /// Nonces handed out and not yet consumed.
    var issuedNonces: Set<String> = []
    private var nonceCount = 0
    var auditRows: [AuditEntry] = []
    var rateEvents: [String: Int] = [:]
    var successfulTests: [Int] = []

    func history(limit: Int, offset: Int) throws -> [SettingsHistoryEntry] {
        snapshots.keys.sorted(by: >).dropFirst(offset).prefix(limit).map {
            SettingsHistoryEntry(version: $0, savedAt: Date(), savedBy: "admin", remoteAddress: nil, changedFields: [], values: snapshots[$0]!, restoredFrom: nil)
        }
    }

    /// SettingsStore's password rule, simplified: a purged version (or a cleared
    /// current password) keeps the current password state.
    func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore {
        guard var old = snapshots[version] else { throw StorageError(.notFound, "no version \(version)") }
        let label = SettingsStore.passwordLabel
        var password = PasswordRestore.restored
        if purgedVersions.contains(version) || ((values[label] ?? "").isEmpty && !(old[label] ?? "").isEmpty) {
            old[label] = values[label]
            password = .keptCurrent
        } else if (old[label] ?? "").isEmpty && !(values[label] ?? "").isEmpty {
            old[label] = ""
            password = .cleared
        }
        return SettingsRestore(version: try saveSettings(old, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress),
                               password: password)
    }

    func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws -> Int64 {
        if let failWith { throw failWith }
        auditRows.append(AuditEntry(id: Int64(auditRows.count + 1), at: Date(), actor: actor, remoteAddress: remoteAddress,
                                    action: action, outcome: outcome, detail: detail, settingsVersion: settingsVersion))
        if action == "test.send", outcome == "success", let v = settingsVersion { successfulTests.append(v) }
        return Int64(auditRows.count)
    }

    func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws {
        if let failWith { throw failWith }
        // One row per action, outcome, actor and minute, like SettingsStore.
        let minute = Int(Date().timeIntervalSince1970 / 60)
        if let i = auditRows.lastIndex(where: { $0.action == action && $0.outcome == outcome && $0.actor == actor
                                                && Int($0.at.timeIntervalSince1970 / 60) == minute && $0.lastAt != nil }) {
            auditRows[i].count += 1
            auditRows[i].lastAt = Date()
            return
        }
        auditRows.append(AuditEntry(id: Int64(auditRows.count + 1), at: Date(), actor: actor, remoteAddress: remoteAddress,
                                    action: action, outcome: outcome, detail: detail, settingsVersion: settingsVersion,
                                    count: 1, lastAt: Date()))
    }

    func audit(limit: Int, offset: Int) throws -> [AuditEntry] {
        Array(auditRows.reversed().dropFirst(offset).prefix(limit))
    }

    func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision {
        let n = rateEvents[bucket, default: 0]
        guard n < limit else { return .limited(retryAfter: 42) }
        rateEvents[bucket] = n + 1
        return .allowed(remaining: limit - n - 1)
    }

    func versionsWithSuccessfulTests(limit: Int) throws -> [Int] {
        Array(Set(successfulTests).sorted(by: >).prefix(limit))
    }

    func issueTransportNonce(lifetime: TimeInterval) throws -> TransportNonce {
        if let failWith { throw failWith }
        nonceCount += 1
        let prefix = "nonce-\(nonceCount)-"
        let nonce = TransportNonce(value: prefix + String(repeating: "n", count: 22 - prefix.count), expiresIn: Int(lifetime))
        issuedNonces.insert(nonce.value)
        return nonce
    }
}

/// A vault without RSA: the "ciphertext" is base64 of the framed plaintext
/// `{"nonce":…,"secret":…}` itself, opened with Storage's own framing rules and
/// sealed as `sealed:<secret>`, so the handler's secret paths run as in production.
final class PlainVault: PasswordVault, Sendable {
    let publicKeyPEM = "-----BEGIN PUBLIC KEY-----\ncGxhaW4=\n-----END PUBLIC KEY-----\n"

    /// What a client would encrypt, "encrypted" the fake way.
    static func ciphertext(nonce: String, secret: String) -> String {
        let plaintext = try! JSONSerialization.data(withJSONObject: ["nonce": nonce, "secret": secret])
        return plaintext.base64EncodedString()
    }

    func openTransportCiphertext(_ base64: String, field: String) throws -> TransportSecret {
        let bytes = try StrictBase64.decode(base64, allowingWhitespace: true, what: "the encrypted value")
        let opened = try TransportPlaintext.parse(bytes)
        return TransportSecret(field: field, nonce: opened.nonce, sealed: "sealed:" + opened.secret)
    }

    func openStored(_ stored: String) throws -> String { String(stored.dropFirst("sealed:".count)) }
    func migratedLegacy(_ stored: String) throws -> String? { nil }
    func seal(_ secret: String) throws -> String { "sealed:" + secret }
}

/// The OAuth store in memory: the token cache (with a clock the test moves), sign-ins
/// under way and the sign-in labels, which live among `values` as in `information`.
extension MemorySettingsRepository: OAuthTokenStore {
    func cachedAccessToken(key: String) throws -> CachedAccessToken? {
        tokenCache[key].map { CachedAccessToken(sealed: $0.sealed, secondsLeft: $0.expiresAt - clock, age: clock - $0.storedAt) }
    }
    func withAccessTokenLock<T>(key: String, _ body: (CachedAccessToken?) throws -> AccessTokenUpdate<T>) throws -> T {
        switch try body(try cachedAccessToken(key: key)) {
        case .keep(let value): return value
        case let .store(sealed, expiresIn, signIn, value):
            tokenCache[key] = (sealed, clock + Double(expiresIn), clock)
            values.merge(signIn) { $1 }
            return value
        }
    }
    func writeSignIn(_ labels: [String: String], action: String, actor: String, remoteAddress: String?, detail: String?) throws {
        values.merge(labels) { $1 }
        tokenCache = [:]
        _ = try appendAudit(action: action, outcome: "success", actor: actor, remoteAddress: remoteAddress, detail: detail, settingsVersion: nil)
    }
    func putPendingSignIn(handle: String, kind: String, actor: String, sealed: String, lifetime: Int) throws {
        pending[handle] = (kind, actor, sealed)
    }
    func pendingSignIn(handle: String, kind: String, actor: String, consume: Bool) throws -> String? {
        guard let entry = pending[handle], entry.kind == kind, Array(entry.actor.utf8) == Array(actor.utf8) else { return nil }
        if consume { pending[handle] = nil }
        return entry.sealed
    }
    func forgetAccessTokens() throws { tokenCache = [:] }
    func currentRefreshToken() throws -> String? { values[SettingsKey.SignIn.refreshToken] }
}

/// A scripted SMTP peer for handler tests: returns what it is told and records what it got.
final class ScriptedSmtp: SmtpOperations, Sendable {
    private struct State {
        var failure: SmtpError?
        var sent: [(envelope: Envelope, message: [UInt8], settings: SmtpSettings)] = []
        var checks = 0
        var lastSettings: SmtpSettings?
    }
    private let state = Mutex(State())

    var failure: SmtpError? {
        get { state.withLock { $0.failure } }
        set { state.withLock { $0.failure = newValue } }
    }
    var sent: [(envelope: Envelope, message: [UInt8], settings: SmtpSettings)] { state.withLock { $0.sent } }
    var checks: Int { state.withLock { $0.checks } }
    /// The settings of the last check or send (with the token source the handler set).
    var lastSettings: SmtpSettings? { state.withLock { $0.lastSettings } }

    func check(_ settings: SmtpSettings) throws -> SmtpCheckReport {
        let failure = state.withLock { state in
            state.checks += 1
            state.lastSettings = settings
            return state.failure
        }
        if let failure { throw failure }
        return SmtpCheckReport(server: Self.server, timingsMilliseconds: ["connect": 1], transcript: SmtpTranscript())
    }

    func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport {
        if let failure { throw failure }
        state.withLock { $0.sent.append((envelope, message, settings)) }
        return SmtpDeliveryReport(recipients: envelope.recipients.map { SmtpRecipientOutcome(address: $0, delivered: true, error: nil) },
                                  reply: SmtpReply(code: 250, lines: ["OK queued"]), bytesSent: message.count,
                                  timingsMilliseconds: ["data": 2], transcript: SmtpTranscript(), server: Self.server)
    }

    static let server = SmtpServerInfo(remoteAddress: "127.0.0.1:25", greeting: "220 test", capabilities: SmtpCapabilities(),
                                       certificate: nil, tlsVersion: nil, cipher: nil, authMechanism: nil)
}

extension Logger {
    static let quiet: Logger = {
        var logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        logger.logLevel = .critical
        return logger
    }()
}

extension Response {
    /// The parsed JSON body.
    var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }
    /// The message of one field in an error envelope.
    func error(_ field: String) -> String? { json["errors"]?[field]?.stringValue }
    /// A member of `data` as a string.
    func data(_ field: String) -> String? { json["data"]?[field]?.stringValue }
}

func post(_ path: String, _ body: String, user: String? = "admin", headers: [String: String] = [:]) -> Request {
    var h = ["x-requested-with": "EmailSetup", "host": "127.0.0.1:8080", "content-type": "application/json"]
    h.merge(headers) { $1 }
    return Request(method: "POST", path: path, headers: h, body: Array(body.utf8), remoteUser: user, remoteAddress: "127.0.0.1")
}

func get(_ path: String, user: String? = "admin") -> Request {
    Request(method: "GET", path: path, headers: ["host": "127.0.0.1:8080"], remoteUser: user, remoteAddress: "127.0.0.1")
}

/// Records log entries for assertions, as swift-log's own TestLogger does.
struct RecordingLogHandler: LogHandler {
    struct Entry: Sendable { let level: Logger.Level; let message: String; let metadata: [String: String] }

    final class Store: Sendable {
        private let storage = Mutex<[Entry]>([])
        func append(_ entry: Entry) { storage.withLock { $0.append(entry) } }
        var entries: [Entry] { storage.withLock { $0 } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var flat: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { flat[key] = "\(value)" }
        store.append(Entry(level: event.level, message: "\(event.message)", metadata: flat))
    }
}

extension APIHandler {
    /// The final answer to `request`: an SMTP session the handler defers to the work
    /// pool (`Response.work`) runs here, with this handler's repository.
    func answer(_ request: Request) -> Response {
        handle(request).completed(using: repository as! MemorySettingsRepository)
    }
}
