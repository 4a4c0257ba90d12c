import Foundation
import XCTest
@testable import Storage

/// AES-256-GCM at rest: `v1:<key-id>:<base64(nonce‖ciphertext‖tag)>`.
final class SecretSealTests: KeyringTestCase {

    /// Replaces the payload bytes of a sealed value via `change`.
    func tamper(_ stored: String, _ change: (inout [UInt8]) -> Void) -> String {
        let parts = stored.split(separator: ":", maxSplits: 2).map(String.init)
        var payload = [UInt8](Data(base64Encoded: parts[2])!)
        change(&payload)
        return "\(parts[0]):\(parts[1]):" + Data(payload).base64EncodedString()
    }

    func testSealThenOpenGivesThePasswordBack() throws {
        for password in ["S3cret pass", "Grüße 🔑", String(repeating: "long ", count: 500)] {
            let stored = try keyring.seal(password)
            XCTAssertEqual(try keyring.open(stored), password)
        }
    }

    func testTheStoredFormIsV1KeyIDAndNonceCiphertextTag() throws {
        let stored = try keyring.seal("S3cret pass")
        let parts = stored.split(separator: ":").map(String.init)
        XCTAssertEqual(parts.count, 3)
        XCTAssertEqual(parts[0], "v1")
        XCTAssertEqual(parts[1], try keyring.currentKeyID())
        XCTAssertNotNil(parts[1].range(of: "^[0-9a-f]{8}$", options: .regularExpression))
        XCTAssertEqual(Data(base64Encoded: parts[2])?.count, 12 + "S3cret pass".utf8.count + 16)
        XCTAssertEqual(try SealedSecret(parsing: stored).keyID, parts[1])
        XCTAssertEqual(try SealedSecret(parsing: stored).description, stored)
    }

    func testSealingTheSamePasswordTwiceDiffers() throws {
        let first = try keyring.seal("S3cret pass")
        let second = try keyring.seal("S3cret pass")
        XCTAssertNotEqual(first, second)
        XCTAssertNotEqual(first.split(separator: ":")[2].prefix(16), second.split(separator: ":")[2].prefix(16), "the nonce must differ")
    }

    func testTheEmptyPasswordStaysEmpty() throws {
        XCTAssertEqual(try keyring.seal(""), "")
        XCTAssertEqual(try keyring.open(""), "")
        XCTAssertEqual(try keyring.reseal(""), "")
    }

    func testTamperedTagNonceOrCiphertextFailsAuthentication() throws {
        let stored = try keyring.seal("S3cret pass")
        XCTAssertStorageError(.secretAuthentication, try self.keyring.open(self.tamper(stored) { $0[$0.count - 1] ^= 0x80 }))
        XCTAssertStorageError(.secretAuthentication, try self.keyring.open(self.tamper(stored) { $0[0] ^= 0x01 }))
        XCTAssertStorageError(.secretAuthentication, try self.keyring.open(self.tamper(stored) { $0[13] ^= 0x01 }))
        // Cut the tag off and let the ciphertext's end stand in for it.
        XCTAssertStorageError(.secretAuthentication, try self.keyring.open(self.tamper(stored) { $0.removeLast() }))
    }

    func testAValueRelabelledToAnotherKnownKeyFailsAuthentication() throws {
        let stored = try keyring.seal("S3cret pass")
        let oldID = try keyring.currentKeyID()
        let newID = try keyring.rotate()
        let relabelled = stored.replacingOccurrences(of: "v1:\(oldID):", with: "v1:\(newID):")
        XCTAssertStorageError(.secretAuthentication, try self.keyring.open(relabelled))
        XCTAssertEqual(try keyring.open(stored), "S3cret pass")
    }

    func testAnUnknownKeyIDIsReportedAsSuch() throws {
        let stored = try keyring.seal("S3cret pass")
        let current = try keyring.currentKeyID()
        let unknown = current == "00000000" ? "11111111" : "00000000"
        let message = XCTAssertStorageError(.secretUnknownKey, try self.keyring.open(stored.replacingOccurrences(of: "v1:\(current):", with: "v1:\(unknown):")))
        XCTAssertTrue(message.contains(unknown), message)
    }

    func testMalformedValuesAreReportedAsMalformed() throws {
        let stored = try keyring.seal("S3cret pass")
        let id = try keyring.currentKeyID()
        let payload = String(stored.split(separator: ":")[2])
        for bad in [
            "S3cret pass",                         // a clear-text password
            "v2:\(id):\(payload)",                 // unknown version
            "v1:\(id)",                            // no payload
            // Key id not lowercase hex. The leading "A" matters: a random id of digits only
            // (about 1 in 40) is its own upper case and would open.
            "v1:A\(id.dropFirst().uppercased()):\(payload)",
            "v1:\(id)0:\(payload)",                // key id too long
            "v1:\(id):\(payload.dropLast())",      // truncated base64
            "v1:\(id):not base64!",                // not base64
            "v1:\(id):" + Data(count: 27).base64EncodedString(), // shorter than nonce + tag
        ] {
            XCTAssertStorageError(.secretMalformed, try self.keyring.open(bad))
        }
    }

    func testASecondKeyringOnTheSameDirectoryOpensWhatTheFirstSealed() throws {
        let stored = try keyring.seal("shared")
        let other = try SecretKeyring(directory: keyring.directory)
        XCTAssertEqual(try other.open(stored), "shared")
        XCTAssertEqual(try other.publicKeyPEM, try keyring.publicKeyPEM)
    }

    func testSealingFromManyThreadsAtOnce() throws {
        let keyring = self.keyring!
        let failures = LockedBox(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let password = "password \(i)"
            if (try? keyring.open(keyring.seal(password))) != password { failures.modify { $0 += 1 } }
        }
        XCTAssertEqual(failures.value, 0)
    }
}
