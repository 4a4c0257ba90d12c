import Foundation
import Logging

/// The SMTP settings in MariaDB: read, save with optimistic concurrency, history,
/// restore, audit log, re-sealing of secrets, and shared rate-limit counters.
///
/// One store per worker thread; it owns one ``MariaDBConnection`` and must be used by
/// one thread at a time. Every method is one unit of work: it reconnects first if the
/// database went away and came back, and fails with `StorageError` `.unavailable`
/// (within about the configured read timeout) while it is away.
///
/// The settings live in DESIGN.md's `information` table, one row per label.
/// *Settings labels* are `from_address` and every `smtp_*` label except
/// `smtp_settings_version`, which holds the version and is managed by the store.
///
/// ```swift
/// let store = SettingsStore(configuration: configuration, logger: logger)
/// try store.migrate()                               // once at start (idempotent)
/// let current = try store.load()
/// let newVersion = try store.save(values: ["smtp_host": "mail.example.com", "smtp_port": "587"],
///                                 expectedVersion: current.version,
///                                 actor: "admin", remoteAddress: "192.0.2.7")
/// ```
public final class SettingsStore {
    /// The label that holds the settings version.
    public static let versionLabel = "smtp_settings_version"
    /// The label of the sealed SMTP password.
    public static let passwordLabel = "smtp_password"

    /// True for labels that belong to the settings (snapshotted in history, accepted by
    /// ``save(values:expectedVersion:actor:remoteAddress:)``).
    public static func isSettingsLabel(_ label: String) -> Bool {
        label == "from_address" || (label.hasPrefix("smtp_") && label != versionLabel)
            || (label.hasPrefix("oauth_") && !signInLabels.contains(label))
    }

    /// The OAuth sign-in state: written only by the sign-in flow (``writeSignIn(_:)``),
    /// never by a save, never snapshotted in history, never restored.
    public static let signInLabels: Set<String> = ["oauth_refresh_token", "oauth_account", "oauth_signed_in_at"]

    /// The connection this store owns (for ``withTransaction(_:)`` bodies).
    public let connection: MariaDBConnection
    private let logger: Logger
    /// How much history and audit the writes of this store keep (see ``RetentionPolicy``).
    public let retention: RetentionPolicy

    /// Makes a store with its own connection, opened lazily.
    /// - Parameters:
    ///   - configuration: where the database is.
    ///   - logger: reconnects, migrations and failures are logged here; never values.
    ///   - retention: what saves and audit appends prune; by default 500 versions and 365 days.
    public init(configuration: DatabaseConfiguration, logger: Logger = Logger(label: "emailsetup.storage"),
                retention: RetentionPolicy = RetentionPolicy()) {
        self.connection = MariaDBConnection(configuration: configuration, logger: logger)
        self.logger = logger
        self.retention = retention
    }

    /// Applies pending schema migrations (see ``SchemaMigrations``); the responder calls
    /// it once at start and `emailsetup migrate` calls it on demand. Safe to run from
    /// several processes at once.
    /// - Returns: the versions applied now, `[]` if none were pending.
    ///
    /// ```swift
    /// let applied = try SettingsStore(configuration: configuration).migrate()
    /// ```
    @discardableResult
    public func migrate() throws -> [Int] {
        try SchemaMigrations.migrate(connection, logger: logger)
    }

    // MARK: - Settings

    /// Reads every label with one statement, so the values and the version always come
    /// from the same committed state (InnoDB gives a single statement one snapshot).
    ///
    /// ```swift
    /// let settings = try store.load()
    /// let etag = "\"\(settings.version)\""
    /// ```
    public func load() throws -> StoredSettings {
        // read: no ping first (one round trip, not two); reconnects if the server restarted.
        let rows = try connection.read("SELECT label, value FROM information")
        return try Self.settings(from: rows)
    }

    /// ``load()`` and the newest version whose `action` succeeded (the first of
    /// ``versionsWithSuccess(action:limit:)``), in one statement: one round trip, and
    /// both from the same snapshot. GET of the settings runs this on every request.
    ///
    /// ```swift
    /// let (settings, lastKnownGood) = try store.loadWithLastSuccess(action: "test.send")
    /// ```
    public func loadWithLastSuccess(action: String) throws -> (StoredSettings, Int?) {
        let rows = try connection.read("""
            SELECT label, value FROM information
            UNION ALL
            SELECT NULL, MAX(settings_version) FROM audit_log WHERE action = ? AND outcome = 'success'
            """, [.text(action)])
        var settingsRows: [SQLRow] = []
        settingsRows.reserveCapacity(rows.count)
        var last: Int?
        for row in rows {
            if try row.optionalText("label") == nil {
                // The union's column is text; an integer would do as well.
                let value = row["value"]
                last = value?.textValue.flatMap { Int($0) } ?? value?.intValue.map { Int($0) }
            } else {
                settingsRows.append(row)
            }
        }
        return (try Self.settings(from: settingsRows), last)
    }

