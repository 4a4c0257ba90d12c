// The connection the rest of Storage uses: units of work, transactions and
// reconnecting, in plain Swift over the handles of MariaDBHandles.swift.
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

/// One MariaDB connection, for use by one thread at a time, that reconnects by itself
/// between units of work.
///
/// A *unit of work* is one call to ``execute(_:_:)`` outside a transaction, one
/// ``withTransaction(_:)``, or one ``withUnitOfWork(_:)``. At the start of each, the
/// connection makes sure it is live: it connects if it has no connection, or pings the
/// one it has and reconnects once if the server went away (errno 2006/2013/2002…).
/// It never reconnects inside a unit of work: a connection lost in the middle of a
/// transaction fails that transaction with `.unavailable`, and the next unit of work
/// starts on a fresh connection. `MYSQL_OPT_RECONNECT` is not used.
///
/// Every statement that carries a value is a prepared statement; SQL is accepted only
/// as `StaticString`, so no SQL text can be built from input at run time. Prepared
/// statements are cached per connection by their SQL.
///
/// Each session runs with `time_zone = '+00:00'` (DATETIME columns hold UTC),
/// `innodb_lock_wait_timeout` from the configuration and, on a Galera node,
/// `wsrep_sync_wait = 1` (causal reads: see docs/DECISIONS.md "Galera").
///
/// ```swift
/// let db = MariaDBConnection(configuration: configuration)
/// try db.withTransaction {
///     try db.execute("INSERT INTO information (label, value) VALUES (?, ?)", [.text("smtp_host"), .text("mail.example.com")])
/// }
/// let rows = try db.query("SELECT value FROM information WHERE label = ?", ["smtp_host"])
/// ```
public final class MariaDBConnection {
    /// Where this connection connects to.
    public let configuration: DatabaseConfiguration
    private let logger: Logger
    private var session: Session?
    private var unitDepth = 0
    private var transactionDepth = 0

    /// Makes a connection object; nothing is opened until the first unit of work or
    /// ``connect()``.
    /// - Parameters:
    ///   - configuration: where and how to connect.
    ///   - logger: receives reconnects and failures (never values or passwords).
    public init(configuration: DatabaseConfiguration, logger: Logger = Logger(label: "emailsetup.storage")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// True while a connection is open (it may still turn out to be dead).
    public var isConnected: Bool { session != nil }

    /// True inside ``withTransaction(_:)``.
    public var isInTransaction: Bool { transactionDepth > 0 }

    /// Opens the connection now, or checks the open one (ping, reconnect if needed).
    public func connect() throws {
        try withUnitOfWork {}
    }

    /// Closes the connection (statements first). The next unit of work reopens it.
    public func close() {
        precondition(transactionDepth == 0, "close() inside a transaction")
        session = nil
    }

    /// Runs one statement with bound parameters; outside a transaction it is a unit of
    /// work of its own.
    /// - Parameters:
    ///   - sql: the SQL with `?` placeholders; a literal, never built from input.
    ///   - parameters: one value per placeholder.
    /// - Returns: rows, affected-row count and generated id.
    @discardableResult
    public func execute(_ sql: StaticString, _ parameters: [SQLValue] = []) throws -> SQLResult {
        try withUnitOfWork {
            try withSession { try $0.execute(sql, parameters) }
        }
    }

    /// Runs one statement and returns its rows; see ``execute(_:_:)``.
    public func query(_ sql: StaticString, _ parameters: [SQLValue] = []) throws -> [SQLRow] {
        try execute(sql, parameters).rows
    }

    /// Runs one read-only statement (a `SELECT`) as its own unit of work, without the
    /// liveness ping that ``execute(_:_:)`` sends first: on a connection in steady use
    /// that ping doubles the round trips of every read. When the statement finds the
    /// connection dead (the server restarted, or closed it while idle), it runs once
    /// more on a fresh connection — safe, because it changes nothing. A server that
    /// hangs fails it within the read timeout, as with the ping. Inside a unit of work
    /// or a transaction it is ``query(_:_:)``.
    ///
    /// ```swift
    /// let rows = try db.read("SELECT label, value FROM information")
    /// ```
    public func read(_ sql: StaticString, _ parameters: [SQLValue] = []) throws -> [SQLRow] {
        guard unitDepth == 0, session != nil else { return try query(sql, parameters) }
        let started = Date()
        do {
            unitDepth += 1
            defer { unitDepth -= 1 }
            return try withSession { try $0.execute(sql, parameters) }.rows
        } catch let error as StorageError where error.meansConnectionLost {
            // withSession dropped the session. A hung server already cost the read
            // timeout: fail now, as ensureLive does after a slow ping.
            if Date().timeIntervalSince(started) > configuration.readTimeout / 2 {
                logger.warning("database not answering; giving up on this unit of work", metadata: ["error": "\(error)"])
                throw error
            }
            logger.notice("database connection found dead; reconnecting", metadata: ["error": "\(error)"])
            return try query(sql, parameters)
        }
    }

    /// Runs a fixed statement that has no parameters and no result (DDL, session
    /// settings) over the text protocol.
    public func run(_ sql: StaticString) throws {
        try withUnitOfWork {
            try withSession { try $0.handle.run(sql) }
        }
    }

    /// Groups several statements into one unit of work without a transaction: the
    /// connection is checked (and re-opened if the server went away) once, before
    /// `body`, never during it.
    public func withUnitOfWork<T>(_ body: () throws -> T) throws -> T {
        if unitDepth == 0 {
            try ensureLive()
        }
        unitDepth += 1
        defer { unitDepth -= 1 }
        return try body()
    }

    /// Runs `body` in one transaction: `START TRANSACTION`, then `COMMIT` if `body`
    /// returns, `ROLLBACK` if it throws (the error is rethrown). A failing `COMMIT`
    /// throws. Nested calls join the outermost transaction.
    ///
    /// ```swift
    /// let id = try db.withTransaction {
    ///     try db.execute("INSERT INTO audit_log (at, actor, action, outcome) VALUES (UTC_TIMESTAMP(6), ?, ?, ?)",
    ///                    ["admin", "test.send", "success"]).lastInsertID
    /// }
    /// ```
    @discardableResult
    public func withTransaction<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 {
            return try body()
        }
        return try withUnitOfWork {
            try withSession { try $0.handle.run("START TRANSACTION") }
            transactionDepth = 1
            let result: T
            do {
                result = try body()
            } catch {
                transactionDepth = 0
                rollbackQuietly()
                throw error
            }
            do {
                try withSession { try $0.handle.run("COMMIT") }
            } catch {
                transactionDepth = 0
                rollbackQuietly()
                throw error
            }
            transactionDepth = 0
            return result
        }
    }

