import Foundation
import XCTest
@testable import Storage

/// Keys in the database wrapped by one key-encryption key (issue 17): two "hosts" are
/// two keyrings with their own connections and their own copy of the KEK file, sharing
/// nothing else but the database.
final class SharedKeyTests: StorageTestCase {
    var temporary: String!

    override func setUpWithError() throws {
        try super.setUpWithError()
        temporary = try SecretTestSupport.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
        try super.tearDownWithError()
    }

    /// A host: its own directory `name` (0700) holding `kek` (copied from `kekFrom`, or
    /// made on first use), and a keyring over the test database.
    func host(_ name: String, kekFrom: String? = nil, importing: String? = nil) throws -> (keyring: SecretKeyring, kekPath: String) {
        let directory = temporary + "/" + name
        if !FileManager.default.fileExists(atPath: directory) { XCTAssertEqual(mkdir(directory, 0o700), 0) }
        let path = directory + "/kek"
        if let kekFrom { try SecretTestSupport.writeFile(path, try Data(contentsOf: URL(fileURLWithPath: kekFrom)), mode: 0o600) }
        let store = WrappedKeyStore(configuration: configuration, kek: KEKLocation(path: path, origin: .keyDirectory), importing: importing)
        return (SecretKeyring(sharedKeys: store), path)
    }

    func count(_ sql: StaticString) throws -> Int64 {
        try makeConnection().query(sql).first!.int("n")
    }

    // MARK: Wrapping (no database needed)

    func testWrapUnwrapWrongKEKAndTamperedRow() throws {
        let location = KEKLocation(path: temporary + "/kek", origin: .configured)
        let kek = try KeyEncryptionKey(bytes: try secureRandomBytes(32), location: location)
        let other = try KeyEncryptionKey(bytes: try secureRandomBytes(32), location: KEKLocation(path: "/elsewhere/kek", origin: .configured))
        let secret = try secureRandomBytes(32)
        let wrapped = try kek.wrap(secret, kind: "data", keyID: "0a1b2c3d")
        XCTAssertEqual(try kek.unwrap(wrapped, kind: "data", keyID: "0a1b2c3d", wrappedBy: kek.id), secret)
        XCTAssertNotEqual(try kek.wrap(secret, kind: "data", keyID: "0a1b2c3d"), wrapped, "a fresh nonce every time")

        // Another KEK: one line naming both KEK ids and the file to copy.
        let wrong = XCTAssertStorageError(.keyFile, try other.unwrap(wrapped, kind: "data", keyID: "0a1b2c3d", wrappedBy: kek.id))
        XCTAssertTrue(wrong.contains(kek.id) && wrong.contains(other.id) && wrong.contains("/elsewhere/kek"), wrong)
        XCTAssertFalse(wrong.contains("\n"))
        // A changed row, or a row moved to another id or kind: the tag fails.
        var bytes = Array(Data(base64Encoded: wrapped)!)
        bytes[14] ^= 1
        let tampered = XCTAssertStorageError(.secretAuthentication,
                                             try kek.unwrap(bytes.base64(), kind: "data", keyID: "0a1b2c3d", wrappedBy: kek.id))
        XCTAssertTrue(tampered.contains("0a1b2c3d") && tampered.contains("changed"), tampered)
        XCTAssertStorageError(.secretAuthentication, try kek.unwrap(wrapped, kind: "data", keyID: "0a1b2c3e", wrappedBy: kek.id))
        XCTAssertStorageError(.secretAuthentication, try kek.unwrap(wrapped, kind: "transport", keyID: "0a1b2c3d", wrappedBy: kek.id))
        // Never the key material in a message.
        XCTAssertFalse(wrong.contains(hexString(kek.bytes)) || tampered.contains(hexString(kek.bytes)))
    }

    func testKEKFileModesAndContentsAreChecked() throws {
        let path = temporary + "/kek"
        try SecretTestSupport.writeFile(path, Data((hexString(try secureRandomBytes(32)) + "\n").utf8), mode: 0o644)
        let location = KEKLocation(path: path, origin: .configured)
        let message = XCTAssertStorageError(.keyFile, try KeyEncryptionKey.read(location))
        XCTAssertTrue(message.contains(path) && message.contains("0644"), message)
        chmod(path, 0o400)   // what systemd gives a credential
        XCTAssertNotNil(try KeyEncryptionKey.read(location))
        try SecretTestSupport.writeFile(temporary + "/short", Data("abcd\n".utf8), mode: 0o600)
        XCTAssertStorageError(.keyFile, try KeyEncryptionKey.read(KEKLocation(path: self.temporary + "/short", origin: .configured)))
        XCTAssertStorageError(.keyFile, try KeyEncryptionKey.create(at: KEKLocation(path: self.temporary + "/cred", origin: .systemdCredential)))
    }

