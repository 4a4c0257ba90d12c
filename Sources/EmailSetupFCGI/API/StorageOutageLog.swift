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
import Synchronization
import Logging
import Storage

/// Logs a database outage as a few lines instead of one per request, for all worker
/// threads of a process together.
///
/// Why: while MariaDB was down every request logged its own "storage failure"
/// (about 10,900 lines in 6 s under load), burying everything else. Now the first
/// failed request logs that the outage began (with the error), later ones are
/// counted and summed up in one line every `reportInterval` seconds while failures
/// keep coming, and the first request that reaches the database again logs the
/// recovery once, with the outage's length and its count of failed requests. The
/// answers themselves are unchanged (503 with Retry-After).
///
/// Nothing runs in the background: the lines are written by the requests that
/// fail or succeed, so a quiet outage costs nothing (and logs nothing more).
///
/// ```swift
/// let outage = StorageOutageLog(logger: logger)     // one per process
/// // in a worker, when a request fails with StorageError .unavailable:
/// outage.requestFailed(error: error, path: request.path)
/// // when the database answered a request:
/// outage.databaseAnswered()
/// ```
final class StorageOutageLog: Sendable {
    /// The state of an outage in progress.
    private struct Outage {
        var started: TimeInterval
        var failed = 1
        var lastReport: TimeInterval
        var failedAtLastReport = 1
    }

    private let state = Mutex<Outage?>(nil)
    private let logger: Logger
    private let reportInterval: TimeInterval
    private let now: @Sendable () -> TimeInterval

    /// - Parameters:
    ///   - logger: where the lines go.
    ///   - reportInterval: seconds between "still unreachable" lines.
    ///   - now: a monotonic clock in seconds (injected by tests).
    init(logger: Logger, reportInterval: TimeInterval = 10,
         now: @escaping @Sendable () -> TimeInterval = { ProcessInfo.processInfo.systemUptime }) {
        self.logger = logger
        self.reportInterval = reportInterval
        self.now = now
    }

    /// True while an outage is in progress (for tests and diagnostics).
    var inProgress: Bool { state.withLock { $0 != nil } }

    /// A request failed because the database was unreachable.
    /// - Parameters:
    ///   - error: the storage error (logged with the first failure only).
    ///   - path: the request's path (likewise).
    func requestFailed(error: Error, path: String) {
        enum Line { case began, still(failed: Int, total: Int, seconds: Int) }
        let line: Line? = state.withLock { outage in
            let t = now()
            guard var current = outage else {
                outage = Outage(started: t, lastReport: t)
                return .began
            }
            current.failed += 1
            defer { outage = current }
            guard t - current.lastReport >= reportInterval else { return nil }
            let recent = current.failed - current.failedAtLastReport
            current.lastReport = t
            current.failedAtLastReport = current.failed
            return .still(failed: recent, total: current.failed, seconds: Int((t - current.started).rounded()))
        }
        switch line {
        case .began:
            logger.error("database unreachable; requests answer 503 until it is back (one line every \(Int(reportInterval)) s while it lasts)",
                         metadata: ["error": "\(error)", "path": "\(path)"])
        case let .still(failed, total, seconds):
            logger.error("database still unreachable after \(seconds) s: \(failed) requests failed in the last \(Int(reportInterval)) s, \(total) in all",
                         metadata: ["failed": "\(failed)", "failed_total": "\(total)", "seconds": "\(seconds)"])
        case nil:
            break
        }
    }

    /// The database answered (any repository call that did not fail with
    /// `.unavailable`); ends an outage in progress with one line.
    func databaseAnswered() {
        let ended: (seconds: Double, failed: Int)? = state.withLock { outage in
            guard let current = outage else { return nil }
            outage = nil
            return (now() - current.started, current.failed)
        }
        guard let ended else { return }
        let seconds = (ended.seconds * 10).rounded() / 10
        logger.notice("database reachable again after \(seconds) s, \(ended.failed) requests failed",
                      metadata: ["seconds": "\(seconds)", "failed_total": "\(ended.failed)"])
    }
}

/// A worker's repository that tells the process's ``StorageOutageLog`` whenever the
/// database answered, so the first request that reaches it after an outage logs the
/// recovery. Requests that never touch the database (401, 404, the public key) say
/// nothing either way. Failures are counted per request by `APIHandler.handle`.
///
/// ```swift
/// let repository = OutageObservingRepository(base: CoalescingSettingsRepository(...), outage: runtime.storageOutage)
/// ```
final class OutageObservingRepository: SettingsRepository {
    let base: SettingsRepository
    let outage: StorageOutageLog

    init(base: SettingsRepository, outage: StorageOutageLog) {
        self.base = base
        self.outage = outage
    }

    /// Runs `body`; any outcome but `.unavailable` means the database answered.
    private func observed<T>(_ body: () throws -> T) throws -> T {
        do {
            let value = try body()
            outage.databaseAnswered()
            return value
        } catch let error as StorageError where error.code != .unavailable {
            outage.databaseAnswered()
            throw error
        }
    }

    func loadSettings() throws -> SettingsSnapshot { try observed { try base.loadSettings() } }

    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?) {
        try observed { try base.loadSettingsWithLastKnownGood() }
    }

    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int {
        try observed {
            try base.saveSettings(values, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress, consumingNonces: nonces)
        }
    }

    func history(limit: Int, offset: Int) throws -> [SettingsHistoryEntry] {
        try observed { try base.history(limit: limit, offset: offset) }
    }

    func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore {
        try observed { try base.restore(version: version, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress) }
    }

    @discardableResult
    func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws -> Int64 {
        try observed {
            try base.appendAudit(action: action, outcome: outcome, actor: actor, remoteAddress: remoteAddress,
                                 detail: detail, settingsVersion: settingsVersion)
        }
    }

    func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws {
        try observed {
            try base.appendAggregatedAudit(action: action, outcome: outcome, actor: actor, remoteAddress: remoteAddress,
                                           detail: detail, settingsVersion: settingsVersion)
        }
    }

    func audit(limit: Int, offset: Int) throws -> [AuditEntry] { try observed { try base.audit(limit: limit, offset: offset) } }

    func testEvents(versions: ClosedRange<Int>, limit: Int) throws -> [AuditEntry] {
        try observed { try base.testEvents(versions: versions, limit: limit) }
    }

    func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision {
        try observed { try base.recordAndCount(bucket: bucket, window: window, limit: limit) }
    }

    func versionsWithSuccessfulTests(limit: Int) throws -> [Int] {
        try observed { try base.versionsWithSuccessfulTests(limit: limit) }
    }

    func issueTransportNonce(lifetime: TimeInterval) throws -> TransportNonce {
        try observed { try base.issueTransportNonce(lifetime: lifetime) }
    }
}
