#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the monotonic clock after which an operation gives up.
struct Deadline: Comparable, Sendable {
    /// Nanoseconds on CLOCK_MONOTONIC.
    let nanoseconds: UInt64

    static func now() -> Deadline {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Deadline(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }

    static func after(seconds: Double) -> Deadline {
        let clamped = max(0, min(seconds, 10 * 365 * 86400))
        return Deadline(nanoseconds: now().nanoseconds + UInt64(clamped * 1e9))
    }

    static let distantFuture = Deadline(nanoseconds: UInt64.max / 2)

    /// Milliseconds left, for poll(): 0 when passed, rounded up so poll never wakes early.
    var pollMilliseconds: Int32 {
        let current = Deadline.now().nanoseconds
        guard nanoseconds > current else { return 0 }
        let ms = (nanoseconds - current + 999_999) / 1_000_000
        return Int32(min(ms, UInt64(Int32.max)))
    }

    var hasPassed: Bool { Deadline.now().nanoseconds >= nanoseconds }

    func seconds(since start: Deadline) -> Double {
        nanoseconds >= start.nanoseconds ? Double(nanoseconds - start.nanoseconds) / 1e9 : 0
    }

    static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}

/// Why a byte stream could not read or write. Internal: the session turns it into a
/// ``SmtpError`` with the stage it was in.
enum StreamFailure: Error, CustomStringConvertible {
    /// The deadline passed.
    case timeout
    /// The peer closed the connection (EOF, ECONNRESET, EPIPE).
    case closed(String)
    /// A system call failed.
    case system(function: String, errno: Int32)
    /// OpenSSL failed during the handshake or I/O; `errors` is the drained error queue.
    case tls(function: String, errors: [String])
    /// The caller went away (its ``SessionAbort`` descriptor hung up): stop at once.
    case abandoned

    var description: String {
        switch self {
        case .timeout: return "timed out"
        case .closed(let why): return "connection closed by the server (\(why))"
        case .system(let function, let code): return "\(function): \(String(cString: strerror(code))) (errno \(code))"
        case .tls(let function, let errors): return "\(function): " + (errors.isEmpty ? "TLS failure" : errors.joined(separator: "; "))
        case .abandoned: return "abandoned: the caller went away"
        }
    }
}

/// A bidirectional byte stream with deadlines: a plain socket, TLS over a socket, or a
/// scripted peer in tests.
protocol ByteStream: AnyObject {
    /// Reads at least one byte into `buffer`; returns 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws -> Int
    /// Writes every byte or throws.
    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws
    /// Closes the stream; further calls fail. Safe to call twice.
    func close()
}

extension ByteStream {
    func write(_ bytes: [UInt8], deadline: Deadline) throws {
        try bytes.withUnsafeBytes { try write($0, deadline: deadline) }
    }
}
