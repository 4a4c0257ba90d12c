// Rate-limit counters shared by every responder using the database.
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
    /// Counts an event in `bucket` against `limit` events per sliding `window`, shared
    /// by every responder using this database.
    ///
    /// One transaction: lock the bucket's row (created on first use), delete its events
    /// older than the window, count the rest; below `limit` the event is recorded and
    /// allowed, otherwise it is refused (and not recorded) with the time until the
    /// oldest counted event leaves the window. Times come from the database clock, so
    /// responders on several hosts agree.
    /// - Parameters:
    ///   - bucket: what is limited, e.g. `test-email:admin` (at most 191 characters).
    ///   - window: the sliding window, seconds (microsecond precision).
    ///   - limit: events allowed per window.
    ///
    /// ```swift
    /// switch try store.recordAndCount(bucket: "test-email:\(user)", window: 60, limit: 5) {
    /// case .allowed: sendTestEmail()
    /// case .limited(let retryAfter): respond429(retryAfter: Int(retryAfter.rounded(.up)))
    /// }
    /// ```
    public func recordAndCount(bucket: String, window: TimeInterval, limit: Int) throws -> RateDecision {
        let windowMicros = Int64((max(0, window) * 1_000_000).rounded())
        return try retryingDeadlocks {
            try connection.withTransaction {
                // The upsert takes the row lock that serialises this bucket on this server.
                try connection.execute("INSERT INTO rate_limit_buckets (bucket) VALUES (?) ON DUPLICATE KEY UPDATE bucket = bucket",
                                       [.text(bucket)])
                // Galera locks rows on one node only and certifies only rows a transaction
                // changed: rewriting the bucket's row (under the lock just taken) makes two
                // counts of one bucket on two nodes conflict, so the second fails
                // certification and is counted again after the first (retryingDeadlocks).
                try connection.execute("DELETE FROM rate_limit_buckets WHERE bucket = ?", [.text(bucket)])
                try connection.execute("INSERT INTO rate_limit_buckets (bucket) VALUES (?)", [.text(bucket)])
                try connection.execute("""
                    DELETE FROM rate_limit_events
                    WHERE bucket = ? AND at <= UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND
                    """, [.text(bucket), .int(windowMicros)])
                let rows = try connection.query("""
                    SELECT COUNT(*) AS n, MIN(at) AS oldest, UTC_TIMESTAMP(6) AS now
                    FROM rate_limit_events WHERE bucket = ?
                    """, [.text(bucket)])
                guard let row = rows.first else { throw StorageError(.query, "COUNT(*) returned no row") }
                let count = Int(try row.int("n"))
                if count < limit {
                    try connection.execute("INSERT INTO rate_limit_events (bucket, at) VALUES (?, UTC_TIMESTAMP(6))", [.text(bucket)])
                    return .allowed(remaining: limit - count - 1)
                }
                let now = try row.date("now")
                let oldest = try row.optionalDate("oldest") ?? now
                return .limited(retryAfter: max(0.001, oldest.addingTimeInterval(window).timeIntervalSince(now)))
            }
        }
    }
}
