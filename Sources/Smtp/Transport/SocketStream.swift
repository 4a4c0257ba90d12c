// Every socket, poll and getaddrinfo call of the module lives in this file.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import ProcessIO
import Synchronization

/// Calls a system function, retrying on EINTR; throws `.system` with errno otherwise.
/// Returns the result when it is not -1. EAGAIN/EINPROGRESS are returned as `nil` so
/// the caller can poll.
@discardableResult
func syscallRetryingEINTR<T: BinaryInteger>(_ function: String, _ body: () -> T) throws -> T? {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        switch code {
        case EINTR: continue
        case EAGAIN, EWOULDBLOCK, EINPROGRESS: return nil
        case ECONNRESET, EPIPE: throw StreamFailure.closed(String(cString: strerror(code)))
        default: throw StreamFailure.system(function: function, errno: code)
        }
    }
}

/// Linux's POLLRDHUP (the peer closed or shut down its side): <poll.h> defines it only
/// under _GNU_SOURCE, which Swift's Glibc module does not set. Kernel ABI, stable since 2.6.17.
let pollReadHangUp: Int16 = 0x2000

/// Waits until `fd` is readable (`POLLIN`) or writable (`POLLOUT`), or the deadline.
/// Throws `.timeout` when the deadline passes, and `.abandoned` at once when `abort`'s
/// descriptor hangs up.
func pollDescriptor(_ fd: Int32, events: Int16, deadline: Deadline, abort: SessionAbort? = nil) throws {
    while true {
        var entries = [pollfd(fd: fd, events: events, revents: 0)]
        // POLLRDHUP alone: only a hang-up of the caller's connection counts, not data on it.
        if let abort { entries.append(pollfd(fd: abort.descriptor, events: pollReadHangUp, revents: 0)) }
        // With the deadline passed this still polls once (timeout 0): ready data counts.
        let result = poll(&entries, nfds_t(entries.count), deadline.pollMilliseconds)
        if result > 0 {
            if entries.count > 1, entries[1].revents != 0 { throw StreamFailure.abandoned }
            return  // readable, writable, or an error/hangup the next call reports
        }
        if result == 0 { if deadline.hasPassed { throw StreamFailure.timeout } else { continue } }
        if errno == EINTR { continue }
        throw StreamFailure.system(function: "poll", errno: errno)
    }
}

/// True when `abort`'s descriptor has hung up (checked without waiting).
func hasHungUp(_ abort: SessionAbort?) -> Bool {
    guard let abort else { return false }
    var entry = pollfd(fd: abort.descriptor, events: pollReadHangUp, revents: 0)
    return poll(&entry, 1, 0) > 0 && entry.revents != 0
}

/// Whether `fd` has data (or an error/hangup) right now, without waiting.
func isReadableNow(_ fd: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, 0) > 0
}

/// One resolved address of the server.
struct ResolvedAddress: Sendable {
    var family: Int32
    var socketType: Int32
    var proto: Int32
    var storage: [UInt8]  // the sockaddr bytes
    var text: String      // "127.0.0.1" or "::1"
}

/// Why connecting failed, before a stream exists.
enum ConnectFailure: Error {
    /// getaddrinfo failed (`EAI_*` code and its message), or timed out.
    case resolve(code: Int32, message: String)
    case resolveTimeout
    /// The caller went away while resolving or connecting.
    case abandoned
    /// Every address failed; the last failure per address.
    case connect([(address: String, failure: StreamFailure)])
}

/// A non-blocking TCP socket with deadlines on every read and write. Owns its fd.
final class SocketStream: ByteStream {
    private var fd: Int32
    /// The address connected to ("127.0.0.1" or "::1").
    let remoteAddress: String

    /// Ends every wait at once when the caller goes away.
    let abort: SessionAbort?

    private init(fd: Int32, remoteAddress: String, abort: SessionAbort?) {
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.abort = abort
    }

    deinit { close() }

    /// When set, reads wait for data this way (spinning briefly for a fast server)
    /// instead of sleeping in `poll()` at once. Set by bulk sessions only.
    var replyWait: ReplyWait?

    /// Waits until the socket is readable or the deadline passes (TLS uses it too).
    func waitReadable(deadline: Deadline) throws {
        if let replyWait {
            try replyWait.waitReadable(fd, deadline: deadline)
        } else {
            try pollDescriptor(fd, events: Int16(POLLIN), deadline: deadline, abort: abort)
        }
    }

    /// Waits until the socket is writable or the deadline passes (TLS uses it too).
    func waitWritable(deadline: Deadline) throws {
        try pollDescriptor(fd, events: Int16(POLLOUT), deadline: deadline, abort: abort)
    }

    /// The descriptor, for layering TLS over it. -1 once closed.
    var descriptor: Int32 { fd }

