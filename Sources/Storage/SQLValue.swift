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

/// One value sent to or read from MariaDB through a prepared statement.
///
/// Parameters are always bound, never spliced into SQL text. Results map column types
/// to cases: integer columns → `.int`, FLOAT/DOUBLE → `.double`, DATE/DATETIME/TIMESTAMP
/// → `.date` (the session runs in UTC), binary strings and BLOBs → `.bytes`, every
/// other type (text, DECIMAL, TIME, JSON…) → `.text`, SQL NULL → `.null`.
///
/// ```swift
/// let rows = try connection.query("SELECT value FROM information WHERE label = ?", [.text("smtp_host")])
/// let host = try rows.first?.text("value")
/// ```
public enum SQLValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// Any integer column (TINYINT…BIGINT); bound as BIGINT.
    case int(Int64)
    /// FLOAT or DOUBLE.
    case double(Double)
    /// Text in UTF-8 (utf8mb4 on the server); may contain NUL and 4-byte characters.
    case text(String)
    /// Binary strings and BLOBs.
    case bytes([UInt8])
    /// Bound and read as DATETIME(6) in UTC: microsecond precision.
    case date(Date)

    /// `nil` becomes `.null`, anything else `.text`.
    public init(_ text: String?) { self = text.map { .text($0) } ?? .null }
    /// `nil` becomes `.null`, anything else `.int`.
    public init(_ int: Int?) { self = int.map { .int(Int64($0)) } ?? .null }

    /// True for SQL NULL.
    public var isNull: Bool { if case .null = self { return true } else { return false } }
    /// The string, for `.text`.
    public var textValue: String? { if case .text(let s) = self { return s } else { return nil } }
    /// The integer, for `.int`.
    public var intValue: Int64? { if case .int(let i) = self { return i } else { return nil } }
    /// The instant, for `.date`.
    public var dateValue: Date? { if case .date(let d) = self { return d } else { return nil } }
}

extension SQLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// One row of a result set: column names (as the statement labels them) and values.
public struct SQLRow: Sendable, Hashable {
    /// Column names in result order.
    public let columnNames: [String]
    /// Values in result order.
    public let values: [SQLValue]

    /// Makes a row; `columnNames` and `values` have the same count.
    public init(columnNames: [String], values: [SQLValue]) {
        self.columnNames = columnNames
        self.values = values
    }

    /// The value of the first column called `name`, or `nil` if there is none.
    public subscript(_ name: String) -> SQLValue? {
        columnNames.firstIndex(of: name).map { values[$0] }
    }

    /// The text in column `name`; throws if the column is missing, NULL or not text.
    public func text(_ name: String) throws -> String {
        guard let s = try value(name).textValue else { throw mismatch(name, "text") }
        return s
    }

    /// The text in column `name`, `nil` for NULL.
    public func optionalText(_ name: String) throws -> String? {
        let v = try value(name)
        if v.isNull { return nil }
        guard let s = v.textValue else { throw mismatch(name, "text") }
        return s
    }

    /// The integer in column `name`; throws if missing, NULL or not an integer.
    public func int(_ name: String) throws -> Int64 {
        guard let i = try value(name).intValue else { throw mismatch(name, "an integer") }
        return i
    }

    /// The integer in column `name`, `nil` for NULL.
    public func optionalInt(_ name: String) throws -> Int64? {
        let v = try value(name)
        if v.isNull { return nil }
        guard let i = v.intValue else { throw mismatch(name, "an integer") }
        return i
    }

    /// The instant in column `name`; throws if missing, NULL or not a date.
    public func date(_ name: String) throws -> Date {
        guard let d = try value(name).dateValue else { throw mismatch(name, "a date") }
        return d
    }

    private func value(_ name: String) throws -> SQLValue {
        guard let v = self[name] else {
            throw StorageError(.query, "the result has no column \(name) (columns: \(columnNames.joined(separator: ", ")))")
        }
        return v
    }

    private func mismatch(_ name: String, _ expected: String) -> StorageError {
        StorageError(.query, "column \(name) is not \(expected): \(self[name].map(Self.kind) ?? "missing")")
    }

    private static func kind(_ v: SQLValue) -> String {
        switch v {
        case .null: return "NULL"
        case .int: return "an integer"
        case .double: return "a double"
        case .text: return "text"
        case .bytes: return "bytes"
        case .date: return "a date"
        }
    }
}

/// What a statement produced: its rows (empty for statements without a result set),
/// the number of rows it changed and the AUTO_INCREMENT value it generated, if any.
public struct SQLResult: Sendable {
    /// The rows of the result set, in order.
    public var rows: [SQLRow]
    /// `mysql_stmt_affected_rows` for INSERT/UPDATE/DELETE (0 for SELECT).
    public var affectedRows: UInt64
    /// `mysql_stmt_insert_id`: the AUTO_INCREMENT id generated, 0 if none.
    public var lastInsertID: UInt64
}