    /// Saves `values` as the next version, atomically.
    ///
    /// One transaction: lock the version row (`SELECT … FOR UPDATE`; created first if
    /// missing), compare with `expectedVersion`, upsert every label
    /// (`INSERT … ON DUPLICATE KEY UPDATE`), bump the version, write a history row (with
    /// the names of the labels whose values changed) and an `settings.save` audit row,
    /// prune history and audit (``RetentionPolicy``), commit. On any error nothing is
    /// written. Labels not in `values` keep their value.
    ///
    /// Two secret rules in the same transaction: the nonces of the transport
    /// ciphertexts the values came from are consumed first (each works once), and
    /// `smtp_password` saved as `""` (cleared) removes every sealed password from the
    /// history snapshots, so a cleared password cannot come back by a restore.
    ///
    /// - Parameters:
    ///   - values: settings labels → values; `smtp_password` must already be sealed.
    ///   - expectedVersion: the version the client saw (`If-Match`); `nil` skips the check.
    ///   - actor: the authenticated user.
    ///   - remoteAddress: the client address, if known.
    ///   - consumingNonces: field → the nonce of the transport ciphertext its value
    ///     was opened from (``TransportPlaintext/nonce``).
    /// - Returns: the new version.
    /// - Throws: `.conflict` with `currentVersion` when `expectedVersion` is stale;
    ///   `.transportNonce` (with `field`) for a nonce that is unknown, expired or used;
    ///   `.query` for a label that is not a settings label; `.unavailable` when the
    ///   database is away or busy.
    ///
    /// ```swift
    /// do {
    ///     let version = try store.save(values: form, expectedVersion: ifMatch, actor: user, remoteAddress: addr)
    /// } catch let error as StorageError where error.code == .conflict {
    ///     // 409, with error.currentVersion
    /// }
    /// ```
    public func save(values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                     consumingNonces: [String: String] = [:]) throws -> Int {
        if let bad = values.keys.sorted().first(where: { !Self.isSettingsLabel($0) }) {
            throw StorageError(.query, "\(bad) is not a settings label (from_address or smtp_*, not \(Self.versionLabel))")
        }
        return try withVersionLock { current in
            try consumeTransportNonces(consumingNonces)
            try checkExpected(expectedVersion, current: current)
            let previous = try lockedSettingsValues()
            let changed = values.keys.filter { previous[$0] != values[$0] }.sorted()
            let newVersion = current + 1
            try upsert(values)
            let purged = values[Self.passwordLabel] == "" ? try purgeHistoryPasswords() : 0
            var snapshot = previous
            snapshot.merge(values) { _, new in new }
            try writeVersion(newVersion, snapshot: snapshot, changed: changed, restoredFrom: nil, purgedPasswords: purged,
                             actor: actor, remoteAddress: remoteAddress, action: "settings.save")
            return newVersion
        }
    }

    /// The saved versions, newest first.
    /// - Parameters:
    ///   - limit: at most this many entries.
    ///   - offset: skip this many newest entries first.
    public func history(limit: Int = 50, offset: Int = 0) throws -> [SettingsHistoryEntry] {
        let rows = try connection.query("""
            SELECT version, saved_at, saved_by, remote_addr, changed_fields, snapshot, restored_from, password_purged_at
            FROM settings_history ORDER BY version DESC LIMIT ? OFFSET ?
            """, [.int(Int64(max(0, limit))), .int(Int64(max(0, offset)))])
        return try rows.map(Self.historyEntry(from:))
    }

    /// One saved version.
    /// - Throws: `.notFound` when there is no such version.
    public func historyEntry(version: Int) throws -> SettingsHistoryEntry {
        let rows = try connection.query("""
            SELECT version, saved_at, saved_by, remote_addr, changed_fields, snapshot, restored_from, password_purged_at
            FROM settings_history WHERE version = ?
            """, [.int(Int64(version))])
        guard let row = rows.first else { throw StorageError(.notFound, "settings version \(version) is not in the history") }
        return try Self.historyEntry(from: row)
    }

