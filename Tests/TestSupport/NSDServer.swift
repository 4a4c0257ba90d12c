import Foundation
#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// The authoritative DNS server of the tests: Debian's nsd on 127.0.0.1 serving the
/// zone templates of Tests/Fixtures/dns (names in its README.md), started by
/// nsd_server.py with its configuration, zones, pid and log in a temporary directory.
///
/// `values` fill the templates' `@NAME@` placeholders (SRV ports of fixture SMTP
/// servers); a placeholder without a value takes the zone file's `; default` line.
///
/// ```swift
/// let dns = try NSDServer(values: ["SUBMISSIONS_PORT": String(smtp.port)])
/// let resolver = try DNSResolver(servers: [dns.address], timeout: 1)
/// ```
public final class NSDServer: Sendable {
    /// The port nsd answers on (UDP and TCP, 127.0.0.1).
    public let port: Int
    /// "127.0.0.1:PORT", what `DNSResolver(servers:)` and `dns_servers` take.
    public var address: String { "127.0.0.1:\(port)" }
    /// The state directory (nsd.conf, zones/, nsd.log).
    public var directoryPath: String { directory.path }

    private let process: ManagedProcess
    private let directory: TemporaryDirectory

    /// Tests/Fixtures/dns of this checkout: the zone templates and nsd_server.py.
    public static let fixtures: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/dns").path
    }()

    /// Starts nsd with the zones of `zones` (default: Tests/Fixtures/dns) and waits
    /// (bounded) until it answers.
    public init(values: [String: String] = [:], zones: String = NSDServer.fixtures) throws {
        directory = try TemporaryDirectory(prefix: "nsd")
        var arguments = [NSDServer.fixtures + "/nsd_server.py", "--dir", directory.path, "--zones", zones]
        for (name, value) in values.sorted(by: { $0.key < $1.key }) { arguments += ["--set", "\(name)=\(value)"] }
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: arguments)
        port = try process.waitForReadyPort(timeout: 30)
    }

    deinit { stop() }

    /// Stops nsd (also done on deinit); the directory goes with the object.
    public func stop() { process.stop() }

    /// What nsd logged (zone load errors, among others).
    public var log: String { (try? String(contentsOfFile: directory.path + "/nsd.log", encoding: .utf8)) ?? "" }

    private static let sharedServer = Mutex<NSDServer?>(nil)

    /// The address of the run's DNS server: `EMAILSETUP_TEST_DNS_SERVER` when scripts/test
    /// started one (and the responder uses it), else one started for this test process
    /// with the default values, kept until the process exits.
    public static func sharedAddress() throws -> String {
        if let address = ProcessInfo.processInfo.environment["EMAILSETUP_TEST_DNS_SERVER"], !address.isEmpty {
            return address
        }
        return try sharedServer.withLock { server in
            if let server { return server.address }
            let started = try NSDServer()
            server = started
            return started.address
        }
    }
}

/// A UDP socket on 127.0.0.1 that plays a DNS server for resolver tests: `.silent`
/// reads and drops every question (a firewall eating packets); `.nxdomainAfter(s)`
/// answers each question with NXDOMAIN `s` seconds after it came, all questions
/// handled at once (to show queries run concurrently). Stops on `stop()` or deinit.
public final class LoopbackUDPServer: Sendable {
    /// How it answers.
    public enum Behaviour: Sendable {
        case silent
        case nxdomainAfter(Double)
    }

    /// Its port.
    public let port: Int
    /// "127.0.0.1:PORT".
    public var address: String { "127.0.0.1:\(port)" }
    /// Questions received so far.
    public var received: Int { state.count.withLock { $0 } }

    /// What the serving thread shares with the object (the thread must not hold the
    /// object itself, or deinit would never come).
    private final class State: Sendable {
        let descriptor: Int32
        let running = Mutex(true)
        let count = Mutex(0)
        let finished = Mutex(false)
        init(descriptor: Int32) { self.descriptor = descriptor }
    }
    private let state: State

    /// Binds a free port and starts serving on its own thread.
    public init(_ behaviour: Behaviour) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard fd >= 0, bound == 0 else {
            if fd >= 0 { close(fd) }
            throw ManagedProcess.Failure(message: "cannot bind a UDP socket on 127.0.0.1", stderr: "")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        let state = State(descriptor: fd)
        self.state = state
        Thread { LoopbackUDPServer.serve(state, behaviour) }.start()
    }

    deinit { stop() }

    /// Stops serving (bounded wait for the thread) and closes the socket.
    public func stop() {
        let first = state.running.withLock { running in
            defer { running = false }
            return running
        }
        guard first else { return }
        let end = Date().addingTimeInterval(2)
        while !state.finished.withLock({ $0 }) && Date() < end { usleep(10_000) }
        close(state.descriptor)
    }

    private static func serve(_ state: State, _ behaviour: Behaviour) {
        let descriptor = state.descriptor
        defer { state.finished.withLock { $0 = true } }
        var due: [(at: Date, packet: [UInt8], peer: sockaddr_in)] = []
        while state.running.withLock({ $0 }) {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 10) > 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                var peer = sockaddr_in()
                var peerLength = socklen_t(MemoryLayout<sockaddr_in>.size)
                let size = withUnsafeMutablePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(descriptor, &buffer, buffer.count, 0, $0, &peerLength) }
                }
                if size >= 12 {
                    state.count.withLock { $0 += 1 }
                    if case .nxdomainAfter(let delay) = behaviour {
                        var reply = Array(buffer.prefix(size))
                        reply[2] = 0x81 | (reply[2] & 0x01)   // QR, opcode 0, RD kept
                        reply[3] = 0x83                       // RA, rcode 3 (NXDOMAIN)
                        due.append((Date().addingTimeInterval(delay), reply, peer))
                    }
                }
            }
            let now = Date()
            for item in due where item.at <= now {
                var peer = item.peer
                _ = withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(descriptor, item.packet, item.packet.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            due.removeAll { $0.at <= now }
        }
    }
}
