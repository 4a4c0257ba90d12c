import Foundation
import XCTest
@testable import Storage

/// The key directory: first-start creation, modes, refusals, and concurrent first starts.
final class SecretKeyDirectoryTests: XCTestCase {
    var temporary = ""

    override func setUpWithError() throws {
        temporary = try SecretTestSupport.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: temporary)
    }

    /// A key directory with all its files, made by a keyring (sharing the RSA key).
    func makeDirectory() throws -> (directory: String, keyID: String) {
        let directory = try SecretTestSupport.makeKeyDirectoryWithSharedTransportKey(in: temporary)
        let keyring = try SecretKeyring(directory: directory)
        return (directory, try keyring.currentKeyID())
    }

    func testFirstStartCreatesEveryFilePrivately() throws {
        // The full first start, RSA key generation included.
        let directory = temporary + "/fresh"
        let keyring = try SecretKeyring(directory: directory + "/")
        XCTAssertEqual(keyring.directory, directory)
        XCTAssertEqual(SecretTestSupport.mode(of: directory), 0o700)
        let id = try keyring.currentKeyID()
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        XCTAssertEqual(names, ["current", "data-\(id).key", "transport-private.pem"])
        for name in names {
            XCTAssertEqual(SecretTestSupport.mode(of: directory + "/" + name), 0o600, name)
        }
        let pem = try String(contentsOfFile: directory + "/transport-private.pem", encoding: .utf8)
        XCTAssertTrue(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        // The CLI reads the private key and agrees it is RSA-3072 matching our public key.
        let text = String(decoding: try SecretTestSupport.shell("\(SecretTestSupport.openssl) pkey -in '\(directory)/transport-private.pem' -pubout"), as: UTF8.self)
        XCTAssertEqual(text, try keyring.publicKeyPEM)
        let key = try String(contentsOfFile: directory + "/data-\(id).key", encoding: .utf8)
        XCTAssertNotNil(key.range(of: "^[0-9a-f]{64}\n$", options: .regularExpression))
        // A second start reads what the first made.
        let again = try SecretKeyring(directory: directory)
        XCTAssertEqual(try again.publicKeyPEM, try keyring.publicKeyPEM)
        XCTAssertEqual(try again.currentKeyID(), id)
    }

    /// Plain CGI opens the keyring with the transport key read on first use: the data
    /// keys are made at once, the RSA key only when the public key (or a decryption)
    /// is asked for, and a broken key file is reported then, by name.
    func testTransportKeyOnFirstUseIsMadeWhenFirstAskedFor() throws {
        let directory = temporary + "/lazy"
        let keyring = try SecretKeyring(directory: directory, loadingTransportKeyAtStart: false)
        let id = try keyring.currentKeyID()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["current", "data-\(id).key"])
        let pem = try keyring.publicKeyPEM
        XCTAssertTrue(pem.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(),
                       ["current", "data-\(id).key", "transport-private.pem"])
        XCTAssertEqual(try SecretKeyring(directory: directory).publicKeyPEM, pem)

        try SecretTestSupport.writeFile(directory + "/transport-private.pem", Data("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8), mode: 0o600)
        let broken = try SecretKeyring(directory: directory, loadingTransportKeyAtStart: false)
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try broken.publicKeyPEM).contains("transport-private.pem holds no readable private key"))
    }

    func testAKeyFileReadableByOthersIsRefusedByName() throws {
        let (directory, id) = try makeDirectory()
        for (name, mode) in [("data-\(id).key", mode_t(0o644)), ("transport-private.pem", 0o640), ("current", 0o604), ("data-\(id).key", 0o620)] {
            let path = directory + "/" + name
            XCTAssertEqual(chmod(path, mode), 0)
            let message = XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory))
            XCTAssertTrue(message.contains(path) && message.contains("mode 0" + String(mode, radix: 8)), message)
            XCTAssertFalse(message.contains("\n"))
            XCTAssertEqual(chmod(path, 0o600), 0)
        }
        XCTAssertNoThrow(try SecretKeyring(directory: directory))
    }

    func testAnOldKeyFileReadableByOthersIsRefusedToo() throws {
        let (directory, old) = try makeDirectory()
        _ = try SecretKeyring(directory: directory).rotate()
        XCTAssertEqual(chmod(directory + "/data-\(old).key", 0o644), 0)
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory)).contains("data-\(old).key"))
    }

    func testADirectoryOpenToGroupIsRefused() throws {
        let (directory, _) = try makeDirectory()
        XCTAssertEqual(chmod(directory, 0o750), 0)
        let message = XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory))
        XCTAssertTrue(message.contains("key directory \(directory) has mode 0750"), message)
    }

    func testAMissingCurrentKeyIsAClearError() throws {
        let (directory, id) = try makeDirectory()
        XCTAssertEqual(unlink(directory + "/data-\(id).key"), 0)
        let message = XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory))
        XCTAssertTrue(message.contains("data-\(id).key is missing"), message)
    }

    func testAKeyFileThatCannotBeReadIsAClearError() throws {
        let (directory, id) = try makeDirectory()
        let path = directory + "/data-\(id).key"
        // Root reads any mode, so make it unreadable by making it a directory.
        XCTAssertEqual(unlink(path), 0)
        XCTAssertEqual(mkdir(path, 0o700), 0)
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory)).contains("\(path) is not a regular file"))
        XCTAssertEqual(rmdir(path), 0)
        // A symbolic link is refused, even to a private file.
        try SecretTestSupport.writeFile(temporary + "/elsewhere", Data((String(repeating: "00", count: 32) + "\n").utf8), mode: 0o600)
        XCTAssertEqual(symlink(temporary + "/elsewhere", path), 0)
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory)).contains("symbolic link"))
        XCTAssertEqual(unlink(path), 0)
        // Garbage where a key should be.
        try SecretTestSupport.writeFile(path, Data("not a key\n".utf8), mode: 0o600)
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory)).contains("does not hold a data key"))
        try SecretTestSupport.writeFile(directory + "/transport-private.pem", Data("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8), mode: 0o600)
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory)).contains("transport-private.pem holds no readable private key"))
        // An encrypted private key fails at once instead of prompting for a passphrase.
        try SecretTestSupport.shell("\(SecretTestSupport.openssl) genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes256 -pass pass:x -out '\(directory)/transport-private.pem' 2>/dev/null && chmod 600 '\(directory)/transport-private.pem'")
        XCTAssertTrue(XCTAssertStorageError(.keyFile, try SecretKeyring(directory: directory)).contains("transport-private.pem holds no readable private key"))
    }

    func testAMissingParentIsAClearError() throws {
        let message = XCTAssertStorageError(.keyFile, try SecretKeyring(directory: temporary + "/no/such/keys"))
        XCTAssertTrue(message.contains("cannot be created"), message)
    }

    func testTwoConcurrentFirstStartsEndWithOneKeyPairAndOneDataKey() throws {
        // Each round: two threads open the same empty directory at the same moment;
        // both generate an RSA key and a data key, and the link(2) race picks one.
        for round in 0..<2 {
            let directory = temporary + "/race-\(round)"
            let start = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            let results = [LockedBox<Result<SecretKeyring, Error>?>(nil), LockedBox(nil)]
            for i in 0..<2 {
                group.enter()
                Thread {
                    start.wait()
                    results[i].value = Result { try SecretKeyring(directory: directory) }
                    group.leave()
                }.start()
            }
            start.signal(); start.signal()
            group.wait()
            let a = try results[0].value!.get(), b = try results[1].value!.get()
            XCTAssertEqual(try a.publicKeyPEM, try b.publicKeyPEM)
            XCTAssertEqual(try a.currentKeyID(), try b.currentKeyID())
            let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            XCTAssertEqual(names, ["current", "data-\(try a.currentKeyID()).key", "transport-private.pem"])
            XCTAssertEqual(try b.open(try a.seal("from a")), "from a")
            XCTAssertEqual(try a.open(try b.seal("from b")), "from b")
            let encrypted = try SecretTestSupport.encryptWithCLI(Data("both".utf8), publicKeyPEM: try a.publicKeyPEM, in: temporary)
            XCTAssertEqual(try b.decryptTransportPlaintext(base64: encrypted), "both")
        }
    }

    func testTwoConcurrentFirstStartsOfTheDataKeyAgree() throws {
        // The data-key half of the race, many times (no RSA generation: shared key).
        for round in 0..<20 {
            let parent = temporary + "/data-race-\(round)"
            XCTAssertEqual(mkdir(parent, 0o700), 0)
            let directory = try SecretTestSupport.makeKeyDirectoryWithSharedTransportKey(in: parent)
            let box = LockedBox([Int: String]())
            DispatchQueue.concurrentPerform(iterations: 4) { i in
                let id = (try? SecretKeyring(directory: directory).currentKeyID()) ?? "failed"
                box.modify { $0[i] = id }
            }
            let ids = box.value
            XCTAssertEqual(ids.count, 4)
            XCTAssertEqual(Set(ids.values).count, 1, "\(ids)")
            XCTAssertNotEqual(ids.values.first, "failed")
            XCTAssertEqual(try SecretKeyring(directory: directory).keyIDs(), [ids.values.first!])
        }
    }

    func testCreateExclusivelyLeavesAnExistingFileAlone() throws {
        // The losing side of the first-start race, made deterministic.
        XCTAssertTrue(try KeyFiles.createExclusively(directory: temporary, name: "k", contents: Array("winner".utf8)))
        XCTAssertFalse(try KeyFiles.createExclusively(directory: temporary, name: "k", contents: Array("loser".utf8)))
        XCTAssertEqual(try KeyFiles.readFile(temporary + "/k"), Array("winner".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temporary), ["k"], "no temporary file is left behind")
        XCTAssertEqual(SecretTestSupport.mode(of: temporary + "/k"), 0o600)
    }

    static let childDirectoryVariable = "SECRET_TESTS_CHILD_KEY_DIRECTORY"
    static let childOutputVariable = "SECRET_TESTS_CHILD_OUTPUT"

    func testTwoProcessesStartingAtOnceShareOneKeyPair() throws {
        // This test binary runs itself twice, each time only `childProcessFirstStart`.
        let executable = ProcessInfo.processInfo.arguments[0]
        let directory = temporary + "/process-race"
        var children: [(Process, String)] = []
        for i in 0..<2 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["StorageTests.SecretKeyDirectoryTests/testChildProcessFirstStart"]
            let output = temporary + "/child-\(i).out"
            var environment = ProcessInfo.processInfo.environment
            environment[Self.childDirectoryVariable] = directory
            environment[Self.childOutputVariable] = output
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            children.append((process, output))
        }
        for (process, _) in children { try process.run() }
        for (process, _) in children { process.waitUntilExit() }
        let outputs = try children.map { process, output in
            XCTAssertEqual(process.terminationStatus, 0)
            return try String(contentsOfFile: output, encoding: .utf8)
        }
        XCTAssertEqual(outputs[0], outputs[1], "both processes serve the same public key and seal with the same data key")
        let keyring = try SecretKeyring(directory: directory)
        XCTAssertEqual(outputs[0], try keyring.currentKeyID() + "\n" + keyring.publicKeyPEM)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).count, 3)
    }

    /// The child side of `testTwoProcessesStartingAtOnceShareOneKeyPair`; does nothing
    /// unless that test started this process.
    func testChildProcessFirstStart() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let directory = environment[Self.childDirectoryVariable], let output = environment[Self.childOutputVariable] else { return }
        let keyring = try SecretKeyring(directory: directory)
        let text = try keyring.currentKeyID() + "\n" + keyring.publicKeyPEM
        try text.write(toFile: output, atomically: true, encoding: .utf8)
    }
}