    /// Makes the values of an earlier version current again, as a NEW version (its
    /// history row has `restoredFrom = version`); settings labels that did not exist
    /// in that version are removed. Same transaction rules as ``save(values:expectedVersion:actor:remoteAddress:consumingNonces:)``;
    /// the audit action is `settings.restore`.
    ///
    /// The password follows the version, with one exception: a cleared password
    /// never comes back. When the version's password was removed from history (the
    /// password was cleared since), or the password is cleared now, the current
    /// password state is kept (``PasswordRestore/keptCurrent``). A version that had
    /// no password clears a password that is set (``PasswordRestore/cleared``), and
    /// that clearing removes every sealed copy from history like a save of `""`.
    /// - Parameters:
    ///   - version: the history version to restore.
    ///   - expectedVersion: the current version the client saw; `nil` skips the check.
    ///   - actor: the authenticated user.
    ///   - remoteAddress: the client address, if known.
    /// - Returns: the new version and what happened to the password.
    /// - Throws: `.notFound` for an unknown version, `.conflict` for a stale `expectedVersion`.
    ///
    /// ```swift
    /// let restored = try store.restore(version: 3, expectedVersion: 7, actor: "admin", remoteAddress: nil)
    /// if restored.password == .keptCurrent { /* say so */ }
    /// ```
    public func restore(version: Int, expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> SettingsRestore {
        try withVersionLock { current in
            try checkExpected(expectedVersion, current: current)
            let rows = try connection.query("SELECT snapshot, password_purged_at FROM settings_history WHERE version = ?",
                                            [.int(Int64(version))])
            guard let row = rows.first else { throw StorageError(.notFound, "settings version \(version) is not in the history") }
            var target = try Self.decodeObject(try row.text("snapshot"), what: "snapshot of version \(version)")
                .filter { Self.isSettingsLabel($0.key) }
            let previous = try lockedSettingsValues()
            let currentPassword = previous[Self.passwordLabel] ?? ""
            let targetPassword = target[Self.passwordLabel] ?? ""
            let password: PasswordRestore
            if try row.optionalDate("password_purged_at") != nil || (currentPassword.isEmpty && !targetPassword.isEmpty) {
                target[Self.passwordLabel] = previous[Self.passwordLabel]
                password = .keptCurrent
            } else if targetPassword.isEmpty && !currentPassword.isEmpty {
                target[Self.passwordLabel] = ""
                password = .cleared
            } else {
                password = .restored
            }
            let removed = previous.keys.filter { target[$0] == nil }.sorted()
            let changed = Set(target.keys.filter { previous[$0] != target[$0] }).union(removed).sorted()
            try upsert(target)
            for label in removed {
                try connection.execute("DELETE FROM information WHERE label = ?", [.text(label)])
            }
            let purged = password == .cleared ? try purgeHistoryPasswords() : 0
            let newVersion = current + 1
            try writeVersion(newVersion, snapshot: target, changed: changed, restoredFrom: version, purgedPasswords: purged,
                             actor: actor, remoteAddress: remoteAddress, action: "settings.restore")
            return SettingsRestore(version: newVersion, password: password)
        }
    }

    // MARK: - Audit

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

    // MARK: - Transactions and secrets

    /// Runs `body` in one transaction on this store's connection (rolled back if it
    /// throws); store methods called inside join it.
    ///
    /// ```swift
    /// try store.withTransaction { db in
    ///     _ = try db.query("SELECT value FROM information WHERE label = ? FOR UPDATE", ["smtp_password"])
    ///     try store.appendAudit(action: "key.rotate", outcome: "success", actor: "cli", remoteAddress: nil)
    /// }
    /// ```
    @discardableResult
    public func withTransaction<T>(_ body: (MariaDBConnection) throws -> T) throws -> T {
        try connection.withTransaction { try body(connection) }
    }

    /// Re-seals every stored secret in one transaction, for key rotation: applies
    /// `transform` to the non-empty `smtp_password` in `information` and in every
    /// history snapshot that still holds one (each version since the password was
    /// last cleared; clearing removed the older copies), writes a `secrets.rewrite` audit row, and commits — or, if
    /// `transform` throws anywhere, changes nothing. The settings version is not bumped
    /// (the settings did not change, only their encryption).
    /// - Parameters:
    ///   - actor: who rotates (e.g. `cli`).
    ///   - transform: sealed value in, re-sealed value out.
    /// - Returns: how many values were rewritten.
    ///
    /// ```swift
    /// let count = try store.rewriteSecrets(actor: "cli") { sealed in
    ///     try newKey.seal(try oldKey.open(sealed))
    /// }
    /// ```
    @discardableResult
    public func rewriteSecrets(actor: String, transform: (String) throws -> String) throws -> Int {
        try withVersionLock { current in
            var count = 0
            let rows = try connection.query("SELECT value FROM information WHERE label = ? FOR UPDATE", [.text(Self.passwordLabel)])
            if let sealed = try rows.first?.text("value"), !sealed.isEmpty {
                try connection.execute("UPDATE information SET value = ? WHERE label = ?",
                                       [.text(try transform(sealed)), .text(Self.passwordLabel)])
                count += 1
            }
            let history = try connection.query("SELECT version, snapshot FROM settings_history ORDER BY version FOR UPDATE")
            for row in history {
                let version = try row.int("version")
                var snapshot = try Self.decodeObject(try row.text("snapshot"), what: "snapshot of version \(version)")
                guard let sealed = snapshot[Self.passwordLabel], !sealed.isEmpty else { continue }
                snapshot[Self.passwordLabel] = try transform(sealed)
                try connection.execute("UPDATE settings_history SET snapshot = ? WHERE version = ?",
                                       [.text(try Self.encodeJSON(snapshot)), .int(version)])
                count += 1
            }
            try appendAudit(action: "secrets.rewrite", outcome: "success", actor: actor, remoteAddress: nil,
                            detail: try Self.encodeJSON(["rewritten": count]), settingsVersion: current)
            return count
        }
    }

    // MARK: - Rate limits

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
                // The upsert takes the row lock that serialises this bucket.
                try connection.execute("INSERT INTO rate_limit_buckets (bucket) VALUES (?) ON DUPLICATE KEY UPDATE bucket = bucket",
                                       [.text(bucket)])
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

    // MARK: - Internals

    /// Runs `body` in a transaction holding the version row's lock, passing the
    /// current version. The first save of an installation has no version row: the
    /// transaction is ended (releasing the gap lock, which would otherwise deadlock two
    /// concurrent first savers), the row is created as `0` in its own statement —
    /// concurrent creators simply find it there — and the transaction starts again.
    private func withVersionLock<T>(_ body: (Int) throws -> T) throws -> T {
        for _ in 0..<2 {
            let outcome: VersionLockOutcome<T> = try retryingDeadlocks {
                try connection.withTransaction {
                    let rows = try connection.query("SELECT value FROM information WHERE label = 'smtp_settings_version' FOR UPDATE")
                    guard let row = rows.first else { return .missingRow }
                    return .done(try body(try Self.parseVersion(try row.text("value"))))
                }
            }
            switch outcome {
            case .done(let result):
                return result
            case .missingRow:
                // Outside a transaction this is its own autocommitted statement; inside a
                // caller's transaction it joins it (and a deadlock is the caller's to retry).
                try connection.execute("INSERT INTO information (label, value) VALUES ('smtp_settings_version', '0') ON DUPLICATE KEY UPDATE label = label")
            }
        }
        throw StorageError(.query, "the \(Self.versionLabel) row could not be created")
    }

    /// Runs a whole transaction again when InnoDB chose it as a deadlock victim (the
    /// server rolled it back entirely, so running it again is safe). Not inside a
    /// caller's transaction: there the caller decides.
    func retryingDeadlocks<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let error as StorageError where error.isDeadlock && !connection.isInTransaction && attempt < 3 {
                attempt += 1
                logger.notice("deadlock; running the transaction again", metadata: ["attempt": "\(attempt)"])
            }
        }
    }

    private func checkExpected(_ expected: Int?, current: Int) throws {
        if let expected, expected != current {
            throw StorageError(.conflict, "the settings are at version \(current), the request expected version \(expected)",
                               currentVersion: current)
        }
    }

    /// The settings labels and values, read with row locks inside the transaction so
    /// they are the latest committed ones.
    private func lockedSettingsValues() throws -> [String: String] {
        var values: [String: String] = [:]
        for row in try connection.query("SELECT label, value FROM information FOR UPDATE") {
            let label = try row.text("label")
            if Self.isSettingsLabel(label) { values[label] = try row.text("value") }
        }
        return values
    }

    private func upsert(_ values: [String: String]) throws {
        for label in values.keys.sorted() {
            try connection.execute(
                "INSERT INTO information (label, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)",
                [.text(label), .text(values[label]!)])
        }
    }

    /// Removes every sealed password from the history snapshots (set to `""`, the
    /// row stamped `password_purged_at`; the other values stay), inside the
    /// caller's transaction. The snapshots are JSON objects of strings, so
    /// MariaDB's JSON functions edit them in place.
    /// - Returns: how many versions held one.
    private func purgeHistoryPasswords() throws -> Int {
        let result = try connection.execute("""
            UPDATE settings_history
            SET snapshot = JSON_REPLACE(snapshot, '$.smtp_password', ''), password_purged_at = UTC_TIMESTAMP(6)
            WHERE JSON_VALUE(snapshot, '$.smtp_password') <> ''
            """)
        if result.affectedRows > 0 {
            logger.info("password cleared: sealed copies removed from history", metadata: ["versions": "\(result.affectedRows)"])
        }
        return Int(result.affectedRows)
    }

    private func writeVersion(_ version: Int, snapshot: [String: String], changed: [String], restoredFrom: Int?, purgedPasswords: Int,
                              actor: String, remoteAddress: String?, action: String) throws {
        try connection.execute("UPDATE information SET value = ? WHERE label = 'smtp_settings_version'", [.text(String(version))])
        try connection.execute("""
            INSERT INTO settings_history (version, saved_at, saved_by, remote_addr, changed_fields, snapshot, restored_from)
            VALUES (?, UTC_TIMESTAMP(6), ?, ?, ?, ?, ?)
            """, [.int(Int64(version)), .text(actor), SQLValue(remoteAddress),
                  .text(try Self.encodeJSON(changed)), .text(try Self.encodeJSON(snapshot)), SQLValue(restoredFrom)])
        try pruneHistory(newVersion: version)
        var detail: [String: AnyEncodable] = ["changed_fields": AnyEncodable(changed)]
        if let restoredFrom { detail["restored_from"] = AnyEncodable(restoredFrom) }
        if purgedPasswords > 0 { detail["history_passwords_removed"] = AnyEncodable(purgedPasswords) }
        try appendAudit(action: action, outcome: "success", actor: actor, remoteAddress: remoteAddress,
                        detail: try Self.encodeJSON(detail), settingsVersion: version)
    }

    private static func settings(from rows: [SQLRow]) throws -> StoredSettings {
        var values: [String: String] = [:]
        var version = 0
        for row in rows {
            let label = try row.text("label")
            let value = try row.text("value")
            if label == versionLabel {
                version = try parseVersion(value)
            } else {
                values[label] = value
            }
        }
        return StoredSettings(values: values, version: version)
    }

    private static func parseVersion(_ text: String) throws -> Int {
        // Int(text) first: trimmingCharacters (Foundation) showed in GET's profile.
        guard let v = Int(text) ?? Int(text.trimmingCharacters(in: .whitespaces)), v >= 0 else {
            throw StorageError(.query, "\(versionLabel) holds \"\(text.prefix(40))\", not a version number")
        }
        return v
    }

    private static func historyEntry(from row: SQLRow) throws -> SettingsHistoryEntry {
        let version = Int(try row.int("version"))
        let changedText = try row.text("changed_fields")
        guard let changed = try? JSONDecoder().decode([String].self, from: Data(changedText.utf8)) else {
            throw StorageError(.query, "changed_fields of version \(version) is not a JSON array of strings")
        }
        return SettingsHistoryEntry(
            version: version, savedAt: try row.date("saved_at"), savedBy: try row.text("saved_by"),
            remoteAddress: try row.optionalText("remote_addr"), changedFields: changed,
            values: try decodeObject(try row.text("snapshot"), what: "snapshot of version \(version)"),
            restoredFrom: try row.optionalInt("restored_from").map(Int.init),
            passwordPurgedAt: try row.optionalDate("password_purged_at"))
    }

    static func encodeJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static func decodeObject(_ text: String, what: String) throws -> [String: String] {
        guard let object = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
            throw StorageError(.query, "the \(what) is not a JSON object of strings")
        }
        return object
    }
}

private enum VersionLockOutcome<T> {
    case done(T)
    case missingRow
}

/// A type-erased `Encodable` for small heterogeneous JSON details.
private struct AnyEncodable: Encodable {
    private let encodeValue: (Encoder) throws -> Void
    init<T: Encodable>(_ value: T) { encodeValue = value.encode(to:) }
    func encode(to encoder: Encoder) throws { try encodeValue(encoder) }
}

private extension SQLRow {
    func optionalDate(_ name: String) throws -> Date? {
        if self[name]?.isNull ?? true { return nil }
        return try date(name)
    }
}