    func close() {
        if fd >= 0 {
            _ = Glibc.close(fd)
            fd = -1
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws -> Int {
        guard fd >= 0 else { throw StreamFailure.closed("already closed") }
        while true {
            // Poll first: a reply is read right after its command was sent, so data is
            // rarely there yet, and poll+recv beats recv(EAGAIN)+poll+recv.
            try waitReadable(deadline: deadline)
            if let count = try syscallRetryingEINTR("recv", { recv(fd, buffer.baseAddress, buffer.count, 0) }) {
                return count
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws {
        guard fd >= 0 else { throw StreamFailure.closed("already closed") }
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a closed peer yields EPIPE, not a process-killing SIGPIPE.
            if let sent = try syscallRetryingEINTR("send", {
                send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }) {
                offset += sent
            } else {
                try waitWritable(deadline: deadline)
            }
        }
    }

    // MARK: Connecting

    /// Resolves `host` and connects to each address in turn (IPv6 and IPv4, in the
    /// resolver's order), each attempt bounded by `connectTimeout` and all by `deadline`.
    /// `screen` sees the resolved addresses first and returns those that may be tried.
    /// `addresses` (IP literals), when given, are used instead of resolving `host`.
    static func connect(host: String, port: Int, connectTimeout: Double, deadline: Deadline, abort: SessionAbort? = nil,
                        addresses given: [String]? = nil,
                        screen: ([ResolvedAddress]) throws -> [ResolvedAddress] = { $0 }) throws -> SocketStream {
        // Resolving counts against the connect timeout too.
        let resolved = try given.map { literals in try literals.flatMap { try getAddresses(host: $0, port: port, numeric: true) } }
            ?? resolve(host: host, port: port, deadline: min(deadline, Deadline.after(seconds: connectTimeout)), abort: abort)
        let addresses = try screen(resolved)
        var failures: [(address: String, failure: StreamFailure)] = []
        for address in addresses {
            let attemptDeadline = min(deadline, Deadline.after(seconds: connectTimeout))
            do {
                return try connect(to: address, deadline: attemptDeadline, abort: abort)
            } catch StreamFailure.abandoned {
                throw ConnectFailure.abandoned
            } catch let failure as StreamFailure {
                failures.append((address.text, failure))
                if deadline.hasPassed { break }
            }
        }
        throw ConnectFailure.connect(failures)
    }

    private static func connect(to address: ResolvedAddress, deadline: Deadline, abort: SessionAbort?) throws -> SocketStream {
        guard let fd = try syscallRetryingEINTR("socket", {
            socket(address.family, address.socketType | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), address.proto)
        }) else { throw StreamFailure.system(function: "socket", errno: errno) }
        let stream = SocketStream(fd: fd, remoteAddress: address.text, abort: abort)
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let started = address.storage.withUnsafeBytes { raw -> Int32 in
            Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        if started != 0 {
            let code = errno
            guard code == EINPROGRESS || code == EINTR || code == EAGAIN else {
                throw StreamFailure.system(function: "connect", errno: code)
            }
            try stream.waitWritable(deadline: deadline)
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError != 0 { throw StreamFailure.system(function: "connect", errno: soError) }
        }
        return stream
    }

    /// getaddrinfo has no timeout of its own, so it runs on a helper thread; when the
    /// deadline passes first the caller gets `.resolveTimeout` and the thread finishes
    /// (and is forgotten) on its own. IP literals resolve inline.
    static func resolve(host: String, port: Int, deadline: Deadline, abort: SessionAbort? = nil) throws -> [ResolvedAddress] {
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if isIPLiteral(literal) {
            return try getAddresses(host: literal, port: port, numeric: true)
        }
        final class Box: Sendable {
            let result = Mutex<Result<[ResolvedAddress], Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
        }
        let box = Box()
        startThread {
            let result = Result { try getAddresses(host: literal, port: port, numeric: false) }
            box.result.withLock { $0 = result }
            box.done.signal()
        }
        while true {
            if let result = box.result.withLock({ $0 }) { return try result.get() }
            let remaining = Double(deadline.pollMilliseconds) / 1000
            if remaining <= 0 { throw ConnectFailure.resolveTimeout }
            if hasHungUp(abort) { throw ConnectFailure.abandoned }
            // In slices of a quarter second when someone may go away meanwhile.
            _ = box.done.wait(timeout: .now() + (abort == nil ? remaining : min(remaining, 0.25)))
        }
    }

    private static func getAddresses(host: String, port: Int, numeric: Bool) throws -> [ResolvedAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = numeric ? AI_NUMERICHOST | AI_NUMERICSERV : AI_NUMERICSERV | AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        var code: Int32
        repeat {
            code = getaddrinfo(host, String(port), &hints, &list)
        } while code == EAI_SYSTEM && errno == EINTR
        guard code == 0 else {
            throw ConnectFailure.resolve(code: code, message: String(cString: gai_strerror(code)))
        }
        defer { freeaddrinfo(list) }
        var result: [ResolvedAddress] = []
        var node = list
        while let entry = node?.pointee {
            if let sa = entry.ai_addr {
                let bytes = [UInt8](UnsafeRawBufferPointer(start: sa, count: Int(entry.ai_addrlen)))
                var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                getnameinfo(sa, entry.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST)
                let text = String(cString: name)
                if !result.contains(where: { $0.storage == bytes }) {
                    result.append(ResolvedAddress(family: entry.ai_family, socketType: entry.ai_socktype, proto: entry.ai_protocol, storage: bytes, text: text))
                }
            }
            node = entry.ai_next
        }
        return result
    }

    /// True for "192.0.2.1" and "2001:db8::1" (no brackets).
    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// The machine's host name, for EHLO when nothing better is known.
    static func machineHostName() -> String? {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return nil }
        let text = String(cString: name)
        return text.isEmpty ? nil : text
    }
}
