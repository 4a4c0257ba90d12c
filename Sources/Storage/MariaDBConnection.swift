// The one file that touches MariaDB Connector/C. Every C pointer (MYSQL*, MYSQL_STMT*,
// MYSQL_RES*, MYSQL_BIND arrays and their buffers) is owned by a final class below,
// created and freed here; nothing above this file sees a pointer.
//
// Threads: Connector/C is thread-safe as long as one MYSQL handle (and its statements)
// is used by one thread at a time. `mysql_library_init` is NOT thread-safe and must run
// once before threads start: `MariaDBLibrary.initialize()` does that (and every
// `MariaDBConnection` calls it too, so a forgotten call still happens exactly once, via
// Swift's thread-safe lazy `static let`). Worker threads may call
// `MariaDBLibrary.threadDidStart()` first and `threadWillExit()` last; in Connector/C
// 3.x `mysql_init` performs the per-thread set-up itself and `mysql_thread_end` frees
// nothing of consequence, so forgetting them leaks nothing, but calling them keeps the
// code correct against libmysqlclient too.
import CMariaDB
import Foundation
import Logging

// MARK: - Library and thread set-up

/// Process-wide and per-thread set-up of the MariaDB client library.
///
/// ```swift
/// try MariaDBLibrary.initialize()          // once, in main, before starting workers
/// Thread {
///     MariaDBLibrary.threadDidStart()
///     defer { MariaDBLibrary.threadWillExit() }
///     let store = SettingsStore(configuration: configuration)
///     // … serve requests with `store` on this thread only …
/// }.start()
/// ```
public enum MariaDBLibrary {
    private static let initialization: Result<Void, StorageError> = {
        // mysql_library_init is a macro for mysql_server_init.
        if mysql_server_init(0, nil, nil) != 0 {
            return .failure(StorageError(.configuration, "mysql_library_init: the MariaDB client library failed to initialise"))
        }
        return .success(())
    }()

    /// Initialises Connector/C once per process. Safe to call many times and from
    /// any thread (the first call does the work; the others wait for it).
    public static func initialize() throws {
        try initialization.get()
    }

    /// Per-thread set-up (`mysql_thread_init`); call first thing on a worker thread.
    public static func threadDidStart() {
        _ = mysql_thread_init()
    }

    /// Per-thread clean-up (`mysql_thread_end`); call last thing on a worker thread,
    /// after every connection the thread used has been closed.
    public static func threadWillExit() {
        mysql_thread_end()
    }
}

// MARK: - Errors from C return codes

/// Where to ask for the error after a failed call.
private enum ErrorSource {
    case connection(UnsafeMutablePointer<MYSQL>)
    case statement(UnsafeMutablePointer<MYSQL_STMT>)
}

/// Client error numbers (errmsg.h) and server error numbers (mysqld_error.h) we act on.
private enum MariaDBErrno {
    /// The connection is gone or unusable: drop it, and the next unit of work reconnects.
    static let connectionLost: Set<UInt32> = [
        1053, // ER_SERVER_SHUTDOWN
        1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, // ER_ABORTING_CONNECTION, ER_NET_*
        1927, // ER_CONNECTION_KILLED
        4031, // ER_CLIENT_INTERACTION_TIMEOUT
        2001, 2002, 2003, 2004, 2005, // cannot create socket / connect / unknown host
        2006, // CR_SERVER_GONE_ERROR
        2011, 2012, // CR_TCP_CONNECTION, CR_SERVER_HANDSHAKE_ERR
        2013, // CR_SERVER_LOST
        2014, // CR_COMMANDS_OUT_OF_SYNC: protocol state unknown, start over
        2026, // CR_SSL_CONNECTION_ERROR
        2027, // CR_MALFORMED_PACKET
        2055, // CR_SERVER_LOST_EXTENDED
    ]
    /// The server is there but cannot do it now; the statement (1205) or the whole
    /// transaction (1213) was rolled back and may be retried later.
    static let busy: Set<UInt32> = [
        1040, // ER_CON_COUNT_ERROR: too many connections
        1205, // ER_LOCK_WAIT_TIMEOUT
        1213, // ER_LOCK_DEADLOCK
    ]
    /// The configuration is wrong: account, password or database.
    static let configuration: Set<UInt32> = [
        1044, // ER_DBACCESS_DENIED_ERROR
        1045, // ER_ACCESS_DENIED_ERROR
        1049, // ER_BAD_DB_ERROR
        1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
        2059, // CR_AUTH_PLUGIN_CANNOT_LOAD
    ]
    static let deadlock: UInt32 = 1213
}

