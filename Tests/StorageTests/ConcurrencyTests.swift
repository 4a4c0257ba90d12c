import Foundation
import Storage
import XCTest

/// Many threads, each with its own store and connection, against one database.
final class ConcurrencyTests: StorageTestCase {
    private static let labels = ["from_address", "smtp_host", "smtp_port", "smtp_username", "smtp_password",
                                 "smtp_connection_type", "smtp_authentication_type", "smtp_tls_verify",
                                 "smtp_tls_pin_sha256", "smtp_tls_ca_pem", "smtp_connect_timeout", "smtp_command_timeout"]

    /// 20 savers start together on an empty installation (so they also race to create
    /// the version row) while two readers load continuously.
    func testTwentyConcurrentSaversLeaveAConsistentState() throws {
        let configuration = self.configuration!
        let saverCount = 20
        let results = Locked<[Int: Int]>([:])      // saver → version it produced
        let failures = Locked<[String]>([])
        let mixedReads = Locked<[String]>([])
        let reads = Locked(0)
        let saversDone = Locked(false)

        onThreads(saverCount + 2) { i in
            let store = SettingsStore(configuration: configuration)
            if i >= saverCount { // readers
                repeat {
                    do {
                        let loaded = try store.load()
                        let writers = Set(loaded.values.values)
                        if writers.count > 1 { mixedReads.withLock { $0.append("version \(loaded.version): \(writers)") } }
                        if loaded.version > 0, let writer = writers.first,
                           let history = try? store.historyEntry(version: loaded.version),
                           history.values.values.first != writer {
                            mixedReads.withLock { $0.append("version \(loaded.version) is \(writer) but its history says otherwise") }
                        }
                        reads.withLock { $0 += 1 }
                    } catch {
                        failures.withLock { $0.append("reader: \(error)") }
                    }
                } while !saversDone.current
                return
            }
            let values = Dictionary(uniqueKeysWithValues: Self.labels.map { ($0, "writer-\(i)") })
            do {
                let version = try store.save(values: values, expectedVersion: nil, actor: "writer-\(i)", remoteAddress: nil)
                results.withLock { $0[i] = version }
            } catch {
                failures.withLock { $0.append("writer-\(i): \(error)") }
            }
            if results.current.count + failures.current.count == saverCount { saversDone.withLock { $0 = true } }
        }

        XCTAssertEqual(failures.current, [])
        XCTAssertEqual(mixedReads.current, [], "a load never mixes two versions")
        XCTAssertGreaterThan(reads.current, 0)
        note("\(reads.current) consistent loads during \(saverCount) concurrent saves")
        XCTAssertEqual(results.current.values.sorted(), Array(1...saverCount), "versions are contiguous and unique")

        let store = makeStore()
        let final = try store.load()
        XCTAssertEqual(final.version, saverCount)
        let lastWriter = try XCTUnwrap(results.current.first { $0.value == saverCount }?.key)
        XCTAssertEqual(final.values, Dictionary(uniqueKeysWithValues: Self.labels.map { ($0, "writer-\(lastWriter)") }))

        let history = try store.history(limit: 100)
        XCTAssertEqual(history.count, saverCount, "one history row per save")
        XCTAssertEqual(history.map(\.version), Array((1...saverCount).reversed()))
        for entry in history {
            let writer = try XCTUnwrap(results.current.first { $0.value == entry.version }?.key)
            XCTAssertEqual(entry.savedBy, "writer-\(writer)")
            XCTAssertEqual(Set(entry.values.values), ["writer-\(writer)"], "version \(entry.version) holds one writer's values")
        }
        XCTAssertEqual(try store.audit(limit: 100).count, saverCount)
    }

    /// Ten clients that all saw version 0 save at once: exactly one wins.
    func testConcurrentSavesWithTheSameExpectedVersionHaveOneWinner() throws {
        let configuration = self.configuration!
        let outcomes = Locked<[String]>([])
        onThreads(10) { i in
            do {
                _ = try SettingsStore(configuration: configuration)
                    .save(values: ["smtp_host": "host-\(i)"], expectedVersion: 0, actor: "c\(i)", remoteAddress: nil)
                outcomes.withLock { $0.append("saved") }
            } catch let error as StorageError where error.code == .conflict && error.currentVersion == 1 {
                outcomes.withLock { $0.append("conflict") }
            } catch {
                outcomes.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(outcomes.current.sorted(), Array(repeating: "conflict", count: 9) + ["saved"])
        XCTAssertEqual(try makeStore().history().count, 1)
    }
}
