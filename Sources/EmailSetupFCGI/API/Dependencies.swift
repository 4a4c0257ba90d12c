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
import Storage

/// The saved settings as the API sees them: every stored label and the version.
struct SettingsSnapshot: Sendable, Equatable {
    var values: [String: String]
    var version: Int
}

/// Where the settings, their history, the audit log and the rate-limit counters
/// live. The production conformance is Storage's `SettingsStore` (one per worker
/// thread); unit tests use an in-memory one. Implementations throw `StorageError`
/// (`.unavailable` → 503, `.conflict` → 409, `.notFound` → 404, `.transportNonce` → 400).
protocol SettingsRepository: AnyObject {
    /// One consistent read of all settings and their version.
    func loadSettings() throws -> SettingsSnapshot
    /// Saves all `values` atomically if the stored version still equals
    /// `expectedVersion` (nil: any), with history and audit rows; returns the new
    /// version. In the same transaction it consumes `nonces` (field → the nonce of
    /// the transport ciphertext the field's value came from; `.transportNonce` when
    /// one is unknown, expired or used) and, when `smtp_password` is saved as "",
    /// removes every sealed password from history.
    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int
    /// Saved versions, newest first.
    func history(limit: Int, offset: Int) throws -> [SettingsHistoryEntry]
    /// Makes `version`'s values current as a new version (a cleared password stays
    /// cleared); returns it and what happened to the password.
    func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore
    /// Appends one audit row.
    @discardableResult
    func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws -> Int64
    /// Counts a repeated refusal (429, 403) in one audit row per action, outcome,
    /// user and minute, instead of one row per request.
    func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws
    /// The audit log, newest first.
    func audit(limit: Int, offset: Int) throws -> [AuditEntry]
    /// Audit rows of test emails and checks (`test.send`, `test.check`; not aggregated
    /// refusals) about settings versions in `versions`, newest first, at most `limit`.
    func testEvents(versions: ClosedRange<Int>, limit: Int) throws -> [AuditEntry]
    /// Counts one event against a sliding-window limit shared by all responders.
    func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision
    /// Versions whose test email succeeded, newest first (at most `limit`).
    func versionsWithSuccessfulTests(limit: Int) throws -> [Int]
    /// The settings and the newest version whose test email succeeded, for GET: one
    /// round trip and one snapshot where the repository can (see `SettingsStore`).
    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?)
    /// A fresh single-use nonce for transport ciphertexts, valid `lifetime` seconds
    /// on every responder of the database.
    func issueTransportNonce(lifetime: TimeInterval) throws -> TransportNonce
}

extension SettingsRepository {
    /// From the newest audit rows, for repositories without a query of their own.
    func testEvents(versions: ClosedRange<Int>, limit: Int) throws -> [AuditEntry] {
        try audit(limit: 500, offset: 0).filter { entry in
            ["test.send", "test.check"].contains(entry.action) && entry.settingsVersion.map(versions.contains) == true && entry.lastAt == nil
        }.prefix(limit).map { $0 }
    }

    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?) {
        (try loadSettings(), try versionsWithSuccessfulTests(limit: 1).first)
    }

    /// A save that carries no transport ciphertext.
    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> Int {
        try saveSettings(values, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress, consumingNonces: [:])
    }
}

/// The SMTP sessions the API runs: the real client in production, scripted in unit tests.
protocol SmtpOperations: Sendable {
    func check(_ settings: SmtpSettings) throws -> SmtpCheckReport
    func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport
    /// The failure of a session that started at `startedAt`, with verified advice when
    /// another port or connection security works (``SmtpAdvice``).
    func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError
}

extension SmtpOperations {
    /// Scripted sessions probe nothing: the failure as it is.
    func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError { error }
}

/// The Smtp module's client, in process.
struct LiveSmtp: SmtpOperations {
    /// Ports (with their connection security) probed besides the saved port after a
    /// failure that suggests another port or security: the usual ones in production.
    var usualProbes = SmtpAdvice.usualProbes

    func check(_ settings: SmtpSettings) throws -> SmtpCheckReport { try SmtpClient.check(settings) }
    func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport {
        try SmtpClient.send(envelope: envelope, message: message, settings: settings)
    }
    func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError {
        SmtpAdvice.advise(error, settings: settings, startedAt: startedAt, usual: usualProbes)
    }
}

/// How many test emails and checks are allowed per minute.
struct TestRateLimits: Sendable {
    var perUser = 10
    var total = 60
}

/// What work on the SMTP pool writes through: the settings repository (audit rows)
/// and the OAuth store (tokens), both on the pool thread's own connection.
typealias WorkRepository = SettingsRepository & OAuthTokenStore
