#if DEBUG // @testable needs -enable-testing, which SwiftPM passes in debug builds only.
@testable import EmailSetupFCGI
import Foundation
import Logging
@testable import Smtp
import Storage

/// An in-memory settings repository that starts every input from the same state,
/// so a crash reproduces from its input alone (the test target's
/// `MemorySettingsRepository` keeps history and audit; the fuzzers need none).
final class FuzzRepository: SettingsRepository {
    /// A complete, valid set of stored settings: a POST may change one field.
    static let initialValues: [String: String] = [
        "from_address": "app@example.com", "smtp_host": "smtp.example.com", "smtp_port": "587",
        "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "Plain", "smtp_username": "app",
        "smtp_password": "v1:fuzz:c2VhbGVk",
    ]
    var values = FuzzRepository.initialValues
    var version = 7
    var saved: [String: String]?
    /// Transport nonces consumed since the last reset: each is accepted once.
    var usedNonces: Set<String> = []

    func reset() { values = Self.initialValues; version = 7; saved = nil; usedNonces = [] }

    func loadSettings() throws -> SettingsSnapshot { SettingsSnapshot(values: values, version: version) }

    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int {
        for (field, nonce) in nonces where !usedNonces.insert(nonce).inserted {
            throw StorageError(.transportNonce, "used", field: field)
        }
        if let expectedVersion, expectedVersion != version { throw StorageError(.conflict, "stale", currentVersion: version) }
        self.values.merge(values) { $1 }
        saved = self.values
        version += 1
        return version
    }

    func history(limit: Int, offset: Int) throws -> [SettingsHistoryEntry] { [] }
    func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore {
        guard version == self.version else { throw StorageError(.notFound, "no version \(version)") }
        return SettingsRestore(version: try saveSettings(values, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress),
                               password: .restored)
    }
    func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws -> Int64 { 1 }
    func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws {}
    func audit(limit: Int, offset: Int) throws -> [AuditEntry] { [] }
    func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision { .allowed(remaining: limit - 1) }
    func versionsWithSuccessfulTests(limit: Int) throws -> [Int] { [] }
    func issueTransportNonce(lifetime: TimeInterval) throws -> TransportNonce {
        TransportNonce(value: "fuzz-nonce-0123456789a", expiresIn: Int(lifetime))
    }
}

/// Accepts any base64 "ciphertext" and seals it as a recognisable fake, so the
/// password paths of the handler run without RSA keys. Its nonce is the first 8
/// base64 characters, so a body with two ciphertexts can reuse one.
final class FuzzVault: PasswordVault {
    let publicKeyPEM = "-----BEGIN PUBLIC KEY-----\nZnV6eg==\n-----END PUBLIC KEY-----\n"
    func openTransportCiphertext(_ base64: String, field: String) throws -> TransportSecret {
        guard Data(base64Encoded: base64) != nil else { throw StorageError(.secretMalformed, "not base64") }
        return TransportSecret(field: field, nonce: String(base64.prefix(8)), sealed: "v1:fuzz:" + base64)
    }
    func openStored(_ stored: String) throws -> String { "secret" }
    func migratedLegacy(_ stored: String) throws -> String? { nil }
    func seal(_ secret: String) throws -> String { "v1:fuzz:sealed" }
}

/// OAuth state that is never there: no sign-in under way, no cached token.
extension FuzzRepository: OAuthTokenStore {
    func cachedAccessToken(key: String) throws -> CachedAccessToken? { nil }
    func withAccessTokenLock<T>(key: String, _ body: (CachedAccessToken?) throws -> AccessTokenUpdate<T>) throws -> T {
        switch try body(nil) {
        case .keep(let value): return value
        case .store(_, _, _, let value): return value
        }
    }
    func writeSignIn(_ labels: [String: String], action: String, actor: String, remoteAddress: String?, detail: String?) throws {}
    func putPendingSignIn(handle: String, kind: String, actor: String, sealed: String, lifetime: Int) throws {}
    func pendingSignIn(handle: String, kind: String, actor: String, consume: Bool) throws -> String? { nil }
    func forgetAccessTokens() throws {}
    func currentRefreshToken() throws -> String? { nil }
}

