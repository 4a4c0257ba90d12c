@testable import EmailSetupFCGI
import Foundation
import Logging
import Storage
import XCTest
import Synchronization

/// A database outage is logged once, then as a count every 10 s, then the recovery
/// once — whatever the number of requests and threads.
final class StorageOutageLogTests: XCTestCase {
    var recorder: RecordingLogHandler.Store!
    var logger: Logger!
    let clock = ManualClock()

    override func setUp() {
        recorder = RecordingLogHandler.Store()
        let store = recorder!
        logger = Logger(label: "test.outage") { _ in RecordingLogHandler(store: store) }
    }

    func makeLog() -> StorageOutageLog {
        let clock = self.clock
        return StorageOutageLog(logger: logger, reportInterval: 10, now: { clock.seconds })
    }

    let down = StorageError(.unavailable, "Can't connect to local server through socket (2002)")

    func testOneLineAtTheStartACountEveryTenSecondsAndOneAtTheEnd() {
        let log = makeLog()
        log.databaseAnswered()
        XCTAssertTrue(recorder.entries.isEmpty, "no outage, nothing to say")

        // 25 s of failures, 100 a second.
        for tick in 0..<2500 {
            clock.seconds = 1000 + Double(tick) / 100
            log.requestFailed(error: down, path: "/api/setup/email_smtp")
        }
        let entries = recorder.entries
        XCTAssertEqual(entries.count, 3, entries.map(\.message).joined(separator: "\n"))
        XCTAssertEqual(entries[0].level, .error)
        XCTAssertTrue(entries[0].message.hasPrefix("database unreachable"), entries[0].message)
        XCTAssertTrue(entries[0].metadata["error"]?.contains("2002") ?? false, "\(entries[0].metadata)")
        XCTAssertEqual(entries[0].metadata["path"], "/api/setup/email_smtp")
        XCTAssertEqual(entries[1].metadata["failed"], "1000", entries[1].message)
        XCTAssertEqual(entries[1].metadata["failed_total"], "1001")
        XCTAssertEqual(entries[1].metadata["seconds"], "10")
        XCTAssertTrue(entries[1].message.contains("1000 requests failed in the last 10 s"), entries[1].message)
        XCTAssertEqual(entries[2].metadata["failed"], "1000")
        XCTAssertEqual(entries[2].metadata["failed_total"], "2001")
        XCTAssertTrue(log.inProgress)

        clock.seconds = 1030.5
        log.databaseAnswered()
        log.databaseAnswered()
        let end = recorder.entries.dropFirst(3)
        XCTAssertEqual(end.count, 1, "the recovery is logged once")
        XCTAssertEqual(end.first?.message, "database reachable again after 30.5 s, 2500 requests failed")
        XCTAssertEqual(end.first?.level, .notice)
        XCTAssertFalse(log.inProgress)

        // The next outage starts afresh.
        clock.seconds = 2000
        log.requestFailed(error: down, path: "/api/setup/health")
        XCTAssertTrue(recorder.entries.last?.message.hasPrefix("database unreachable") ?? false)
        XCTAssertEqual(recorder.entries.count, 5)
    }

    func testAQuietOutageLogsNoCounts() {
        let log = makeLog()
        clock.seconds = 5
        log.requestFailed(error: down, path: "/a")
        clock.seconds = 500
        log.databaseAnswered()
        XCTAssertEqual(recorder.entries.map(\.message), ["database unreachable; requests answer 503 until it is back (one line every 10 s while it lasts)",
                                                         "database reachable again after 495.0 s, 1 requests failed"])
    }

    func testSharedByManyThreads() {
        let log = makeLog(), down = self.down
        clock.seconds = 1
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<500 { log.requestFailed(error: down, path: "/a") }
        }
        clock.seconds = 2
        DispatchQueue.concurrentPerform(iterations: 8) { _ in log.databaseAnswered() }
        XCTAssertEqual(recorder.entries.count, 2, recorder.entries.map(\.message).joined(separator: "\n"))
        XCTAssertEqual(recorder.entries.last?.metadata["failed_total"], "4000")
    }

    /// Through the handler: 503s unchanged, one line for many failed requests (not one
    /// "storage failure" each), and requests that never reach the database (401)
    /// do not end the outage; one that does ends it.
    func testHandlerCountsFailedRequestsInsteadOfLoggingEach() {
        let repository = MemorySettingsRepository()
        let log = makeLog()
        var handler = APIHandler(repository: OutageObservingRepository(base: repository, outage: log), logger: logger)
        handler.storageOutage = log
        repository.failWith = down
        for _ in 0..<50 {
            let r = handler.handle(get("/api/setup/email_smtp"))
            XCTAssertEqual(r.status, 503)
            XCTAssertEqual(r.header("Retry-After"), "5")
            XCTAssertNotNil(r.error("database"))
        }
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp", user: nil)).status, 401)
        XCTAssertTrue(log.inProgress, "a 401 says nothing about the database")
        repository.failWith = nil
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp")).status, 200)
        XCTAssertEqual(recorder.entries.map(\.message), ["database unreachable; requests answer 503 until it is back (one line every 10 s while it lasts)",
                                                         "database reachable again after 0.0 s, 50 requests failed"])
    }
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let value = Mutex<TimeInterval>(0)
    var seconds: TimeInterval {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
