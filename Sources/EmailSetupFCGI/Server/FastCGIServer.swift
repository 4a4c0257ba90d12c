import CFastCGI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ProcessIO
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import Logging
import Smtp

/// The thin FastCGI adapter: owns every libfcgi pointer and the listening socket,
/// runs N worker threads that each loop accept → `Request` → handler → `Response`.
///
/// Workers wait for connections (epoll, one woken per connection) on a non-blocking
/// listening socket (so SIGTERM is noticed within a quarter second), then call `FCGX_Accept_r`;
/// a worker that is answering finishes its request before it exits.
///
/// ```swift
/// let server = try FastCGIServer(listener: .unixSocket(path: "/run/emailsetup.sock", mode: 0o660, group: "www-data"), logger: logger)
/// server.run(workers: 4, smtpPool: pool) { APIHandler(repository: store, logger: logger).handle }
/// ```
final class FastCGIServer: Sendable {
    /// Where requests come from.
    enum Listener: CustomStringConvertible {
        /// A unix socket we create (replacing a stale one), with this mode and group.
        case unixSocket(path: String, mode: mode_t, group: String?)
        /// A TCP socket on HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000.
        case tcp(host: String, port: Int)
        /// An already listening socket handed over by spawn-fcgi (fd 0) or systemd (fd 3).
        case inherited(fd: Int32)

        var description: String {
            switch self {
            case let .unixSocket(path, _, _): return "unix:\(path)"
            case let .tcp(host, port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case let .inherited(fd): return "inherited fd \(fd)"
            }
        }
    }

    /// Why the server could not start.
    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    private let listenFD: Int32
    private let unixPath: String?
    private let logger: Logger
    private let stopping = ManagedFlag()
    private let wakeCount = ManagedCounter()

    /// How many times a worker woke because a connection might be waiting (for tests:
    /// with one waiter woken per connection this stays near the number of connections;
    /// waking every idle worker would make it workers × connections).
    var wakeups: Int { wakeCount.value }

    /// Opens (or adopts) the listening socket. Throws one clear line on failure.
    init(listener: Listener, logger: Logger) throws {
        self.logger = logger
        guard FCGX_Init() == 0 else { throw StartError(description: "FCGX_Init failed") }
        switch listener {
        case let .inherited(fd):
            listenFD = fd
            unixPath = nil
        case let .unixSocket(path, mode, group):
            listenFD = try Self.openUnixSocket(path: path, mode: mode, group: group)
            unixPath = path
        case let .tcp(host, port):
            listenFD = try Self.openTCPSocket(host: host, port: port)
            unixPath = nil
        }
        // Non-blocking so a worker woken by poll() whose connection another
        // worker took gets EAGAIN from accept() instead of blocking past shutdown.
        let flags = fcntl(listenFD, F_GETFL)
        _ = fcntl(listenFD, F_SETFL, flags | O_NONBLOCK)
    }

    deinit {
        if let unixPath { unlink(unixPath) }
    }

    /// Asks every worker to stop after its current request (SIGTERM does this).
    func stop() { stopping.set() }

    /// Runs `workers` threads until `stop()`; returns when all have finished.
    /// - Parameters:
    ///   - smtpPool: where answers that hold an SMTP session (`Response.work`) run, so
    ///     the request worker is free again at once; nil runs them on the worker.
    ///   - makeHandler: called once per worker thread, so each owns its
    ///     own handler (and database connection).
    func run(workers: Int, smtpPool: SmtpWorkPool? = nil, makeHandler: @escaping @Sendable () -> (Request) -> Response) {
        let group = DispatchGroup()
        for index in 0..<workers {
            group.enter()
            startThread { [self] in
                self.workerLoop(index: index, smtpPool: smtpPool, handle: makeHandler())
                group.leave()
            }
        }
        group.wait()
        logger.info("all workers finished")
    }

