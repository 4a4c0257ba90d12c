import Foundation
import Storage
import XCTest

/// Schema migrations: idempotent, adopt an existing `information` table with its rows,
/// and safe when several responders start at once.
final class MigrationTests: StorageTestCase {
    override var migrateInSetUp: Bool { false }

    func testMigratingTwiceAppliesEverythingOnceThenNothing() throws {
        let db = makeConnection()
        XCTAssertEqual(try SchemaMigrations.appliedVersions(db), [])
        XCTAssertEqual(try SchemaMigrations.migrate(db), [1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(try SchemaMigrations.migrate(db), [])
        XCTAssertEqual(try SchemaMigrations.appliedVersions(db), [1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(SchemaMigrations.latestVersion, 7)
        let tables = try db.query("""
            SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name
            """).map { try $0.text("name") }
        XCTAssertEqual(tables, ["audit_log", "information", "oauth_access_tokens", "oauth_pending", "rate_limit_buckets", "rate_limit_events", "schema_migrations", "secret_keys", "secret_key_current", "settings_history", "transport_nonces"])
        // `information` is exactly DESIGN.md's table.
        let columns = try db.query("""
            SELECT column_name AS name, column_type AS type, is_nullable AS nullable, collation_name AS collation
            FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'information' ORDER BY ordinal_position
            """)
        XCTAssertEqual(try columns.map { try $0.text("name") }, ["label", "value"])
        XCTAssertEqual(try columns.map { try $0.text("type") }, ["varchar(191)", "mediumtext"])
        XCTAssertEqual(try columns.map { try $0.text("nullable") }, ["NO", "NO"])
        XCTAssertEqual(try columns.map { try $0.text("collation") }, ["utf8mb4_bin", "utf8mb4_bin"])
    }

    func testACurrentSchemaIsCheckedWithoutWaitingForTheMigrationLock() throws {
        let db = makeConnection()
        XCTAssertEqual(try SchemaMigrations.migrate(db), [1, 2, 3, 4, 5, 6, 7])
        // Another process holds the lock (migrating, or stuck). A responder whose
        // schema is current must not wait for it: under CGI that is every request.
        let holder = makeConnection()
        XCTAssertEqual(try holder.query("SELECT GET_LOCK('emailsetup_migrate', 0) AS got").first?["got"]?.intValue, 1)
        defer { _ = try? holder.query("SELECT RELEASE_LOCK('emailsetup_migrate') AS released") }
        let started = Date()
        XCTAssertEqual(try SchemaMigrations.migrate(makeConnection()), [])
        XCTAssertLessThan(Date().timeIntervalSince(started), 1, "waited for the lock although nothing was to do")
    }

    func testAdoptsAnExistingInformationTableWithItsRows() throws {
        let db = makeConnection()
        // An installation of the original system: its table and rows, no other tables.
        try db.run("""
            CREATE TABLE information (
              label VARCHAR(191) NOT NULL PRIMARY KEY,
              value MEDIUMTEXT   NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """)
        let existing = ["smtp_host": "legacy.example.com", "smtp_port": "2525", "from_address": "noreply@example.com",
                        "site_name": "an unrelated row of the original system"]
        for (label, value) in existing {
            try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", [.text(label), .text(value)])
        }
        try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", ["smtp_settings_version", "7"])

        let store = makeStore()
        XCTAssertEqual(try store.migrate(), [1, 2, 3, 4, 5, 6, 7])
        let loaded = try store.load()
        XCTAssertEqual(loaded.values, existing)
        XCTAssertEqual(loaded.version, 7)

        let version = try store.save(values: ["smtp_port": "587"], expectedVersion: 7, actor: "admin", remoteAddress: nil)
        XCTAssertEqual(version, 8)
        let entry = try store.historyEntry(version: 8)
        XCTAssertEqual(entry.changedFields, ["smtp_port"])
        XCTAssertEqual(entry.values, ["smtp_host": "legacy.example.com", "smtp_port": "587", "from_address": "noreply@example.com"],
                       "history snapshots hold the settings labels only")
        XCTAssertEqual(try store.load().values["site_name"], existing["site_name"], "unrelated rows are left alone")
    }

    func testConcurrentMigrationsApplyEachVersionExactlyOnce() throws {
        let configuration = self.configuration!
        let applied = Locked<[[Int]]>([])
        let errors = Locked<[String]>([])
        onThreads(6) { _ in
            do {
                let result = try SettingsStore(configuration: configuration).migrate()
                applied.withLock { $0.append(result) }
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(errors.current, [])
        XCTAssertEqual(applied.current.flatMap { $0 }.sorted(), [1, 2, 3, 4, 5, 6, 7], "each version applied by exactly one process")
        XCTAssertEqual(try SchemaMigrations.appliedVersions(makeConnection()), [1, 2, 3, 4, 5, 6, 7])
    }
}