extension StorageError {
    /// True when the error says the connection is unusable; the connection drops it.
    var meansConnectionLost: Bool {
        guard let e = mariadbErrno else { return false }
        return MariaDBErrno.connectionLost.contains(e)
    }

    /// True for InnoDB deadlocks: the server rolled the whole transaction back, so the
    /// transaction may be run again from the start.
    var isDeadlock: Bool { mariadbErrno == MariaDBErrno.deadlock }

    /// Reads `mysql_errno`/`mysql_sqlstate`/`mysql_error` (or the `mysql_stmt_` ones)
    /// and classifies the number into a code.
    fileprivate init(function: StaticString, source: ErrorSource) {
        let number: UInt32
        let state: String
        let text: String
        switch source {
        case .connection(let mysql):
            number = mysql_errno(mysql)
            state = String(cString: mysql_sqlstate(mysql))
            text = String(cString: mysql_error(mysql))
        case .statement(let stmt):
            number = mysql_stmt_errno(stmt)
            state = String(cString: mysql_stmt_sqlstate(stmt))
            text = String(cString: mysql_stmt_error(stmt))
        }
        let code: Code
        if MariaDBErrno.connectionLost.contains(number) || MariaDBErrno.busy.contains(number) {
            code = .unavailable
        } else if MariaDBErrno.configuration.contains(number) {
            code = .configuration
        } else {
            code = .query
        }
        self.init(code, "\(function): \(text.isEmpty ? "failed without a message" : text)",
                  mariadbErrno: number == 0 ? nil : number, sqlState: state.isEmpty ? nil : state)
    }
}

/// The one helper that turns a Connector/C return code into a thrown `StorageError`
/// (as swift-nio's `syscall(blocking:where:_:)` does for errno): runs `body`, and when
/// `failed` says the result is a failure, throws with `mysql_errno`, `mysql_sqlstate`,
/// the message and the function name. Connector/C signals failure three ways — non-zero
/// `int`, non-zero `my_bool`, `NULL` pointer — hence the predicate.
@discardableResult
@inline(__always)
private func mariadbCall<Result>(_ function: StaticString, _ source: ErrorSource,
                                 failed: (Result) -> Bool, _ body: () throws -> Result) throws -> Result {
    let result = try body()
    if failed(result) { throw StorageError(function: function, source: source) }
    return result
}

/// `int` functions: 0 is success.
@inline(__always)
private func mariadbCall(_ function: StaticString, _ source: ErrorSource, _ body: () throws -> Int32) throws {
    try mariadbCall(function, source, failed: { $0 != 0 }, body)
}

/// `my_bool` functions: 0 is success.
@inline(__always)
private func mariadbCall(_ function: StaticString, _ source: ErrorSource, _ body: () throws -> my_bool) throws {
    try mariadbCall(function, source, failed: { $0 != 0 }, body)
}

// MARK: - Owners of C handles

/// Owns one `MYSQL*`. Statements hold a strong reference so the handle is closed
/// only after every statement on it has been closed.
private final class ConnectionHandle {
    fileprivate let mysql: UnsafeMutablePointer<MYSQL>

