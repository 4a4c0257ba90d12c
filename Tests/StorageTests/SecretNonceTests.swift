import Foundation
import Storage
import XCTest

/// Single-use transport nonces in MariaDB: issued with the public key, consumed by
/// the save that carries them, in the save's transaction (issue 12).
final class SecretNonceTests: StorageTestCase {
    private let values = ["from_address": "noreply@example.com", "smtp_host": "mail.example.com", "smtp_password": "v1:0000aaaa:c2VhbGVk"]

    private func nonceRows() throws -> Int {
        Int(try makeConnection().query("SELECT COUNT(*) AS n FROM transport_nonces").first?.int("n") ?? -1)
    }

    func testIssuedNoncesAreRandomBase64URLAndStored() throws {
        let store = makeStore()
        let a = try store.issueTransportNonce()
        let b = try store.issueTransportNonce(lifetime: 30)
        XCTAssertNotEqual(a.value, b.value)
        XCTAssertEqual(a.expiresIn, 600)
        XCTAssertEqual(b.expiresIn, 30)
        for nonce in [a.value, b.value] {
            XCTAssertEqual(nonce.count, 22)
            XCTAssertTrue(nonce.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }, nonce)
        }
        let seconds = try makeConnection().query("""
            SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), expires_at) AS s FROM transport_nonces WHERE nonce = ?
            """, [.text(a.value)]).first?.int("s")
        XCTAssertEqual(Double(try XCTUnwrap(seconds)), 600, accuracy: 5)
    }

    func testANonceWorksOnceAndARefusedSaveWritesNothing() throws {
        let store = makeStore()
        let nonce = try store.issueTransportNonce().value
        XCTAssertEqual(try store.save(values: values, expectedVersion: nil, actor: "admin", remoteAddress: nil,
                                      consumingNonces: ["smtp_password": nonce]), 1)
        XCTAssertEqual(try nonceRows(), 0)

        let again = assertStorageError(.transportNonce) {
            try store.save(values: ["smtp_password": "v1:0000aaaa:YWdhaW4="], expectedVersion: nil, actor: "admin",
                           remoteAddress: nil, consumingNonces: ["smtp_password": nonce])
        }
        XCTAssertEqual(again?.field, "smtp_password")
        XCTAssertEqual(try store.load().version, 1)
        XCTAssertEqual(try store.load().values["smtp_password"], "v1:0000aaaa:c2VhbGVk")
        XCTAssertEqual(try store.audit().count, 1, "no audit row for the refused save")
    }

    func testUnknownAndExpiredNoncesAreRefused() throws {
        let store = makeStore()
        assertStorageError(.transportNonce) {
            try store.save(values: values, expectedVersion: nil, actor: "admin", remoteAddress: nil,
                           consumingNonces: ["smtp_password": "AAAAAAAAAAAAAAAAAAAAAA"])
        }
        let nonce = try store.issueTransportNonce().value
        try makeConnection().execute("UPDATE transport_nonces SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE nonce = ?",
                                     [.text(nonce)])
        assertStorageError(.transportNonce) {
            try store.save(values: values, expectedVersion: nil, actor: "admin", remoteAddress: nil,
                           consumingNonces: ["smtp_password": nonce])
        }
        XCTAssertEqual(try store.load().version, 0)
    }

    func testASaveThatFailsLeavesItsNonceUsable() throws {
        let store = makeStore()
        let nonce = try store.issueTransportNonce().value
        assertStorageError(.conflict) {
            try store.save(values: values, expectedVersion: 5, actor: "admin", remoteAddress: nil, consumingNonces: ["smtp_password": nonce])
        }
        XCTAssertEqual(try store.save(values: values, expectedVersion: 0, actor: "admin", remoteAddress: nil,
                                      consumingNonces: ["smtp_password": nonce]), 1)
    }

    func testIssuingPrunesExpiredNonces() throws {
        let db = makeConnection()
        try db.execute("INSERT INTO transport_nonces (nonce, expires_at) VALUES ('expiredexpiredexpired0', UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE)")
        try db.execute("INSERT INTO transport_nonces (nonce, expires_at) VALUES ('stillvalidstillvalid00', UTC_TIMESTAMP(6) + INTERVAL 1 MINUTE)")
        let issued = try makeStore().issueTransportNonce().value
        let left = try db.query("SELECT nonce FROM transport_nonces ORDER BY nonce").map { try $0.text("nonce") }
        XCTAssertEqual(Set(left), ["stillvalidstillvalid00", issued])
    }

    func testConcurrentSavesWithOneNonceSaveOnce() throws {
        let nonce = try makeStore().issueTransportNonce().value
        let configuration = self.configuration!
        let values = self.values
        let outcomes = Locked<[String]>([])
        onThreads(4) { i in
            let store = SettingsStore(configuration: configuration)
            do {
                _ = try store.save(values: values.merging(["smtp_port": "\(2500 + i)"]) { $1 }, expectedVersion: nil,
                                   actor: "admin", remoteAddress: nil, consumingNonces: ["smtp_password": nonce])
                outcomes.withLock { $0.append("saved") }
            } catch let error as StorageError {
                outcomes.withLock { $0.append("\(error.code)") }
            } catch {
                outcomes.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(outcomes.current.sorted(), ["saved", "transportNonce", "transportNonce", "transportNonce"])
        XCTAssertEqual(try makeStore().load().version, 1)
    }
}
