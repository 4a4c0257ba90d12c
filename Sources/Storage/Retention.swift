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

/// How much history and audit a ``SettingsStore`` keeps. Pruning runs inside the
/// writes themselves (no background job): a save or restore drops history versions
/// beyond the newest ``historyKeep``, and appending an audit row drops rows older
/// than ``auditKeepDays``. Each write deletes at most ``batchLimit`` rows, so one
/// that finds a large backlog (retention just lowered, or a database that was years
/// old) never stalls; the backlog drains by that much per write.
///
/// What the "last known good" version needs is always kept: its history row (so it
/// can still be restored) and the newest audit row proving it (so it stays the last
/// known good however old it is).
///
/// ```swift
/// let store = SettingsStore(configuration: configuration,
///                           retention: RetentionPolicy(historyKeep: 500, auditKeepDays: 365))
/// ```
public struct RetentionPolicy: Sendable, Equatable {
    /// Settings versions kept in history, newest first; the current one always is.
    public var historyKeep: Int
    /// Audit rows younger than this many days are kept.
    public var auditKeepDays: Int
    /// The audit action whose newest successful version is the "last known good"
    /// (`test.send`); its history row and proving audit row are never pruned.
    public var provenBy: String
    /// Rows one write deletes at most, per table.
    public var batchLimit: Int

    /// - Parameters:
    ///   - historyKeep: versions kept (at least 1); default 500.
    ///   - auditKeepDays: days of audit kept (at least 1); default 365.
    ///   - provenBy: the audit action that proves a version; default `test.send`.
    ///   - batchLimit: rows deleted per write at most; default 500.
    public init(historyKeep: Int = 500, auditKeepDays: Int = 365, provenBy: String = "test.send", batchLimit: Int = 500) {
        self.historyKeep = max(1, historyKeep)
        self.auditKeepDays = max(1, auditKeepDays)
        self.provenBy = provenBy
        self.batchLimit = max(1, batchLimit)
    }
}

extension SettingsStore {
    /// Deletes history versions older than the newest `historyKeep` (at most
    /// `batchLimit` of them), except the last known good one. Runs inside the save or
    /// restore transaction that wrote `newVersion`, which holds the version row's lock,
    /// so two pruners never meet.
    func pruneHistory(newVersion: Int) throws {
        let cutoff = Int64(newVersion - retention.historyKeep)   // versions <= cutoff go
        guard cutoff >= 1 else { return }
        // One round trip, a plain (non-locking) read: locking audit_log rows here would
        // make saves and test emails wait for each other.
        let rows = try connection.query("""
            SELECT (SELECT MIN(version) FROM settings_history) AS oldest,
                   (SELECT MAX(settings_version) FROM audit_log WHERE action = ? AND outcome = 'success') AS proven
            """, [.text(retention.provenBy)])
        guard let row = rows.first, let oldest = try row.optionalInt("oldest"), oldest <= cutoff else { return }
        let upper = min(cutoff, oldest + Int64(retention.batchLimit) - 1)
        // By primary-key range, no LIMIT: deterministic for statement-based replication.
        try connection.execute("""
            DELETE FROM settings_history WHERE version BETWEEN ? AND ? AND version <> ?
            """, [.int(oldest), .int(upper), .int(try row.optionalInt("proven") ?? 0)])
    }

    /// Runs `write` (an audit insert), first deleting audit rows older than
    /// `auditKeepDays` in the same transaction when there are any. The check is one
    /// non-locking read; when nothing is old enough (the usual case) `write` runs
    /// alone, as before. Inside a caller's transaction everything joins it.
    func withAuditPruning<T>(_ write: () throws -> T) throws -> T {
        try connection.withUnitOfWork {
            // The newest row proving the last known good version is kept; `upto` is
            // the id of the `batchLimit`-th oldest prunable row, so the delete below is
            // a bounded primary-key range (ids grow with time, as `at` does).
            let rows = try connection.query("""
                SELECT k.keep_id AS keep_id,
                       o.upto AS upto, o.lowest AS lowest
                FROM (SELECT MAX(id) AS keep_id FROM audit_log
                      WHERE action = ? AND outcome = 'success'
                        AND settings_version = (SELECT MAX(settings_version) FROM audit_log
                                                WHERE action = ? AND outcome = 'success')) AS k,
                     (SELECT MAX(id) AS upto, MIN(id) AS lowest
                      FROM (SELECT id FROM audit_log WHERE at < UTC_TIMESTAMP(6) - INTERVAL ? DAY
                            ORDER BY at LIMIT ?) AS old_rows) AS o
                """, [.text(retention.provenBy), .text(retention.provenBy),
                      .int(Int64(retention.auditKeepDays)), .int(Int64(retention.batchLimit))])
            let row = rows.first
            let keep = try row?.optionalInt("keep_id") ?? 0
            let upto = try row?.optionalInt("upto"), lowest = try row?.optionalInt("lowest")
            // Nothing old, or only the row that proves the last known good: no delete.
            guard let upto, !(upto == keep && lowest == keep) else {
                return try retryingDeadlocks(write)
            }
            return try retryingDeadlocks {
                try connection.withTransaction {
                    // Delete before inserting: the delete's range locks are then taken
                    // before any new row exists, so two appenders queue instead of deadlocking.
                    try connection.execute("""
                        DELETE FROM audit_log WHERE id <= ? AND at < UTC_TIMESTAMP(6) - INTERVAL ? DAY AND id <> ?
                        """, [.int(upto), .int(Int64(retention.auditKeepDays)), .int(keep)])
                    return try write()
                }
            }
        }
    }
}