    /// Allocates the handle, sets options, and connects; throws if any step fails.
    init(configuration c: DatabaseConfiguration) throws {
        try MariaDBLibrary.initialize()
        guard let mysql = mysql_init(nil) else {
            throw StorageError(.unavailable, "mysql_init: out of memory")
        }
        self.mysql = mysql
        let source = ErrorSource.connection(mysql)

        var connectTimeout = UInt32(max(1, c.connectTimeout.rounded(.up)))
        var readTimeout = UInt32(max(1, c.readTimeout.rounded(.up)))
        var writeTimeout = UInt32(max(1, c.writeTimeout.rounded(.up)))
        var reportTruncation: my_bool = 1
        var noLocalInfile: UInt32 = 0
        try mariadbCall("mysql_options(MYSQL_OPT_CONNECT_TIMEOUT)", source) { mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connectTimeout) }
        try mariadbCall("mysql_options(MYSQL_OPT_READ_TIMEOUT)", source) { mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &readTimeout) }
        try mariadbCall("mysql_options(MYSQL_OPT_WRITE_TIMEOUT)", source) { mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &writeTimeout) }
        try mariadbCall("mysql_options(MYSQL_REPORT_DATA_TRUNCATION)", source) { mysql_options(mysql, MYSQL_REPORT_DATA_TRUNCATION, &reportTruncation) }
        try mariadbCall("mysql_options(MYSQL_OPT_LOCAL_INFILE)", source) { mysql_options(mysql, MYSQL_OPT_LOCAL_INFILE, &noLocalInfile) }
        try mariadbCall("mysql_options(MYSQL_SET_CHARSET_NAME)", source) { mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4") }

        let host: String
        let port: UInt32
        let socket: String?
        var proto: UInt32
        switch c.endpoint {
        case .unixSocket(let path):
            (host, port, socket, proto) = ("localhost", 0, path, UInt32(MYSQL_PROTOCOL_SOCKET.rawValue))
        case .tcp(let h, let p):
            guard (1...65535).contains(p) else { throw StorageError(.configuration, "database port \(p) is not in 1…65535") }
            (host, port, socket, proto) = (h, UInt32(p), nil, UInt32(MYSQL_PROTOCOL_TCP.rawValue))
        }
        try mariadbCall("mysql_options(MYSQL_OPT_PROTOCOL)", source) { mysql_options(mysql, MYSQL_OPT_PROTOCOL, &proto) }
        // MYSQL_OPT_RECONNECT stays off: a silent reconnect would lose session state
        // (time zone, an open transaction); MariaDBConnection reconnects itself.
        try mariadbCall("mysql_real_connect", source, failed: { $0 == nil }) {
            mysql_real_connect(mysql, host, c.user, c.password, c.database, port, socket, 0)
        }
    }

    deinit {
        mysql_close(mysql)
    }

    /// Runs SQL text that has no parameters and returns no rows (transaction control,
    /// DDL, session settings). `StaticString` only: no text built at run time.
    func run(_ sql: StaticString) throws {
        let source = ErrorSource.connection(mysql)
        try mariadbCall("mysql_real_query", source) {
            sql.withUTF8Buffer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { mysql_real_query(mysql, $0.baseAddress, UInt(buffer.count)) }
            }
        }
        // A statement that unexpectedly returned rows must have them read, or the
        // connection is out of sync.
        if mysql_field_count(mysql) > 0, let result = mysql_store_result(mysql) {
            mysql_free_result(result)
        }
    }

    /// `mysql_ping`: one round trip that fails if the server went away.
    func ping() throws {
        try mariadbCall("mysql_ping", .connection(mysql)) { mysql_ping(mysql) }
    }
}

/// Owns an array of `MYSQL_BIND` and every buffer its entries point at.
private final class BindArray {
    fileprivate let binds: UnsafeMutablePointer<MYSQL_BIND>
    let count: Int
    private var allocations: [UnsafeMutableRawPointer] = []

    init(count: Int) {
        self.count = count
        binds = .allocate(capacity: max(count, 1))
        binds.initialize(repeating: MYSQL_BIND(), count: max(count, 1))
    }

    deinit {
        for p in allocations { p.deallocate() }
        binds.deinitialize(count: max(count, 1))
        binds.deallocate()
    }

    /// Memory that lives as long as this array (zeroed).
    func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let bytes = MemoryLayout<T>.stride * max(count, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: max(MemoryLayout<T>.alignment, 16))
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// Binds parameter `index` to `value` (copied into owned memory).
    func bindParameter(_ index: Int, _ value: SQLValue) {
        let b = binds.advanced(by: index)
        switch value {
        case .null:
            b.pointee.buffer_type = MYSQL_TYPE_NULL
        case .int(let i):
            let p = allocate(Int64.self)
            p.pointee = i
            b.pointee.buffer_type = MYSQL_TYPE_LONGLONG
            b.pointee.buffer = UnsafeMutableRawPointer(p)
            b.pointee.is_unsigned = 0
        case .double(let d):
            let p = allocate(Double.self)
            p.pointee = d
            b.pointee.buffer_type = MYSQL_TYPE_DOUBLE
            b.pointee.buffer = UnsafeMutableRawPointer(p)
        case .text(let s):
            bindBytes(b, Array(s.utf8), type: MYSQL_TYPE_STRING)
        case .bytes(let bytes):
            bindBytes(b, bytes, type: MYSQL_TYPE_BLOB)
        case .date(let date):
            let p = allocate(MYSQL_TIME.self)
            p.pointee = CivilTime(date).mysqlTime
            b.pointee.buffer_type = MYSQL_TYPE_DATETIME
            b.pointee.buffer = UnsafeMutableRawPointer(p)
            b.pointee.buffer_length = UInt(MemoryLayout<MYSQL_TIME>.size)
        }
    }

