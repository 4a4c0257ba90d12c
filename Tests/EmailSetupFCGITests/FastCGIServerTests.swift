@testable import EmailSetupFCGI
import Foundation
import Logging
import XCTest

/// The FastCGI adapter's accept path, in process.
final class FastCGIServerTests: XCTestCase {
    /// nginx opens a connection per request; with plain poll() on the shared listening
    /// socket every idle worker woke for each and all but one found nothing to accept
    /// (7 useless wake-ups per request with 8 workers). EPOLLEXCLUSIVE wakes one.
    func testAConnectionWakesOneIdleWorkerNotAll() throws {
        let path = NSTemporaryDirectory() + "fcgi-wake-\(UUID().uuidString.prefix(8)).sock"
        let server = try FastCGIServer(listener: .unixSocket(path: path, mode: 0o600, group: nil),
                                       logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let finished = DispatchSemaphore(value: 0)
        let runner = Thread {
            server.run(workers: 8) { { _ in Response(status: 204) } }
            finished.signal()
        }
        runner.start()
        defer {
            server.stop()
            XCTAssertEqual(finished.wait(timeout: .now() + 3), .success, "workers did not stop")
        }
        usleep(100_000)  // every worker waiting
        let switchesBefore = Self.contextSwitchesOfThisProcess()
        let connections = 30
        for _ in 0..<connections {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            XCTAssertGreaterThanOrEqual(fd, 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            XCTAssertEqual(connected, 0)
            close(fd)  // no request: the worker that takes it finds end of stream
            usleep(5_000)  // let it go back to waiting
        }
        // A herd shows in the kernel, not in epoll_wait's results (a woken waiter that
        // finds the connection taken goes back to sleep inside the kernel), so count
        // the threads' context switches: about 2 per connection (this thread's sleep,
        // one worker) when one worker wakes; 9 when all eight do.
        let switches = Self.contextSwitchesOfThisProcess() - switchesBefore
        XCTAssertGreaterThan(server.wakeups, 0)
        XCTAssertLessThan(switches, connections * 5, "\(switches) context switches for \(connections) connections: idle workers woken in a herd")
    }

    /// Voluntary context switches summed over every thread of this process.
    private static func contextSwitchesOfThisProcess() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.reduce(0) { total, task in
            guard let status = try? String(contentsOfFile: "/proc/self/task/\(task)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("voluntary_ctxt_switches:") }),
                  let count = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else { return total }
            return total + count
        }
    }
}