/// Never touches the network: every check and test email "succeeds" at once.
struct FuzzSmtp: SmtpOperations {
    static let server = SmtpServerInfo(remoteAddress: "192.0.2.1:25", greeting: "220 fuzz", capabilities: SmtpCapabilities(),
                                       certificate: nil, tlsVersion: nil, cipher: nil, authMechanism: nil)
    func check(_ settings: SmtpSettings) throws -> SmtpCheckReport {
        try SmtpConnection.validate(settings)
        // Stored in the one form the client connects to (issue 12): parsing it again changes nothing.
        let target = try ConnectTarget.host(settings.host).ascii
        fuzzCheck(target == settings.host, "smtp_host saved in a form the client rewrites: \(settings.host.debugDescription)")
        return SmtpCheckReport(server: Self.server, timingsMilliseconds: [:], transcript: SmtpTranscript())
    }
    func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport {
        try SmtpConnection.validate(settings)
        _ = try DataEncoding.prepare(message)
        return SmtpDeliveryReport(recipients: envelope.recipients.map { SmtpRecipientOutcome(address: $0, delivered: true, error: nil) },
                                  reply: SmtpReply(code: 250, lines: ["OK"]), bytesSent: message.count,
                                  timingsMilliseconds: [:], transcript: SmtpTranscript(), server: Self.server)
    }
}

/// One handler over `FuzzRepository`, as a FastCGI worker owns one.
struct FuzzResponder {
    let repository = FuzzRepository()
    let handler: APIHandler

    init(policy: AccessPolicy = AccessPolicy(), vault: Bool = true) {
        var handler = APIHandler(policy: policy, repository: repository, vault: vault ? FuzzVault() : nil,
                                 logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
        handler.smtp = FuzzSmtp()
        handler.systemName = "fuzz.example"
        handler.limits = TestRateLimits(perUser: 1_000_000, total: 1_000_000)
        // Should a fuzzed request ever reach a token endpoint, it meets a closed loopback port.
        handler.oauthOptions = OAuthOptions(publicURL: "https://fuzz.example", baseOverride: "https://127.0.0.1:1", caFile: nil)
        handler.oauthStore = repository
        self.handler = handler
    }

    /// Answers `request` from the initial state and checks the answer is well formed.
    func answer(_ request: Request) -> Response {
        repository.reset()
        // Deferred SMTP work (test, check, OAuth) runs here, as CGI runs it.
        let response = handler.handle(request).completed(using: repository)
        checkWellFormed(response)
        if let saved = repository.saved { checkSaved(saved) }
        return response
    }
}

/// What every answer must be, whatever the request: a known status, headers that
/// cannot split the CGI header block, and the JSON envelope of DESIGN.md.
func checkWellFormed(_ response: Response) {
    fuzzCheck(Response.reasonPhrase(response.status) != "Status", "status \(response.status) is not one the API uses")
    for (name, value) in response.headers {
        fuzzCheck(!name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") },
                  "header name \(name.debugDescription)")
        fuzzCheck(value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F }, "header \(name) has a control character: \(value.debugDescription)")
    }
    fuzzCheck(response.header("Content-Type") == "application/json; charset=utf-8", "no JSON content type")
    let wire = response.cgiBytes()
    let blank: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
    let headEnd = (0...(wire.count - 4)).first { Array(wire[$0..<$0 + 4]) == blank }
    fuzzCheck(headEnd.map { wire.count - ($0 + 4) == response.body.count } ?? false, "CGI header block does not end right before the body")

    let json: JSONValue
    do { json = try JSONValue.parse(response.body) } catch {
        fuzzCheck(false, "body is not JSON (\(error)): \(String(decoding: response.body.prefix(300), as: UTF8.self))")
        return
    }
    let status = json["status"]?.stringValue
    if response.status < 400 {
        fuzzCheck(status == "success" && json["data"] != nil, "status \(response.status) without a success envelope")
    } else {
        fuzzCheck(status == "error", "status \(response.status) without an error envelope")
        let errors = json["errors"]?.objectMembers ?? []
        fuzzCheck(!errors.isEmpty && errors.allSatisfy { $0.1.stringValue != nil }, "error envelope without string messages")
    }
    // No stored secret, sealed or open, in any answer.
    let text = String(decoding: response.body, as: UTF8.self)
    fuzzCheck(!text.contains("v1:fuzz:") && !text.contains("c2VhbGVk"), "a sealed password is in the answer")
}

/// What a save may store: one-line values (PEM aside), and settings the SMTP client accepts.
func checkSaved(_ values: [String: String]) {
    for (key, value) in values {
        fuzzCheck(!value.utf8.contains(0), "\(key) saved with NUL")
        if key == SettingsKey.tlsCAPEM.rawValue { fuzzCheck(!value.utf8.contains(0x0D), "PEM saved with CR"); continue }
        fuzzCheck(!value.utf8.contains(0x0D) && !value.utf8.contains(0x0A), "\(key) saved with a line break: \(value.debugDescription)")
    }
    // The form and the client agree: what the validator accepts, the client can use.
    do {
        let settings = try SmtpSettingsMapper.smtpSettings(from: values) { "secret" }
        try SmtpConnection.validate(settings)
        if let from = values[SettingsKey.fromAddress.rawValue] {
            _ = try EmailAddress(from)
        }
    } catch {
        fuzzCheck(false, "saved settings the SMTP client refuses: \(error) — \(values)")
    }
}
#endif