    private func bindBytes(_ b: UnsafeMutablePointer<MYSQL_BIND>, _ bytes: [UInt8], type: enum_field_types) {
        let buffer = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { buffer.update(from: base, count: src.count) }
        }
        let length = allocate(UInt.self)
        length.pointee = UInt(bytes.count)
        b.pointee.buffer_type = type
        b.pointee.buffer = UnsafeMutableRawPointer(buffer)
        b.pointee.buffer_length = UInt(bytes.count)
        b.pointee.length = length
    }
}

/// How a result column is bound and turned back into a `SQLValue`.
private enum ColumnKind {
    case int(unsigned: Bool)
    case double
    case date
    case text
    case bytes

    static let binaryCharset: UInt32 = 63

    init(field: MYSQL_FIELD) {
        let binary = field.charsetnr == Self.binaryCharset
        switch field.type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_INT24, MYSQL_TYPE_YEAR:
            self = .int(unsigned: field.flags & UInt32(UNSIGNED_FLAG) != 0)
        case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE:
            self = .double
        case MYSQL_TYPE_DATE, MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP:
            self = .date
        case MYSQL_TYPE_TINY_BLOB, MYSQL_TYPE_MEDIUM_BLOB, MYSQL_TYPE_LONG_BLOB, MYSQL_TYPE_BLOB,
             MYSQL_TYPE_VAR_STRING, MYSQL_TYPE_STRING, MYSQL_TYPE_VARCHAR, MYSQL_TYPE_GEOMETRY, MYSQL_TYPE_BIT:
            self = binary ? .bytes : .text
        default:
            self = .text // DECIMAL, TIME, JSON, ENUM, SET: their text form
        }
    }
}

/// Result buffers for one execution: one `MYSQL_BIND` per column with its data,
/// length, NULL and truncation indicators.
private final class ResultBindings {
    /// First guess for string columns; longer values are fetched again, whole, with
    /// `mysql_stmt_fetch_column` into a buffer sized from the reported length.
    static let initialStringCapacity = 1024

    let array: BindArray
    let kinds: [ColumnKind]
    private let lengths: UnsafeMutablePointer<UInt>
    private let nulls: UnsafeMutablePointer<my_bool>
    private let errors: UnsafeMutablePointer<my_bool>

    init(kinds: [ColumnKind]) {
        self.kinds = kinds
        array = BindArray(count: kinds.count)
        lengths = array.allocate(UInt.self, count: kinds.count)
        nulls = array.allocate(my_bool.self, count: kinds.count)
        errors = array.allocate(my_bool.self, count: kinds.count)
        for (i, kind) in kinds.enumerated() {
            let b = array.binds.advanced(by: i)
            b.pointee.length = lengths.advanced(by: i)
            b.pointee.is_null = nulls.advanced(by: i)
            b.pointee.error = errors.advanced(by: i)
            switch kind {
            case .int(let unsigned):
                b.pointee.buffer_type = MYSQL_TYPE_LONGLONG
                b.pointee.buffer = UnsafeMutableRawPointer(array.allocate(Int64.self))
                b.pointee.buffer_length = 8
                b.pointee.is_unsigned = unsigned ? 1 : 0
            case .double:
                b.pointee.buffer_type = MYSQL_TYPE_DOUBLE
                b.pointee.buffer = UnsafeMutableRawPointer(array.allocate(Double.self))
                b.pointee.buffer_length = 8
            case .date:
                b.pointee.buffer_type = MYSQL_TYPE_DATETIME
                b.pointee.buffer = UnsafeMutableRawPointer(array.allocate(MYSQL_TIME.self))
                b.pointee.buffer_length = UInt(MemoryLayout<MYSQL_TIME>.size)
            case .text, .bytes:
                b.pointee.buffer_type = kind.isBytes ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING
                b.pointee.buffer = UnsafeMutableRawPointer(array.allocate(UInt8.self, count: Self.initialStringCapacity))
                b.pointee.buffer_length = UInt(Self.initialStringCapacity)
            }
        }
    }

