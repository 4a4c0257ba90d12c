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
import Storage

/// One worker's settings repository whose GET read is shared with the other
/// workers of the process through a `ReadCoalescer`; everything else is the
/// worker's own repository, unchanged.
///
/// Why: `loadSettingsWithLastKnownGood()` is what every GET (and save, restore and
/// history) reads, and under load it was one MariaDB round trip per request. Through
/// the coalescer concurrent callers share a read that started after each of them
/// arrived, so an answer is never older than the caller's request (read-your-writes
/// holds across responder processes) while MariaDB sees at most one such read in
/// flight per process. The read runs on the leading worker's own connection.
/// Writes, history, audit and rate limits are not coalesced: they go straight to
/// `base`.
///
/// ```swift
/// let shared = ReadCoalescer<(SettingsSnapshot, Int?)>()   // one per process
/// // per worker thread:
/// let repository = CoalescingSettingsRepository(base: SettingsStore(...), reads: shared)
/// ```
final class CoalescingSettingsRepository: SettingsRepository {
    /// This worker's own repository (its own connection).
    let base: SettingsRepository
    /// Shared by every worker of the process.
    let reads: ReadCoalescer<(SettingsSnapshot, Int?)>

    /// - Parameters:
    ///   - base: the worker's repository; only this worker's thread may use it.
    ///   - reads: the process's coalescer, the same for every worker.
    init(base: SettingsRepository, reads: ReadCoalescer<(SettingsSnapshot, Int?)>) {
        self.base = base
        self.reads = reads
    }

    /// The settings and last known good from a read that started after this call,
    /// possibly run by another worker of the process for several callers at once.
    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?) {
        try reads.read { try base.loadSettingsWithLastKnownGood() }
    }

    // Not coalesced: forwarded as they are.

    func loadSettings() throws -> SettingsSnapshot { try base.loadSettings() }

    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int {
        try base.saveSettings(values, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress, consumingNonces: nonces)
    }

    func history(limit: Int, offset: Int) throws -> [SettingsHistoryEntry] {
        try base.history(limit: limit, offset: offset)
    }

    func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore {
        try base.restore(version: version, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress)
    }

    @discardableResult
    func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws -> Int64 {
        try base.appendAudit(action: action, outcome: outcome, actor: actor, remoteAddress: remoteAddress,
                             detail: detail, settingsVersion: settingsVersion)
    }

    func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?, detail: String?, settingsVersion: Int?) throws {
        try base.appendAggregatedAudit(action: action, outcome: outcome, actor: actor, remoteAddress: remoteAddress,
                                       detail: detail, settingsVersion: settingsVersion)
    }

    func audit(limit: Int, offset: Int) throws -> [AuditEntry] {
        try base.audit(limit: limit, offset: offset)
    }

    func testEvents(versions: ClosedRange<Int>, limit: Int) throws -> [AuditEntry] {
        try base.testEvents(versions: versions, limit: limit)
    }

    func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision {
        try base.recordAndCount(bucket: bucket, window: window, limit: limit)
    }

    func versionsWithSuccessfulTests(limit: Int) throws -> [Int] {
        try base.versionsWithSuccessfulTests(limit: limit)
    }

    func issueTransportNonce(lifetime: TimeInterval) throws -> TransportNonce {
        try base.issueTransportNonce(lifetime: lifetime)
    }
}
