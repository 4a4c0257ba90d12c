// The one file that holds MariaDB Connector/C pointers. Every C pointer (MYSQL*,
// MYSQL_STMT*, MYSQL_RES*, MYSQL_BIND arrays and their buffers) is owned by a final
// class below, created and freed here; nothing above this file sees a pointer. The
// rest of the client is plain Swift: MariaDBLibrary (set-up calls that take none),
// MariaDBErrno (error tables), MariaDBCivilTime (dates) and MariaDBConnection.
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

// MARK: - Errors from C return codes

/// Where to ask for the error after a failed call.
private enum ErrorSource {
    case connection(UnsafeMutablePointer<MYSQL>)
    case statement(UnsafeMutablePointer<MYSQL_STMT>)
}

extension StorageError {
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
final class ConnectionHandle {
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
        if let tls = c.tls { try Self.setTLSOptions(tls, mysql, source) }
        // MYSQL_OPT_RECONNECT stays off: a silent reconnect would lose session state
        // (time zone, an open transaction); MariaDBConnection reconnects itself.
        do {
            try mariadbCall("mysql_real_connect", source, failed: { $0 == nil }) {
                mysql_real_connect(mysql, host, c.user, c.password, c.database, port, socket, 0)
            }
        } catch let error as StorageError {
            throw DatabaseTLSFailure.explain(error, configuration: c)
        }
        // Connector/C 3.3 goes on in clear when the server offers no TLS and the host
        // name is not checked (plugins/auth/my_auth.c): never accept that.
        if c.tls != nil, mysql_get_ssl_cipher(mysql) == nil { throw DatabaseTLSFailure.notEncrypted(configuration: c) }
    }

    /// The TLS options of DatabaseTLS.swift. MYSQL_OPT_SSL_ENFORCE asks for TLS even when
    /// no file is given; with a CA file Connector/C 3.3 always checks the chain, and
    /// MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name (and the chain to the system's
    /// trust store when there is no CA file). TLS 1.2 is the oldest accepted.
    private static func setTLSOptions(_ tls: DatabaseConfiguration.TLS, _ mysql: UnsafeMutablePointer<MYSQL>,
                                      _ source: ErrorSource) throws {
        var enforce: my_bool = 1
        var verify: my_bool = tls.verifyServer ? 1 : 0
        try mariadbCall("mysql_options(MYSQL_OPT_SSL_ENFORCE)", source) { mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, &enforce) }
        try mariadbCall("mysql_options(MYSQL_OPT_SSL_VERIFY_SERVER_CERT)", source) {
            mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify)
        }
        try mariadbCall("mysql_options(MARIADB_OPT_TLS_VERSION)", source) { mysql_options(mysql, MARIADB_OPT_TLS_VERSION, "TLSv1.2,TLSv1.3") }
        if let ca = tls.caFile { try mariadbCall("mysql_options(MYSQL_OPT_SSL_CA)", source) { mysql_options(mysql, MYSQL_OPT_SSL_CA, ca) } }
        if let cert = tls.certificateFile {
            try mariadbCall("mysql_options(MYSQL_OPT_SSL_CERT)", source) { mysql_options(mysql, MYSQL_OPT_SSL_CERT, cert) }
        }
        if let key = tls.keyFile { try mariadbCall("mysql_options(MYSQL_OPT_SSL_KEY)", source) { mysql_options(mysql, MYSQL_OPT_SSL_KEY, key) } }
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
final class Session {
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

// MARK: - Civil time ↔ MYSQL_TIME

extension CivilTime {
    init(_ t: MYSQL_TIME) {
        year = Int(t.year); month = Int(t.month); day = Int(t.day)
        hour = Int(t.hour); minute = Int(t.minute); second = Int(t.second)
        microsecond = Int(t.second_part)
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
