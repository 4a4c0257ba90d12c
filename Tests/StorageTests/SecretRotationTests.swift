import Foundation
import XCTest
@testable import Storage

/// rotate / reseal / retireKeys: nothing sealed with a known key ever becomes unreadable.
final class SecretRotationTests: KeyringTestCase {

    func testThreeRotationsKeepOldValuesReadableUntilRetired() throws {
        var stored: [(password: String, value: String)] = []
        var ids = [try keyring.currentKeyID()]
        stored.append(("under key 0", try keyring.seal("under key 0")))
        for round in 1...3 {
            let id = try keyring.rotate()
            XCTAssertFalse(ids.contains(id))
            XCTAssertEqual(try keyring.currentKeyID(), id)
            ids.append(id)
            stored.append(("under key \(round)", try keyring.seal("under key \(round)")))
        }
        XCTAssertEqual(try keyring.keyIDs(), ids.sorted())
        for (index, entry) in stored.enumerated() {
            XCTAssertEqual(try SealedSecret(parsing: entry.value).keyID, ids[index])
            XCTAssertEqual(try keyring.open(entry.value), entry.password)
        }

        // Re-seal everything (the caller does this in one DB transaction), then retire.
        let resealed = try stored.map { try keyring.reseal($0.value) }
        for (entry, value) in zip(stored, resealed) {
            XCTAssertEqual(try SealedSecret(parsing: value).keyID, ids[3])
            XCTAssertEqual(try keyring.open(value), entry.password)
        }
        XCTAssertEqual(resealed[3], stored[3].value, "a value already under the current key is left as it is")
        let inUse = Set(try resealed.map { try SealedSecret(parsing: $0).keyID })
        XCTAssertEqual(try keyring.retireKeys(except: inUse), Array(ids[0...2]).sorted())
        XCTAssertEqual(try keyring.keyIDs(), [ids[3]])

        for (entry, value) in zip(stored, resealed) {
            XCTAssertEqual(try keyring.open(value), entry.password)
        }
        XCTAssertStorageError(.secretUnknownKey, try self.keyring.open(stored[0].value))
        // A fresh keyring (a restarted responder) sees the same.
        let restarted = try SecretKeyring(directory: keyring.directory)
        XCTAssertEqual(try restarted.open(resealed[0]), stored[0].password)
        XCTAssertEqual(try restarted.currentKeyID(), ids[3])
    }

    func testRetireNeverDeletesTheCurrentKeyOrKeptOnes() throws {
        let first = try keyring.currentKeyID()
        let second = try keyring.rotate()
        let third = try keyring.rotate()
        XCTAssertEqual(try keyring.retireKeys(except: [first]), [second])
        XCTAssertEqual(try keyring.keyIDs(), [first, third].sorted())
        XCTAssertEqual(try keyring.retireKeys(except: []), [first])
        XCTAssertEqual(try keyring.keyIDs(), [third])
        XCTAssertEqual(try keyring.retireKeys(except: []), [])
    }

    func testRotationInterruptedBeforeCurrentMovedCanBeRunAgain() throws {
        let stored = try keyring.seal("before")
        let old = try keyring.currentKeyID()
        // A crash after the new key file was written but before `current` was replaced.
        let orphan = "0badc0de" == old ? "0badc0df" : "0badc0de"
        try SecretTestSupport.writeFile(keyring.directory + "/data-\(orphan).key",
                                        Data((String(repeating: "ab", count: 32) + "\n").utf8), mode: 0o600)
        XCTAssertEqual(try keyring.currentKeyID(), old)
        let new = try keyring.rotate()
        let resealed = try keyring.reseal(stored)
        XCTAssertEqual(try keyring.open(resealed), "before")
        XCTAssertEqual(try keyring.retireKeys(except: []), [old, orphan].sorted())
        XCTAssertEqual(try keyring.keyIDs(), [new])
    }

    func testRotationInterruptedBeforeResealLeavesEverythingReadable() throws {
        let stored = try keyring.seal("before")
        _ = try keyring.rotate()   // the database was never re-sealed
        let again = try keyring.rotate()  // the operator runs rotate-key again
        XCTAssertEqual(try keyring.open(stored), "before")
        let resealed = try keyring.reseal(stored)
        XCTAssertEqual(try SealedSecret(parsing: resealed).keyID, again)
        XCTAssertEqual(try keyring.open(resealed), "before")
    }

    func testAnotherProcessesRotationIsFollowed() throws {
        // The responder keeps its keyring; the CLI opens its own and rotates.
        let cli = try SecretKeyring(directory: keyring.directory)
        let new = try cli.rotate()
        let fromCLI = try cli.seal("sealed by the CLI")
        XCTAssertEqual(try keyring.open(fromCLI), "sealed by the CLI", "a key made by another process is loaded on demand")
        XCTAssertEqual(try SealedSecret(parsing: try keyring.seal("x")).keyID, new, "seal follows `current` on disk")
    }

    func testRotateWritesPrivateFiles() throws {
        let id = try keyring.rotate()
        XCTAssertEqual(SecretTestSupport.mode(of: keyring.directory + "/data-\(id).key"), 0o600)
        XCTAssertEqual(SecretTestSupport.mode(of: keyring.directory + "/current"), 0o600)
        XCTAssertEqual(try String(contentsOfFile: keyring.directory + "/current", encoding: .utf8), id + "\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: keyring.directory).filter { $0.hasPrefix(".tmp") }
        XCTAssertEqual(leftovers, [])
    }
}
