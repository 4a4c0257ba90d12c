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

/// The versioned schema of the Storage module and the code that applies it.
///
/// Each migration is a list of idempotent statements (`CREATE TABLE IF NOT EXISTS`), so
/// an installation whose `information` table already exists keeps it as it is, with its
/// rows, and a migration interrupted half-way is simply run again. Applied versions are
/// recorded in `schema_migrations`. MariaDB commits DDL implicitly, so migrations are
/// not transactional; instead, concurrent starts are serialised by the named lock
/// `GET_LOCK('emailsetup_migrate', …)`: the second responder waits (up to 10 s), then
/// finds nothing left to do.
///
/// ```swift
/// let applied = try SchemaMigrations.migrate(connection)   // [] when up to date
/// ```
public enum SchemaMigrations {
    /// One schema version.
    public struct Migration: Sendable {
        /// Increasing from 1; recorded in `schema_migrations.version`.
        public let version: Int
        /// A short description, recorded in `schema_migrations.name`.
        public let name: String
        let statements: [StaticString]
    }

    /// Every migration, in order.
    public static let all: [Migration] = [
        Migration(version: 1, name: "information, settings history, audit log", statements: [
            // Exactly DESIGN.md's table; an existing one (from the original system) is adopted as is.
            """
            CREATE TABLE IF NOT EXISTS information (
              label VARCHAR(191) NOT NULL PRIMARY KEY,
              value MEDIUMTEXT   NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
            // One row per saved version. `snapshot` is a JSON object of every settings
            // label (from_address, smtp_*) as stored after the save — the sealed
            // password included, never a clear one. `changed_fields` is a JSON array of
            // the labels whose value differed from the previous version.
            """
            CREATE TABLE IF NOT EXISTS settings_history (
              version        BIGINT       NOT NULL PRIMARY KEY,
              saved_at       DATETIME(6)  NOT NULL,
              saved_by       VARCHAR(191) NOT NULL,
              remote_addr    VARCHAR(64)  NULL,
              changed_fields TEXT         NOT NULL,
              snapshot       LONGTEXT     NOT NULL,
              restored_from  BIGINT       NULL,
              KEY settings_history_saved_at (saved_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
            // Who did what, when, from where, and how it ended. `detail` is JSON text
            // chosen by the caller; it must never hold a secret.
            """
            CREATE TABLE IF NOT EXISTS audit_log (
              id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
              at               DATETIME(6)  NOT NULL,
              actor            VARCHAR(191) NOT NULL,
              remote_addr      VARCHAR(64)  NULL,
              action           VARCHAR(64)  NOT NULL,
              outcome          VARCHAR(32)  NOT NULL,
              detail           MEDIUMTEXT   NULL,
              settings_version BIGINT       NULL,
              KEY audit_log_at (at),
              KEY audit_log_action (action, at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ]),
        Migration(version: 2, name: "rate limit counters", statements: [
            // One row per bucket: the row lock that serialises counting in a bucket
            // across responders.
            """
            CREATE TABLE IF NOT EXISTS rate_limit_buckets (
              bucket VARCHAR(191) NOT NULL PRIMARY KEY
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
            // One row per allowed event; rows older than the bucket's window are
            // deleted whenever the bucket is counted.
            """
            CREATE TABLE IF NOT EXISTS rate_limit_events (
              id     BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
              bucket VARCHAR(191) NOT NULL,
              at     DATETIME(6)  NOT NULL,
              KEY rate_limit_events_bucket_at (bucket, at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ]),
        Migration(version: 3, name: "index for the last known good version", statements: [
            // Every GET asks for MAX(settings_version) of successful test emails; with
            // this index that is one index dive instead of a scan of every test email
            // ever sent, so GET stays as fast when the audit log is years long.
            """
            CREATE INDEX IF NOT EXISTS audit_log_success ON audit_log (action, outcome, settings_version)
            """,
        ]),
        Migration(version: 4, name: "aggregated audit rows", statements: [
            // Repeated refusals (429, 403) are one row per action, outcome, user and
            // minute: `occurrences` counts them, `last_at` is the latest, and
            // `aggregated_minute` (NULL on every other row, so those never collide) is
            // the minute the unique key groups by.
            """
            ALTER TABLE audit_log
              ADD COLUMN IF NOT EXISTS occurrences       INT         NOT NULL DEFAULT 1,
              ADD COLUMN IF NOT EXISTS last_at           DATETIME(6) NULL,
              ADD COLUMN IF NOT EXISTS aggregated_minute DATETIME    NULL
            """,
            """
            CREATE UNIQUE INDEX IF NOT EXISTS audit_log_aggregate ON audit_log (aggregated_minute, action, outcome, actor)
            """,
        ]),
        Migration(version: 5, name: "password purge in history, transport nonces", statements: [
            // Clearing the password blanks every sealed copy in the history snapshots
            // and stamps the row here, so a restore of that version can tell "this
            // version had a password that is gone" from "this version had none".
            """
            ALTER TABLE settings_history ADD COLUMN IF NOT EXISTS password_purged_at DATETIME(6) NULL
            """,
            // One row per nonce handed out with the public key. A save deletes the
            // nonce its ciphertext carries (single use); expired rows are deleted
            // whenever a nonce is issued. Shared by every responder of the database.
            """
            CREATE TABLE IF NOT EXISTS transport_nonces (
              nonce      VARCHAR(32) NOT NULL PRIMARY KEY,
              expires_at DATETIME(6) NOT NULL,
              KEY transport_nonces_expires_at (expires_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin
            """,
            // An installation whose password is already cleared still has the copies
            // history kept before this version: purge them now, as a clear would have.
            """
            UPDATE settings_history
            SET snapshot = JSON_REPLACE(snapshot, '$.smtp_password', ''), password_purged_at = UTC_TIMESTAMP(6)
            WHERE JSON_VALUE(snapshot, '$.smtp_password') <> ''
              AND NOT EXISTS (SELECT 1 FROM information WHERE label = 'smtp_password' AND value <> '')
            """,
        ]),
        Migration(version: 6, name: "OAuth 2.0 access-token cache and pending sign-ins", statements: [
            // Access tokens, sealed, shared by every responder and CGI process. The row
            // is also the lock that lets one process at a time renew it (SELECT … FOR
            // UPDATE), so an expiring token never causes a herd of refreshes.
            """
            CREATE TABLE IF NOT EXISTS oauth_access_tokens (
              cache_key  VARCHAR(64) NOT NULL PRIMARY KEY,
              sealed     MEDIUMTEXT  NOT NULL,
              expires_at DATETIME(6) NULL,
              updated_at DATETIME(6) NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin
            """,
            // A sign-in under way: the `state` of an authorization-code flow (with the
            // sealed PKCE verifier) or a device flow (with the sealed device code),
            // bound to the administrator who started it, single-use, short-lived.
            """
            CREATE TABLE IF NOT EXISTS oauth_pending (
              handle     VARCHAR(64)  NOT NULL PRIMARY KEY,
              kind       VARCHAR(16)  NOT NULL,
              actor      VARCHAR(191) NOT NULL,
              sealed     MEDIUMTEXT   NOT NULL,
              expires_at DATETIME(6)  NOT NULL,
              KEY oauth_pending_expires_at (expires_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """,
        ]),
        Migration(version: 7, name: "data keys and transport key wrapped by the key-encryption key", statements: [
            // Every host's keys (see WrappedKeyStore): AES-256 data keys (`kind` data,
            // 8-hex ids) and the RSA transport private key (`transport`), each
            // AES-256-GCM-wrapped by the KEK; `kek_id` names the KEK that wrapped it.
            """
            CREATE TABLE IF NOT EXISTS secret_keys (
              key_id     VARCHAR(16) NOT NULL PRIMARY KEY,
              kind       VARCHAR(16) NOT NULL,
              wrapped    MEDIUMTEXT  NOT NULL,
              kek_id     CHAR(16)    NOT NULL,
              created_at DATETIME(6) NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin
            """,
            // The data key new values are sealed with: one row, id 1, the unique key
            // two hosts starting on an empty table race on.
            """
            CREATE TABLE IF NOT EXISTS secret_key_current (
              id     TINYINT     NOT NULL PRIMARY KEY,
              key_id VARCHAR(16) NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin
            """,
        ]),
    ]

    /// The highest version this build knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Seconds to wait for another process's migration before giving up.
    static let lockWaitSeconds = 10

    /// Applies every migration not yet recorded, under the named lock.
    /// - Parameters:
    ///   - connection: an idle connection (not in a transaction).
    ///   - logger: receives one line per applied migration.
    /// - Returns: the versions applied by this call, `[]` when the schema was current.
    /// - Throws: `StorageError` `.migration` (with MariaDB's errno) when a statement
    ///   fails or the lock is not obtained; `.unavailable` when the database is away.
    @discardableResult
    public static func migrate(_ connection: MariaDBConnection,
                               logger: Logger = Logger(label: "emailsetup.storage")) throws -> [Int] {
        precondition(!connection.isInTransaction, "migrate() inside a transaction")
        // The common case, checked without the lock: every known version recorded.
        // Under plain CGI this runs on every request, and the locked path costs a
        // named lock, a CREATE TABLE IF NOT EXISTS and its release; a responder that
        // starts while another migrates still takes the locked path and waits.
        if let recorded = try? Set(connection.query("SELECT version FROM schema_migrations").map { Int(try $0.int("version")) }),
           all.allSatisfy({ recorded.contains($0.version) }) {
            warnIfNewer(recorded, logger: logger)
            return []
        }
        return try connection.withUnitOfWork {
            try acquireLock(connection)
            defer {
                do { try connection.execute("DO RELEASE_LOCK('emailsetup_migrate')") } catch {
                    logger.warning("RELEASE_LOCK failed (the lock ends with the connection)", metadata: ["error": "\(error)"])
                }
            }
            try migrationStep("create schema_migrations") {
                try connection.run("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                      version    INT          NOT NULL PRIMARY KEY,
                      name       VARCHAR(191) NOT NULL,
                      applied_at DATETIME(6)  NOT NULL
                    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
                    """)
            }
            let applied = try Set(connection.query("SELECT version FROM schema_migrations").map { Int(try $0.int("version")) })
            warnIfNewer(applied, logger: logger)
            var done: [Int] = []
            for migration in all where !applied.contains(migration.version) {
                try migrationStep("migration \(migration.version) (\(migration.name))") {
                    for statement in migration.statements {
                        try connection.run(statement)
                    }
                    try connection.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))",
                        [.int(Int64(migration.version)), .text(migration.name)])
                }
                logger.info("applied schema migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                done.append(migration.version)
            }
            return done
        }
    }

    /// Logs when another (newer) build has migrated this database further.
    private static func warnIfNewer(_ recorded: Set<Int>, logger: Logger) {
        if let newest = recorded.max(), newest > latestVersion {
            logger.warning("the database schema is newer than this build", metadata: [
                "database_version": "\(newest)", "known_version": "\(latestVersion)",
            ])
        }
    }

    /// The versions recorded in `schema_migrations`, ascending; `[]` if the table is missing.
    public static func appliedVersions(_ connection: MariaDBConnection) throws -> [Int] {
        let exists = try connection.query("""
            SELECT COUNT(*) AS n FROM information_schema.tables
            WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'
            """)
        guard try exists.first?.int("n") ?? 0 > 0 else { return [] }
        return try connection.query("SELECT version FROM schema_migrations ORDER BY version").map { Int(try $0.int("version")) }
    }

    /// `GET_LOCK` one second at a time (each wait stays below the read timeout, so a
    /// long wait is not mistaken for a lost connection), up to `lockWaitSeconds`.
    private static func acquireLock(_ connection: MariaDBConnection) throws {
        for _ in 0..<lockWaitSeconds {
            let got = try connection.query("SELECT GET_LOCK('emailsetup_migrate', 1) AS got").first?["got"]
            if got == .int(1) { return }
            if got != .int(0) {
                throw StorageError(.migration, "GET_LOCK('emailsetup_migrate') failed: \(String(describing: got))")
            }
        }
        throw StorageError(.migration, "another process held the migration lock for more than \(lockWaitSeconds) s")
    }

    /// Rethrows database refusals as `.migration`, keeping errno and SQLSTATE;
    /// `.unavailable` passes through so the caller can tell "database away" apart.
    private static func migrationStep(_ what: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch var error as StorageError where error.code == .query {
            error.code = .migration
            error.message = "\(what): \(error.message)"
            throw error
        }
    }
}