    private func workerLoop(index: Int, smtpPool: SmtpWorkPool?, handle: (Request) -> Response) {
        var request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        guard FCGX_InitRequest(request, listenFD, 0) == 0 else {
            logger.error("FCGX_InitRequest failed", metadata: ["worker": "\(index)"])
            request.deallocate()
            return
        }
        let waiter = ListenWaiter(listenFD: listenFD)
        while !stopping.isSet {
            if !waiter.wait(milliseconds: 250) || stopping.isSet { continue }
            wakeCount.increment()
            let accepted = FCGX_Accept_r(request)
            guard accepted >= 0 else { continue } // EAGAIN: another worker took it
            let started = DispatchTime.now().uptimeNanoseconds
            let incoming = readRequest(request)
            let response = handle(incoming)
            if let work = response.work, let smtpPool {
                // The request now belongs to the pool thread, which answers and frees it;
                // this worker takes a fresh one and goes back to accepting.
                let handed = HandedRequest(request)
                let streamed = ProgressStream.isWanted(by: incoming)
                smtpPool.submit { [self] repository in
                    let lines = streamed ? StreamedAnswer(handed.pointer) : nil
                    let sink: WorkProgressSink? = lines.map { answer in { @Sendable progress in answer.send(progress) } }
                    let final = work.run(repository, SessionAbort(descriptor: handed.pointer.pointee.ipcFd), sink)
                    self.finish(handed.pointer, final, incoming, started: started, streamed: lines != nil)
                    work.slot.release()
                    handed.pointer.deallocate()
                }
                request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
                guard FCGX_InitRequest(request, listenFD, 0) == 0 else {
                    logger.error("FCGX_InitRequest failed", metadata: ["worker": "\(index)"])
                    request.deallocate()
                    return
                }
                continue
            }
            // Work with no pool to run it (a server started without one) is a bug of the caller.
            let final = response.work == nil ? response : APIError(500, "server", "No SMTP work pool is running.").response
            response.work?.slot.release()
            finish(request, final, incoming, started: started)
        }
        FCGX_Free(request, 1)
        request.deallocate()
    }

    /// Writes the answer, ends the FastCGI request and logs one line for it.
    /// `streamed`: the head and step lines went out already (``StreamedAnswer``); the
    /// answer follows as the stream's last line.
    private func finish(_ request: UnsafeMutablePointer<FCGX_Request>, _ response: Response, _ incoming: Request, started: UInt64,
                        streamed: Bool = false) {
        if streamed {
            Self.put(ProgressStream.finalLine(response), to: request.pointee.out)
        } else {
            writeResponse(response, to: request)
        }
        FCGX_Finish_r(request)
        let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
        logger.info("request", metadata: [
            "method": "\(incoming.method)", "path": "\(incoming.path)", "status": "\(response.status)",
            "ms": "\(Self.milliseconds(micros: micros))", "user": "\(incoming.remoteUser ?? "-")",
        ])
    }

    /// "12.34" from microseconds, without Foundation's String(format:) (costly per request).
    static func milliseconds(micros: UInt64) -> String {
        let hundredths = (micros + 5) / 10
        let fraction = hundredths % 100
        return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + "\(fraction)"
    }

    private func readRequest(_ request: UnsafeMutablePointer<FCGX_Request>) -> Request {
        var params: [String] = []
        if var cursor = request.pointee.envp {
            while let entry = cursor.pointee {
                params.append(String(cString: entry))
                cursor += 1
            }
        }
        // From here on plain values: Fuzz/FastCGIRequest fuzzes exactly these two steps.
        let env = Request.environment(fastCGIParams: params)
        var body: [UInt8] = []
        let wanted = Request.bodyBytesToRead(env)
        if wanted > 0 {
            body = [UInt8](repeating: 0, count: wanted)
            var got = 0
            body.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: wanted) { chars in
                    while got < wanted {
                        let n = FCGX_GetStr(chars + got, Int32(wanted - got), request.pointee.in)
                        if n <= 0 { break }
                        got += Int(n)
                    }
                }
            }
            body.removeLast(wanted - got)
        }
        return Request(cgiEnvironment: env, body: body)
    }

    private func writeResponse(_ response: Response, to request: UnsafeMutablePointer<FCGX_Request>) {
        Self.put(response.cgiBytes(), to: request.pointee.out)
    }

    fileprivate static func put(_ bytes: [UInt8], to stream: UnsafeMutablePointer<FCGX_Stream>?) {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                _ = FCGX_PutStr(chars, Int32(buffer.count), stream)
            }
        }
    }

    // MARK: - Sockets

    private static func openUnixSocket(path: String, mode: mode_t, group: String?) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else {
            throw StartError(description: "--socket \(path): path longer than \(capacity - 1) bytes")
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw StartError(description: "--socket \(path): exists and is not a socket; refusing to replace it")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw StartError(description: "--socket \(path): bind failed: \(message)")
        }
        if let group {
            guard let entry = getgrnam(group) else {
                close(fd)
                throw StartError(description: "config: socket_group = \"\(group)\": no such group")
            }
            chown(path, getuid(), entry.pointee.gr_gid)
        }
        chmod(path, mode)
        guard listen(fd, 1024) == 0 else {
            close(fd)
            throw StartError(description: "--socket \(path): listen failed: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    private static func openTCPSocket(host: String, port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw StartError(description: "--listen \(host):\(port): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw StartError(description: "--listen: socket failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 1024) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw StartError(description: "--listen \(host):\(port): \(message)")
        }
        return fd
    }

    /// The inherited listening socket, if this process was started by spawn-fcgi
    /// (fd 0) or systemd socket activation (LISTEN_FDS, fd 3); nil means CGI.
    static func inheritedListener(environment: [String: String]) -> Int32? {
        if let pid = environment["LISTEN_PID"], Int32(pid) == getpid(), let n = Int(environment["LISTEN_FDS"] ?? ""), n >= 1,
           isListeningSocket(3) {
            return 3
        }
        return isListeningSocket(0) ? 0 : nil
    }

    private static func isListeningSocket(_ fd: Int32) -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) == 0 && value != 0
    }
}