    // MARK: Internals

    /// Galera: reads and transaction starts wait until this node has applied every
    /// write the cluster committed before them (`wsrep_sync_wait = 1`: SELECT, SHOW,
    /// START TRANSACTION), so a GET through one node sees a save made through another,
    /// and a save's version check reads the latest version. Without wsrep the setting
    /// does nothing; a server that does not know it (MySQL, MariaDB built without
    /// wsrep) cannot be a Galera node, so its refusal is ignored.
    private static func requestCausalReads(_ session: Session) throws {
        do {
            try session.handle.run("SET SESSION wsrep_sync_wait = 1")
        } catch let error as StorageError where error.mariadbErrno == MariaDBErrno.unknownSystemVariable {
            return
        }
    }

    private func rollbackQuietly() {
        guard let session else { return } // lost: the server rolled back already
        do {
            try session.handle.run("ROLLBACK")
        } catch {
            logger.warning("ROLLBACK failed; dropping the connection", metadata: ["error": "\(error)"])
            self.session = nil
        }
    }

    /// Runs `body` on the current session; drops the session when the error says the
    /// connection is gone.
    private func withSession<T>(_ body: (Session) throws -> T) throws -> T {
        guard let session else {
            throw StorageError(.unavailable, "the database connection was lost during this unit of work")
        }
        do {
            return try body(session)
        } catch let error as StorageError where error.meansConnectionLost {
            logger.warning("database connection lost", metadata: ["error": "\(error)"])
            self.session = nil
            throw error
        }
    }

    private func ensureLive() throws {
        if let session {
            let pingStarted = Date()
            do {
                try session.handle.ping()
                return
            } catch let error as StorageError where error.meansConnectionLost {
                self.session = nil
                // A server that restarted fails the ping at once: reconnect now. One that
                // hangs made the ping wait for the read timeout: connecting now would add
                // the connect timeout on top, so fail this unit of work and let the next
                // one connect afresh.
                if Date().timeIntervalSince(pingStarted) > configuration.readTimeout / 2 {
                    logger.warning("database not answering; giving up on this unit of work", metadata: ["error": "\(error)"])
                    throw error
                }
                logger.notice("database connection found dead; reconnecting", metadata: ["error": "\(error)"])
            } catch {
                self.session = nil
                throw error
            }
        }
        let started = Date()
        do {
            let handle = try ConnectionHandle(configuration: configuration)
            let session = Session(handle: handle)
            try session.handle.run("SET time_zone = '+00:00'")
            _ = try session.execute("SET SESSION innodb_lock_wait_timeout = ?", [.int(Int64(max(1, configuration.lockWaitTimeout)))])
            try Self.requestCausalReads(session)
            self.session = session
            logger.debug("connected to the database", metadata: ["database": "\(configuration)"])
        } catch {
            // Debug, not warning: while the database is down every unit of work lands
            // here, and the responder logs outages itself, once (StorageOutageLog).
            logger.debug("cannot connect to the database", metadata: [
                "database": "\(configuration)", "error": "\(error)",
                "after_ms": "\(Int(Date().timeIntervalSince(started) * 1000))",
            ])
            throw error
        }
    }
}
