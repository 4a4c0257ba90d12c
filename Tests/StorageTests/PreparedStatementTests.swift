import Foundation
import Storage
import XCTest

/// The connection layer: values round-trip through prepared statements unchanged,
/// errors carry MariaDB's numbers, transactions commit or roll back, reconnects work.
final class PreparedStatementTests: StorageTestCase {
    private func makeRoundTripTable(_ db: MariaDBConnection) throws {
        try db.run("""
            CREATE TABLE sql_roundtrip (
              id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
              t MEDIUMTEXT NULL, b MEDIUMBLOB NULL, i BIGINT NULL, d DATETIME(6) NULL, f DOUBLE NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
            """)
    }

    func testAwkwardTextRoundTripsUnchanged() throws {
        let db = makeConnection()
        try makeRoundTripTable(db)
        let oneMiB = String(repeating: "ab€😀\\'\"cdef", count: 1 << 20 / 16) // multi-byte, exactly 1 MiB of UTF-8
        XCTAssertEqual(oneMiB.utf8.count, 1 << 20)
        let texts: [String?] = [
            nil, "", "😀 emoji, 👩‍👩‍👧 family, 𝄞 clef", oneMiB,
            "'; DROP TABLE information; --", #"back\slash "double" 'single' `tick` \' \\"#,
            "nul\u{0}inside\u{0}", "%_ ? ?? :name $1",
            String(repeating: "x", count: 1023), String(repeating: "y", count: 1024), String(repeating: "z", count: 1025),
        ]
        for text in texts {
            let id = try db.execute("INSERT INTO sql_roundtrip (t) VALUES (?)", [SQLValue(text)]).lastInsertID
            XCTAssertGreaterThan(id, 0)
            let rows = try db.query("SELECT t, LENGTH(t) AS bytes FROM sql_roundtrip WHERE id = ?", [.int(Int64(id))])
            XCTAssertEqual(rows.count, 1)
            XCTAssertEqual(rows.first?["t"], SQLValue(text), "round trip of \(text?.prefix(40) ?? "NULL")")
            if let text {
                XCTAssertEqual(try rows.first?.int("bytes"), Int64(text.utf8.count), "the server stored every byte")
            }
        }
        // The injection text was stored, not executed.
        XCTAssertEqual(try db.query("SELECT COUNT(*) AS n FROM sql_roundtrip").first?.int("n"), Int64(texts.count))
        // A value equal to SQL text in a WHERE compares as a value.
        let matched = try db.query("SELECT id FROM sql_roundtrip WHERE t = ?", ["' OR '1'='1"])
        XCTAssertEqual(matched.count, 0)
    }

    func testIntegersDatesBytesAndDoublesRoundTrip() throws {
        let db = makeConnection()
        try makeRoundTripTable(db)
        let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let oldDate = Date(timeIntervalSince1970: -86_400 * 365.25 * 50 + 0.5) // 1920, before the epoch
        let bytes = [UInt8](0...255) + [0, 0, 39, 92]
        for (i, d) in [(Int64.min, date), (Int64.max, oldDate), (0, date)] {
            let id = try db.execute("INSERT INTO sql_roundtrip (i, d, b, f) VALUES (?, ?, ?, ?)",
                                    [.int(i), .date(d), .bytes(bytes), .double(-1.5e300)]).lastInsertID
            let row = try XCTUnwrap(db.query("SELECT i, d, b, f, t FROM sql_roundtrip WHERE id = ?", [.int(Int64(id))]).first)
            XCTAssertEqual(row["i"], .int(i))
            XCTAssertEqual(try row.date("d").timeIntervalSince1970, d.timeIntervalSince1970, accuracy: 0.000_001)
            XCTAssertEqual(row["b"], .bytes(bytes))
            XCTAssertEqual(row["f"], .double(-1.5e300))
            XCTAssertEqual(row["t"], .null)
        }
        // Parameters echo back through SELECT ? with their types.
        let echo = try XCTUnwrap(db.query("SELECT ? AS a, ? AS b, ? AS c", [.int(42), .text("é"), .null]).first)
        XCTAssertEqual(echo["a"], .int(42))
        XCTAssertEqual(echo["b"], .text("é"))
        XCTAssertEqual(echo["c"], .null)
    }

    func testErrorsCarryErrnoSqlStateAndFunctionName() throws {
        let db = makeConnection()
        try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", ["smtp_host", "a"])
        let duplicate = assertStorageError(.query) {
            try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", ["smtp_host", "b"])
        }
        XCTAssertEqual(duplicate?.mariadbErrno, 1062)
        XCTAssertEqual(duplicate?.sqlState, "23000")
        XCTAssertTrue(duplicate?.message.hasPrefix("mysql_stmt_execute:") ?? false, duplicate?.message ?? "")

        let syntax = assertStorageError(.query) { try db.query("SELEKT 1") }
        XCTAssertEqual(syntax?.mariadbErrno, 1064)
        XCTAssertTrue(syntax?.message.hasPrefix("mysql_stmt_prepare:") ?? false, syntax?.message ?? "")

        let arity = assertStorageError(.query) { try db.query("SELECT ? AS a", []) }
        XCTAssertNil(arity?.mariadbErrno)
        // The connection is still usable after errors.
        XCTAssertEqual(try db.query("SELECT 1 AS one").first?["one"], .int(1))
    }

    func testTransactionCommitsOrRollsBackOnThrow() throws {
        let db = makeConnection()
        struct Boom: Error {}
        XCTAssertThrowsError(try db.withTransaction {
            try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", ["smtp_host", "rolled back"])
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertFalse(db.isInTransaction)
        XCTAssertEqual(try db.query("SELECT COUNT(*) AS n FROM information").first?.int("n"), 0)

        try db.withTransaction {
            try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", ["smtp_host", "kept"])
        }
        let other = makeConnection()
        XCTAssertEqual(try other.query("SELECT value FROM information WHERE label = ?", ["smtp_host"]).first?["value"], .text("kept"))
    }

    func testWrongPasswordIsAConfigurationError() throws {
        var bad = configuration!
        bad.password = "not the password"
        let error = assertStorageError(.configuration) { try MariaDBConnection(configuration: bad).connect() }
        XCTAssertEqual(error?.mariadbErrno, 1045)
        XCTAssertFalse(error?.description.contains("not the password") ?? true, "the password never appears in errors")
    }

    func testMissingSocketIsUnavailableAtOnce() throws {
        var bad = configuration!
        bad.endpoint = .unixSocket(path: "/nonexistent/mariadb.sock")
        let started = Date()
        let error = assertStorageError(.unavailable) { try MariaDBConnection(configuration: bad).connect() }
        XCTAssertEqual(error?.mariadbErrno, 2002)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }

    func testReconnectsAtTheStartOfTheNextUnitOfWorkAfterTheServerDroppedTheConnection() throws {
        let db = makeConnection()
        let first = try XCTUnwrap(db.query("SELECT CONNECTION_ID() AS id").first?.int("id"))
        // The server closes idle connections after wait_timeout: the next use finds it gone.
        try db.execute("SET SESSION wait_timeout = ?", [.int(1)])
        Thread.sleep(forTimeInterval: 2.2)
        let second = try XCTUnwrap(db.query("SELECT CONNECTION_ID() AS id").first?.int("id"))
        XCTAssertNotEqual(first, second, "a new connection was opened")
        XCTAssertEqual(try db.query("SELECT @@session.time_zone AS tz").first?["tz"], .text("+00:00"), "session set-up ran again")
    }
}
