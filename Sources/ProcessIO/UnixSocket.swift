// The unix-socket system calls the responder and the tests share: the address,
// a bounded non-blocking send, and listening/connecting for the tests' side.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Unix stream and datagram sockets by path.
///
/// ```swift
/// switch UnixSocket.send(Array("SYSTEM_UPDATED*RESET*".utf8), to: "/run/legacy.sock",
///                        datagram: true, deadline: .after(seconds: 1)) { … }
/// ```
public enum UnixSocket {
    /// What a bounded send did.
    public enum SendResult: Sendable, Equatable {
        /// The bytes were handed to the socket.
        case sent
        /// Refused; the reason names the system call and errno text.
        case failed(String)
        /// The deadline passed first.
        case timedOut
    }

    /// A refused socket call, with errno.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let call: String
        public let errno: Int32
        public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
    }

    /// The socket type for `datagram`.
    static func type(_ datagram: Bool) -> Int32 { datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue) }

    /// The address of `path`, or nil when it is empty, holds a NUL or is too long.
    public static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Calls `body` with `address` as a `sockaddr` pointer and its length.
    static func withSocketAddress<R>(_ address: sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// A socket bound to `path` (listening, for a stream socket); the caller closes it.
    public static func listen(_ path: String, datagram: Bool, backlog: Int32 = 8) throws -> Int32 {
        guard let address = address(path) else { throw Failure(call: "bind \(path)", errno: ENAMETOOLONG) }
        let fd = socket(AF_UNIX, type(datagram) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket", errno: errno) }
        guard withSocketAddress(address, { bind(fd, $0, $1) }) == 0 else {
            let error = errno
            close(fd)
            throw Failure(call: "bind \(path)", errno: error)
        }
        if !datagram, Glibc.listen(fd, backlog) != 0 {
            let error = errno
            close(fd)
            throw Failure(call: "listen \(path)", errno: error)
        }
        return fd
    }

    /// A connected non-blocking client, or nil when the connect fails or would block
    /// (a full backlog); the caller closes it.
    public static func connectNonBlocking(_ path: String, datagram: Bool) -> Int32? {
        guard let address = address(path) else { return nil }
        let fd = socket(AF_UNIX, type(datagram) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        if withSocketAddress(address, { connect(fd, $0, $1) }) == 0 { return fd }
        close(fd)
        return nil
    }

    /// Connects (non-blocking) to the unix socket at `path` and writes `message`,
    /// retrying a full backlog or queue and partial writes until `deadline`.
    public static func send(_ message: [UInt8], to path: String, datagram: Bool, deadline: MonotonicDeadline) -> SendResult {
        guard let address = address(path) else {
            let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
            return .failed("the socket path is empty, has a NUL, or is longer than \(capacity - 1) bytes")
        }
        let socketType = type(datagram) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_UNIX, socketType, 0)
        guard fd >= 0 else { return .failed(errorText("socket")) }
        defer { close(fd) }

        // Connect: a unix socket answers at once, except that a full backlog (stream)
        // gives EAGAIN, retried until the deadline.
        while true {
            if withSocketAddress(address, { connect(fd, $0, $1) }) == 0 { break }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                if deadline.hasPassed { return .timedOut }
                _ = poll(nil, 0, Int32(min(20, max(1, deadline.remainingMilliseconds))))
                continue
            }
            if error == EINPROGRESS {
                guard waitWritable(fd, deadline) else { return .timedOut }
                var socketError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
                if socketError != 0 { return .failed("connect: \(String(cString: strerror(socketError)))") }
                break
            }
            return .failed(errorText("connect", error))
        }

        // Write: a datagram goes whole or not at all; a stream may take it in parts.
        // A full datagram queue or socket buffer gives EAGAIN: wait for POLLOUT.
        var sent = 0
        repeat {
            let count = message.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress.map { $0 + sent }, message.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count >= 0 {
                sent = datagram ? message.count : sent + count
                continue
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                guard waitWritable(fd, deadline) else { return .timedOut }
                continue
            }
            return .failed(errorText("send", error))
        } while sent < message.count
        return .sent
    }

    /// Polls until `fd` is writable; false when the deadline passes first.
    private static func waitWritable(_ fd: Int32, _ deadline: MonotonicDeadline) -> Bool {
        while true {
            let remaining = deadline.remainingMilliseconds
            if remaining <= 0 { return false }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, Int(Int32.max))))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }

    private static func errorText(_ call: String, _ error: Int32 = errno) -> String {
        "\(call): \(String(cString: strerror(error))) (errno \(error))"
    }
}
