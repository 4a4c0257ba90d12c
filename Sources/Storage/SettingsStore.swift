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
import Logging

// The store itself and the machinery its parts share (the version lock, deadlock
// retries, snapshots). Settings, history, audit, secrets and rate limits are
// extensions in SettingsStore+*.swift.

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
    let logger: Logger
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

    // MARK: - Internals

    /// Runs `body` in a transaction holding the version row's lock, passing the
    /// current version. The first save of an installation has no version row: the
    /// transaction is ended (releasing the gap lock, which would otherwise deadlock two
    /// concurrent first savers), the row is created as `0` in its own statement —
    /// concurrent creators simply find it there — and the transaction starts again.
    func withVersionLock<T>(_ body: (Int) throws -> T) throws -> T {
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

    /// Runs a whole transaction again when InnoDB chose it as a deadlock victim, or
    /// Galera's certification refused it (both errno 1213: the server rolled it back
    /// entirely, so running it again is safe). Up to five more attempts, each after a
    /// short random pause that grows (a few ms, then tens): two nodes writing one row
    /// without pause would otherwise collide again at once. Not inside a caller's
    /// transaction: there the caller decides.
    func retryingDeadlocks<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let error as StorageError where error.isDeadlock && !connection.isInTransaction && attempt < 5 {
                attempt += 1
                logger.notice("deadlock or certification conflict; running the transaction again", metadata: ["attempt": "\(attempt)"])
                usleep(UInt32.random(in: 2_000...(10_000 * UInt32(attempt))))
            }
        }
    }

    func checkExpected(_ expected: Int?, current: Int) throws {
        if let expected, expected != current {
            throw StorageError(.conflict, "the settings are at version \(current), the request expected version \(expected)",
                               currentVersion: current)
        }
    }

    /// The settings labels and values, read with row locks inside the transaction so
    /// they are the latest committed ones.
    func lockedSettingsValues() throws -> [String: String] {
        var values: [String: String] = [:]
        for row in try connection.query("SELECT label, value FROM information FOR UPDATE") {
            let label = try row.text("label")
            if Self.isSettingsLabel(label) { values[label] = try row.text("value") }
        }
        return values
    }

    func upsert(_ values: [String: String]) throws {
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
    func purgeHistoryPasswords() throws -> Int {
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

    /// Clearing the OAuth client secret removes its sealed copies from history too, as
    /// for the password, so a restore cannot bring back a secret someone withdrew.
    func purgeHistoryClientSecrets() throws {
        let result = try connection.execute("""
            UPDATE settings_history SET snapshot = JSON_REPLACE(snapshot, '$.oauth_client_secret', '')
            WHERE JSON_VALUE(snapshot, '$.oauth_client_secret') <> ''
            """)
        if result.affectedRows > 0 {
            logger.info("OAuth client secret cleared: sealed copies removed from history", metadata: ["versions": "\(result.affectedRows)"])
        }
    }

    func writeVersion(_ version: Int, snapshot: [String: String], changed: [String], restoredFrom: Int?, purgedPasswords: Int,
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

    static func settings(from rows: [SQLRow]) throws -> StoredSettings {
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

    static func parseVersion(_ text: String) throws -> Int {
        // Int(text) first; then without surrounding spaces or tabs, as older rows may have them.
        guard let v = Int(text) ?? Int(String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())),
              v >= 0 else {
            throw StorageError(.query, "\(versionLabel) holds \"\(text.prefix(40))\", not a version number")
        }
        return v
    }

    static func historyEntry(from row: SQLRow) throws -> SettingsHistoryEntry {
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

    static func decodeObject(_ text: String, what: String) throws -> [String: String] {
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
    let encodeValue: (Encoder) throws -> Void
    init<T: Encodable>(_ value: T) { encodeValue = value.encode(to:) }
    func encode(to encoder: Encoder) throws { try encodeValue(encoder) }
}

extension SQLRow {
    func optionalDate(_ name: String) throws -> Date? {
        if self[name]?.isNull ?? true { return nil }
        return try date(name)
    }
}
