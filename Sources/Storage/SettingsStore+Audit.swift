// The audit log: appending (single and aggregated rows) and reading it.
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

extension SettingsStore {
    /// Appends one audit row (its own transaction, or the caller's inside
    /// ``withTransaction(_:)``), deleting rows older than the retention's
    /// `auditKeepDays` in the same transaction (at most `batchLimit` of them).
    /// - Parameters:
    ///   - action: what happened, e.g. `test.send`.
    ///   - outcome: how it ended, e.g. `success`, `failure`, `conflict`.
    ///   - actor: who.
    ///   - remoteAddress: from where, if known.
    ///   - detail: JSON or text; never a secret.
    ///   - settingsVersion: the settings version concerned, if any.
    /// - Returns: the row's id.
    ///
    /// ```swift
    /// try store.appendAudit(action: "test.send", outcome: "failure", actor: user, remoteAddress: addr,
    ///                       detail: #"{"stage":"auth","kind":"auth_rejected"}"#, settingsVersion: 4)
    /// ```
    @discardableResult
    public func appendAudit(action: String, outcome: String, actor: String, remoteAddress: String?,
                            detail: String? = nil, settingsVersion: Int? = nil) throws -> Int64 {
        try withAuditPruning {
            let result = try connection.execute("""
                INSERT INTO audit_log (at, actor, remote_addr, action, outcome, detail, settings_version)
                VALUES (UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, ?)
                """, [.text(actor), SQLValue(remoteAddress), .text(action), .text(outcome), SQLValue(detail), SQLValue(settingsVersion)])
            return Int64(result.lastInsertID)
        }
    }

    /// Counts a repeated event (a refusal: 429, 403) in one audit row per `action`,
    /// `outcome`, `actor` and minute of the database clock: the first event of the
    /// minute inserts the row (with its `remoteAddress`, `detail` and
    /// `settingsVersion`), later ones add one to its ``AuditEntry/count`` and set
    /// ``AuditEntry/lastAt``. Prunes like ``appendAudit(action:outcome:actor:remoteAddress:detail:settingsVersion:)``.
    ///
    /// Why: 5,000 refused requests in a few seconds wrote 4,990 audit rows; what an
    /// operator needs is who, how often and when, not each request.
    /// - Parameters: as for ``appendAudit(action:outcome:actor:remoteAddress:detail:settingsVersion:)``.
    ///
    /// ```swift
    /// try store.appendAggregatedAudit(action: "test.send", outcome: "rate_limited", actor: user,
    ///                                 remoteAddress: addr, detail: #"{"bucket":"smtp-test:all"}"#, settingsVersion: 4)
    /// ```
    public func appendAggregatedAudit(action: String, outcome: String, actor: String, remoteAddress: String?,
                                      detail: String? = nil, settingsVersion: Int? = nil) throws {
        try withAuditPruning {
            // Concurrent first events of a minute can deadlock on the new unique key
            // (both wait to update the row the first one inserted); withAuditPruning
            // runs the statement again, when the row exists and it simply adds one.
            _ = try connection.execute("""
                INSERT INTO audit_log (at, actor, remote_addr, action, outcome, detail, settings_version,
                                       occurrences, last_at, aggregated_minute)
                VALUES (UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(6), DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:00'))
                ON DUPLICATE KEY UPDATE occurrences = occurrences + 1, last_at = VALUES(last_at)
                """, [.text(actor), SQLValue(remoteAddress), .text(action), .text(outcome), SQLValue(detail), SQLValue(settingsVersion)])
        }
    }

    /// Settings versions whose `action` (e.g. `test.send`) succeeded, newest first,
    /// each once: the "last known good" version is the first.
    /// - Parameters:
    ///   - action: the audit action that proves a version, e.g. `test.send`.
    ///   - limit: at most this many versions.
    public func versionsWithSuccess(action: String, limit: Int = 1) throws -> [Int] {
        let rows = try connection.read("""
            SELECT settings_version AS v FROM audit_log
            WHERE action = ? AND outcome = 'success' AND settings_version IS NOT NULL
            GROUP BY settings_version ORDER BY settings_version DESC LIMIT ?
            """, [.text(action), .int(Int64(max(0, limit)))])
        return try rows.map { Int(try $0.int("v")) }
    }

    /// The audit log, newest first.
    public func audit(limit: Int = 50, offset: Int = 0) throws -> [AuditEntry] {
        let rows = try connection.query("""
            SELECT id, at, actor, remote_addr, action, outcome, detail, settings_version, occurrences, last_at
            FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?
            """, [.int(Int64(max(0, limit))), .int(Int64(max(0, offset)))])
        return try rows.map { row in
            AuditEntry(id: try row.int("id"), at: try row.date("at"), actor: try row.text("actor"),
                       remoteAddress: try row.optionalText("remote_addr"), action: try row.text("action"),
                       outcome: try row.text("outcome"), detail: try row.optionalText("detail"),
                       settingsVersion: try row.optionalInt("settings_version").map(Int.init),
                       count: Int(try row.int("occurrences")), lastAt: try row.optionalDate("last_at"))
        }
    }
}