/// One worker's wait for a connection on the shared listening socket.
///
/// With plain `poll()` every idle worker wakes for every new connection and all but
/// one find nothing to accept (nginx opens a FastCGI connection per request, so with
/// 8 workers that was 7 useless wake-ups per request). Each worker instead has its
/// own epoll instance holding the listening socket with `EPOLLEXCLUSIVE`, so the
/// kernel wakes one waiter per connection. Falls back to `poll()` if epoll is refused.
private final class ListenWaiter {
    private let listenFD: Int32
    private let epollFD: Int32

    init(listenFD: Int32) {
        self.listenFD = listenFD
        var fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if fd >= 0 {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
            event.data.fd = listenFD
            if epoll_ctl(fd, EPOLL_CTL_ADD, listenFD, &event) != 0 {
                close(fd)
                fd = -1
            }
        }
        epollFD = fd
    }

    deinit { if epollFD >= 0 { close(epollFD) } }

    /// True when a connection may be waiting (another worker may still take it).
    func wait(milliseconds: Int32) -> Bool {
        if epollFD >= 0 {
            var event = epoll_event()
            return epoll_wait(epollFD, &event, 1, milliseconds) > 0
        }
        var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, milliseconds) > 0
    }
}

/// An accepted FastCGI request on its way from a request worker to an SMTP pool thread.
// @unchecked: a libfcgi handle whose ownership moves; the worker never touches it after `submit`.
private struct HandedRequest: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<FCGX_Request>
    init(_ pointer: UnsafeMutablePointer<FCGX_Request>) { self.pointer = pointer }
}

/// The streamed answer of one request (``ProgressStream``): the head goes out when it
/// is made, each step as one flushed line, so nginx (told `X-Accel-Buffering: no`)
/// passes it on at once. Made and used by the pool thread that owns the request.
// @unchecked: a libfcgi handle; every write to it is under `lock`, so a step reported
// from another thread never interleaves with one in flight.
private final class StreamedAnswer: @unchecked Sendable {
    private let request: UnsafeMutablePointer<FCGX_Request>
    private let lock = Mutex(())
    private let started = DispatchTime.now().uptimeNanoseconds

    init(_ request: UnsafeMutablePointer<FCGX_Request>) {
        self.request = request
        write(ProgressStream.head())
    }

    /// One step line. A client that went away makes the write fail quietly; the
    /// session's `SessionAbort` ends the work.
    func send(_ progress: WorkProgress) {
        let elapsed = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
        write(ProgressStream.line(progress, elapsedMilliseconds: elapsed))
    }

    private func write(_ bytes: [UInt8]) {
        lock.withLock { _ in
            FastCGIServer.put(bytes, to: request.pointee.out)
            _ = FCGX_FFlush(request.pointee.out)
        }
    }
}

/// A count incremented from many threads.
final class ManagedCounter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func increment() { count.withLock { $0 += 1 } }
}

/// A flag set once from one thread and read from many.
final class ManagedFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