    /// Reads the current row out of the buffers, re-fetching string columns that did
    /// not fit.
    func currentRow(_ stmt: UnsafeMutablePointer<MYSQL_STMT>) throws -> [SQLValue] {
        var values: [SQLValue] = []
        values.reserveCapacity(kinds.count)
        for (i, kind) in kinds.enumerated() {
            if nulls[i] != 0 { values.append(.null); continue }
            let b = array.binds.advanced(by: i)
            switch kind {
            case .int(let unsigned):
                let raw = b.pointee.buffer.load(as: Int64.self)
                if unsigned && raw < 0 {
                    values.append(.text(String(UInt64(bitPattern: raw)))) // above Int64.max
                } else {
                    values.append(.int(raw))
                }
            case .double:
                values.append(.double(b.pointee.buffer.load(as: Double.self)))
            case .date:
                values.append(.date(CivilTime(b.pointee.buffer.load(as: MYSQL_TIME.self)).date))
            case .text, .bytes:
                let length = Int(lengths[i])
                let bytes: [UInt8]
                if length <= Int(b.pointee.buffer_length) {
                    bytes = Array(UnsafeRawBufferPointer(start: b.pointee.buffer, count: length))
                } else {
                    bytes = try fetchWhole(stmt, column: i, length: length, type: b.pointee.buffer_type)
                }
                values.append(kind.isBytes ? .bytes(bytes) : .text(String(decoding: bytes, as: UTF8.self)))
            }
        }
        return values
    }

    /// `mysql_stmt_fetch_column` into a buffer exactly as long as the value.
    private func fetchWhole(_ stmt: UnsafeMutablePointer<MYSQL_STMT>, column: Int, length: Int,
                            type: enum_field_types) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        var fetchedLength: UInt = 0
        var isNull: my_bool = 0
        var error: my_bool = 0
        try bytes.withUnsafeMutableBytes { buffer in
            try withUnsafeMutablePointer(to: &fetchedLength) { lengthPointer in
                try withUnsafeMutablePointer(to: &isNull) { nullPointer in
                    try withUnsafeMutablePointer(to: &error) { errorPointer in
                        var bind = MYSQL_BIND()
                        bind.buffer_type = type
                        bind.buffer = buffer.baseAddress
                        bind.buffer_length = UInt(length)
                        bind.length = lengthPointer
                        bind.is_null = nullPointer
                        bind.error = errorPointer
                        try mariadbCall("mysql_stmt_fetch_column", .statement(stmt)) {
                            mysql_stmt_fetch_column(stmt, &bind, UInt32(column), 0)
                        }
                    }
                }
            }
        }
        guard Int(fetchedLength) == length else {
            throw StorageError(.query, "mysql_stmt_fetch_column: column \(column) changed length (\(length) → \(fetchedLength))")
        }
        return bytes
    }
}

private extension ColumnKind {
    var isBytes: Bool { if case .bytes = self { return true } else { return false } }
}

/// Owns one `MYSQL_STMT*`, prepared once and executed many times.
private final class PreparedStatement {
    private let stmt: UnsafeMutablePointer<MYSQL_STMT>
    private let handle: ConnectionHandle // keeps the MYSQL* open while this statement lives
    private var parameterCount = 0
    let sql: String

