import Foundation
import Synchronization
import Storage
import TestSupport
import XCTest

/// Base class of the database tests: reads the test database from the environment
/// (failing loudly when it is not set — never skipping), and gives every test a clean
/// slate by dropping the module's tables and migrating again.
class StorageTestCase: XCTestCase {
    var environment: DatabaseTestEnvironment!
    var configuration: DatabaseConfiguration!

    /// Every table the module or these tests create in the test database.
    static func dropAllTables(_ connection: MariaDBConnection) throws {
        try connection.run("""
            DROP TABLE IF EXISTS information, settings_history, audit_log, rate_limit_buckets,
                                 rate_limit_events, schema_migrations, transport_nonces, sql_roundtrip,
                                 oauth_access_tokens, oauth_pending, secret_keys, secret_key_current
            """)
    }

    /// Set to false by tests that want to start from no tables at all.
    var migrateInSetUp: Bool { true }

    /// Without the environment the test fails with a message naming what is missing,
    /// and its body does not run (throwing from setUp would be reported as "skipped").
    override func invokeTest() {
        do {
            environment = try DatabaseTestEnvironment.fromEnvironment()
        } catch {
            XCTFail("\(error)")
            return
        }
        super.invokeTest()
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        configuration = DatabaseConfiguration(endpoint: .unixSocket(path: environment.socketPath), user: environment.user,
                                              password: environment.password, database: environment.databaseName)
        let connection = MariaDBConnection(configuration: configuration)
        try Self.dropAllTables(connection)
        if migrateInSetUp {
            try SchemaMigrations.migrate(connection)
        }
        connection.close()
    }

    func makeStore() -> SettingsStore {
        SettingsStore(configuration: configuration)
    }

    func makeConnection() -> MariaDBConnection {
        MariaDBConnection(configuration: configuration)
    }

    /// Asserts that `body` throws a `StorageError` with `code`, and returns it.
    @discardableResult
    func assertStorageError<T>(_ code: StorageError.Code, file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> T) -> StorageError? {
        do {
            let value = try body()
            XCTFail("expected StorageError \(code), got \(value)", file: file, line: line)
            return nil
        } catch let error as StorageError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected StorageError \(code), got \(error)", file: file, line: line)
            return nil
        }
    }

    /// Notes a measurement on stderr when EMAILSETUP_TEST_VERBOSE is set (stdout is
    /// left alone).
    func note(_ text: String) {
        if ProcessInfo.processInfo.environment["EMAILSETUP_TEST_VERBOSE"] != nil {
            FileHandle.standardError.write(Data("[\(name)] \(text)\n".utf8))
        }
    }

    /// Runs `body(i)` for i in 0..<count, each on its own thread, and waits.
    func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            let thread = Thread {
                MariaDBLibrary.threadDidStart()
                body(i)
                MariaDBLibrary.threadWillExit()
                group.leave()
            }
            thread.start()
        }
        group.wait()
    }
}

/// A mutable box shared between test threads, guarded by a lock.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) throws -> T) rethrows -> T {
        try value.withLock { try body(&$0) }
    }
    var current: Value { withLock { $0 } }
}