    func testNothingIsReadUntilASecretIsNeeded() throws {
        let (keyring, kekPath) = try host("a")
        XCTAssertFalse(FileManager.default.fileExists(atPath: kekPath))
        XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_keys"), 0)
        _ = keyring   // made, never used: no KEK file, no rows
        XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_key_current"), 0)
        _ = try keyring.seal("first use")
        XCTAssertEqual(SecretTestSupport.mode(of: kekPath), 0o600)
        XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_keys WHERE kind = 'data'"), 1)
    }

    // MARK: Two hosts

    func testTwoHostsSharingOnlyTheKEKFileReadEachOthersSecrets() throws {
        let a = try host("a")
        let sealedByA = try a.keyring.seal("sealed on A")
        let b = try host("b", kekFrom: a.kekPath)
        XCTAssertEqual(try b.keyring.open(sealedByA), "sealed on A")
        XCTAssertEqual(try a.keyring.open(try b.keyring.seal("sealed on B")), "sealed on B")
        // One transport key pair for both (made once, RSA-3072, by whoever asks first).
        XCTAssertEqual(try b.keyring.publicKeyPEM, try a.keyring.publicKeyPEM)
        XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_keys WHERE kind = 'transport'"), 1)

        // A host with another KEK file is refused with one line naming its file.
        let c = try host("c")
        try SecretTestSupport.writeFile(c.kekPath, Data((hexString(try secureRandomBytes(32)) + "\n").utf8), mode: 0o600)
        let wrong = XCTAssertStorageError(.keyFile, try c.keyring.open(sealedByA))
        XCTAssertTrue(wrong.contains(c.kekPath) && wrong.contains("same KEK file"), wrong)
        // A host without the file (the database holds keys) is told to copy it, and makes none.
        let d = try host("d")
        let missing = XCTAssertStorageError(.keyFile, try d.keyring.open(sealedByA))
        XCTAssertTrue(missing.contains(d.kekPath) && missing.contains("copy the KEK file"), missing)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.kekPath))
    }

    func testRotateKeyOnOneHostTheOtherFollowsWithoutRestart() throws {
        let a = try host("a")
        let store = makeStore()
        _ = try store.save(values: ["smtp_password": try a.keyring.seal("the password"), "oauth_client_secret": try a.keyring.seal("client secret")],
                           expectedVersion: nil, actor: "t", remoteAddress: nil)
        let b = try host("b", kekFrom: a.kekPath)
        let old = try b.keyring.currentKeyID()
        XCTAssertEqual(try b.keyring.open(try store.load().values["smtp_password"]!), "the password")

        // rotate-key's transaction, on host A.
        let newID = try store.withTransaction { db in
            let newID = try a.keyring.rotate(on: db)
            XCTAssertEqual(try store.rewriteSecrets(actor: "t") { try a.keyring.reseal($0, to: newID) }, 4, "password, client secret, one history copy of each")
            XCTAssertEqual(try a.keyring.retireKeys(on: db, keeping: [newID, old]), [])
            return newID
        }
        XCTAssertNotEqual(newID, old)
        // B, never restarted, opens what is sealed with the new key and seals with it.
        let stored = try store.load().values
        XCTAssertEqual(try SealedSecret(parsing: stored["smtp_password"]!).keyID, newID)
        XCTAssertEqual(try SealedSecret(parsing: stored["oauth_client_secret"]!).keyID, newID)
        XCTAssertEqual(try b.keyring.open(stored["smtp_password"]!), "the password")
        XCTAssertEqual(try b.keyring.currentKeyID(), newID)
        XCTAssertEqual(try SealedSecret(parsing: try b.keyring.seal("x")).keyID, newID)

        // A second rotation retires the first key; a host still holding it in memory
        // keeps working, a new one (a restart) still opens everything stored.
        let third = try store.withTransaction { db in
            let id = try a.keyring.rotate(on: db)
            try store.rewriteSecrets(actor: "t") { try a.keyring.reseal($0, to: id) }
            XCTAssertEqual(try a.keyring.retireKeys(on: db, keeping: [id, newID]), [old])
            return id
        }
        XCTAssertEqual(try a.keyring.keyIDs(), [newID, third].sorted())
        let restarted = try host("b")
        XCTAssertEqual(try restarted.keyring.open(try store.load().values["oauth_client_secret"]!), "client secret")
    }

    func testRotateKEKRewrapsEveryKeyInOneGo() throws {
        let a = try host("a", importing: try SecretTestSupport.makeKeyDirectoryWithSharedTransportKeyAndData(in: temporary))
        let sealed = try a.keyring.seal("kept across a KEK rotation")
        let publicKey = try a.keyring.publicKeyPEM
        let newFile = temporary + "/kek.new"
        try SecretTestSupport.writeFile(newFile, Data((hexString(try secureRandomBytes(32)) + "\n").utf8), mode: 0o600)
        let (kekID, rewrapped) = try a.keyring.rewrapKeys(withKEKFile: newFile)
        XCTAssertEqual(rewrapped, 2, "the data key and the transport key")
        let kekIDs = try makeConnection().query("SELECT DISTINCT kek_id FROM secret_keys").map { try $0.text("kek_id") }
        XCTAssertEqual(kekIDs, [kekID])
        // Again with the same file: nothing left to do (an interrupted run is repeatable).
        XCTAssertEqual(try a.keyring.rewrapKeys(withKEKFile: newFile).rewrapped, 0)

        // The old file no longer opens them; after the file is replaced, everything does.
        let stale = try host("stale", kekFrom: a.kekPath)
        XCTAssertStorageError(.keyFile, try stale.keyring.open(sealed))
        try KEKLocation(path: a.kekPath, origin: .keyDirectory).replace(withContentsOf: newFile)
        XCTAssertEqual(SecretTestSupport.mode(of: a.kekPath), 0o600)
        let fresh = try host("fresh", kekFrom: a.kekPath)
        XCTAssertEqual(try fresh.keyring.open(sealed), "kept across a KEK rotation")
        XCTAssertEqual(try fresh.keyring.publicKeyPEM, publicKey)
    }

    // MARK: Migration from a key directory

    func testKeyDirectoryOfTheOldCodeIsImportedOnceAndAlike() throws {
        let directory = try SecretTestSupport.makeKeyDirectoryWithSharedTransportKey(in: temporary)
        let old = try SecretKeyring(directory: directory)   // the old code: files only
        let underFirst = try old.seal("under the first key")
        let rotated = try old.rotate()
        let underSecond = try old.seal("under the second key")
        let publicKey = try old.publicKeyPEM

        let a = try host("a", importing: directory)
        XCTAssertEqual(try a.keyring.open(underFirst), "under the first key")
        XCTAssertEqual(try a.keyring.open(underSecond), "under the second key")
        XCTAssertEqual(try a.keyring.currentKeyID(), rotated)
        XCTAssertEqual(try a.keyring.publicKeyPEM, publicKey, "browsers keep the key they have")
        // Another host importing its copy later changes nothing.
        let b = try host("b", kekFrom: a.kekPath, importing: directory)
        XCTAssertEqual(try b.keyring.open(underFirst), "under the first key")
        XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_keys"), 3)
        // The directory is left as it was (the operator deletes it after checking).
        XCTAssertEqual(try old.keyIDs().count, 2)
        XCTAssertEqual(try SecretKeyring(directory: directory).currentKeyID(), rotated)
    }

    func testAWorldReadableOldKeyFileStopsTheImport() throws {
        let directory = try SecretTestSupport.makeKeyDirectoryWithSharedTransportKey(in: temporary)
        let old = try SecretKeyring(directory: directory)
        chmod(directory + "/data-\(try old.currentKeyID()).key", 0o644)
        let a = try host("a", importing: directory)
        let message = XCTAssertStorageError(.keyFile, try a.keyring.seal("x"))
        XCTAssertTrue(message.contains("0644"), message)
        XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_keys"), 0)
    }

    func testConcurrentFirstStartsAgreeOnOneKeySet() throws {
        for importing in [false, true] {
            try setUpWithError()
            let directory = importing ? try SecretTestSupport.makeKeyDirectoryWithSharedTransportKeyAndData(in: temporary) : nil
            // Eight hosts on one KEK path (made by whoever is first) and an empty database.
            let ids = LockedBox([String]())
            let errors = LockedBox([String]())
            let hosts = try (0..<8).map { _ in try host("shared", importing: directory).keyring }
            DispatchQueue.concurrentPerform(iterations: hosts.count) { index in
                do {
                    let id = try hosts[index].currentKeyID()
                    ids.modify { $0.append(id) }
                } catch {
                    errors.modify { $0.append("\(error)") }
                }
            }
            XCTAssertEqual(errors.value, [])
            XCTAssertEqual(Set(ids.value).count, 1, "\(ids.value)")
            XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_keys WHERE kind = 'data'"), 1)
            XCTAssertEqual(try count("SELECT COUNT(*) AS n FROM secret_key_current"), 1)
            if let directory { XCTAssertEqual(ids.value.first, try SecretKeyring(directory: directory).currentKeyID()) }
            let sealed = try hosts[0].seal("agreed")
            XCTAssertEqual(try hosts[7].open(sealed), "agreed")
        }
    }
}

private extension Array where Element == UInt8 {
    func base64() -> String { Data(self).base64EncodedString() }
}

extension SecretTestSupport {
    /// An old-style key directory with the shared transport key and one data key.
    static func makeKeyDirectoryWithSharedTransportKeyAndData(in parent: String) throws -> String {
        let directory = try makeKeyDirectoryWithSharedTransportKey(in: try makeTemporaryDirectory())
        _ = try SecretKeyring(directory: directory)
        return directory
    }
}