    init(handle: ConnectionHandle, sql: StaticString) throws {
        guard let stmt = mysql_stmt_init(handle.mysql) else {
            throw StorageError(function: "mysql_stmt_init", source: .connection(handle.mysql))
        }
        self.stmt = stmt
        self.handle = handle
        self.sql = sql.description
        // From here on deinit closes `stmt`, also when the prepare below throws.
        try mariadbCall("mysql_stmt_prepare", .statement(stmt)) {
            sql.withUTF8Buffer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { mysql_stmt_prepare(stmt, $0.baseAddress, UInt(buffer.count)) }
            }
        }
        parameterCount = Int(mysql_stmt_param_count(stmt))
    }

    deinit {
        mysql_stmt_close(stmt)
    }

    func execute(_ parameters: [SQLValue]) throws -> SQLResult {
        guard parameters.count == parameterCount else {
            throw StorageError(.query, "statement expects \(parameterCount) parameters, got \(parameters.count): \(sql)")
        }
        let source = ErrorSource.statement(stmt)
        let parameterBinds = BindArray(count: parameters.count)
        for (i, value) in parameters.enumerated() { parameterBinds.bindParameter(i, value) }
        try withExtendedLifetime(parameterBinds) {
            if parameterCount > 0 {
                try mariadbCall("mysql_stmt_bind_param", source) { mysql_stmt_bind_param(stmt, parameterBinds.binds) }
            }
            try mariadbCall("mysql_stmt_execute", source) { mysql_stmt_execute(stmt) }
        }

        let fieldCount = Int(mysql_stmt_field_count(stmt))
        guard fieldCount > 0 else {
            return SQLResult(rows: [], affectedRows: mysql_stmt_affected_rows(stmt), lastInsertID: mysql_stmt_insert_id(stmt))
        }
        defer { _ = mysql_stmt_free_result(stmt) }

        let metadata = try mariadbCall("mysql_stmt_result_metadata", source, failed: { $0 == nil }) { mysql_stmt_result_metadata(stmt) }!
        defer { mysql_free_result(metadata) }
        guard let fields = mysql_fetch_fields(metadata) else {
            throw StorageError(function: "mysql_fetch_fields", source: source)
        }
        var names: [String] = []
        var kinds: [ColumnKind] = []
        for i in 0..<fieldCount {
            let field = fields[i]
            names.append(field.name.map { String(cString: $0) } ?? "")
            kinds.append(ColumnKind(field: field))
        }

        let results = ResultBindings(kinds: kinds)
        try mariadbCall("mysql_stmt_bind_result", source) { mysql_stmt_bind_result(stmt, results.array.binds) }
        // Buffer the whole result client-side: rows are few, and the connection is free
        // again as soon as this returns.
        try mariadbCall("mysql_stmt_store_result", source) { mysql_stmt_store_result(stmt) }

        var rows: [SQLRow] = []
        while true {
            let rc = mysql_stmt_fetch(stmt)
            if rc == MYSQL_NO_DATA { break }
            // MYSQL_DATA_TRUNCATED: a string longer than its first buffer; currentRow
            // re-fetches it whole.
            guard rc == 0 || rc == MYSQL_DATA_TRUNCATED else {
                throw StorageError(function: "mysql_stmt_fetch", source: source)
            }
            rows.append(SQLRow(columnNames: names, values: try results.currentRow(stmt)))
        }
        return SQLResult(rows: rows, affectedRows: 0, lastInsertID: 0)
    }
}

/// One live connection and the statements prepared on it. Dropping the session
/// closes the statements, then the connection.
private final class Session {
    let handle: ConnectionHandle
    private var statements: [String: PreparedStatement] = [:]

    init(handle: ConnectionHandle) { self.handle = handle }

    func execute(_ sql: StaticString, _ parameters: [SQLValue]) throws -> SQLResult {
        let key = sql.description
        let statement: PreparedStatement
        if let cached = statements[key] {
            statement = cached
        } else {
            statement = try PreparedStatement(handle: handle, sql: sql)
            statements[key] = statement
        }
        do {
            return try statement.execute(parameters)
        } catch {
            // Prepare afresh next time: a failed statement may be in an unknown state,
            // or need re-preparing after a schema change.
            statements[key] = nil
            throw error
        }
    }
}

// MARK: - Civil time (DATETIME in UTC) ↔ Date

/// A DATETIME(6) as stored: the session's time zone is UTC, so this is UTC.
private struct CivilTime {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, microsecond: Int

    init(_ date: Date) {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 { micros += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        // civil_from_days (Howard Hinnant, public domain algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        month = Int(m)
        day = Int(d)
        hour = Int(secondOfDay / 3600)
        minute = Int(secondOfDay % 3600 / 60)
        second = Int(secondOfDay % 60)
        microsecond = Int(micros)
    }

    init(_ t: MYSQL_TIME) {
        year = Int(t.year); month = Int(t.month); day = Int(t.day)
        hour = Int(t.hour); minute = Int(t.minute); second = Int(t.second)
        microsecond = Int(t.second_part)
    }

    var date: Date {
        // days_from_civil (Howard Hinnant).
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        return Date(timeIntervalSince1970: Double(seconds) + Double(microsecond) / 1_000_000)
    }

    var mysqlTime: MYSQL_TIME {
        var t = MYSQL_TIME()
        t.year = UInt32(year); t.month = UInt32(month); t.day = UInt32(day)
        t.hour = UInt32(hour); t.minute = UInt32(minute); t.second = UInt32(second)
        t.second_part = UInt(microsecond)
        t.neg = 0
        t.time_type = MYSQL_TIMESTAMP_DATETIME
        return t
    }
}

// MARK: - The connection

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
/// Each session runs with `time_zone = '+00:00'` (DATETIME columns hold UTC) and
/// `innodb_lock_wait_timeout` from the configuration.
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
