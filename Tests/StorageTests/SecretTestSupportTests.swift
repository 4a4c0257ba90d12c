// Helpers shared by the Secret*Tests: temporary key directories, and the real
// `openssl` command line as the other side of every exchange (no fakes).
import Foundation
import Synchronization
import XCTest
@testable import Storage

enum SecretTestSupport {
    static let openssl = "/usr/bin/openssl"

    /// One RSA-3072 transport key, generated once by `SecretKeyring` itself, copied into
    /// the directories of tests that are not about key generation (keygen takes a
    /// second or more on a shared machine).
    static let sharedTransportKeyPEM: Data = {
        let directory = try! makeTemporaryDirectory()
        let keyring = try! SecretKeyring(directory: directory + "/keys")
        let pem = try! Data(contentsOf: URL(fileURLWithPath: keyring.directory + "/transport-private.pem"))
        try? FileManager.default.removeItem(atPath: directory)
        return pem
    }()

    /// A new empty directory under the system's temporary directory, mode 0700.
    static func makeTemporaryDirectory() throws -> String {
        let base = NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array((base + "secret-tests-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw StorageError(.configuration, "mkdtemp failed: errno \(errno)")
        }
        return String(cString: made)
    }

    /// A key directory (mode 0700) holding only the shared transport key (0600), so a
    /// keyring opened on it generates data keys but no RSA key.
    static func makeKeyDirectoryWithSharedTransportKey(in parent: String) throws -> String {
        let directory = parent + "/keys"
        XCTAssertEqual(mkdir(directory, 0o700), 0)
        try writeFile(directory + "/transport-private.pem", sharedTransportKeyPEM, mode: 0o600)
        return directory
    }

    static func writeFile(_ path: String, _ contents: Data, mode: mode_t) throws {
        guard FileManager.default.createFile(atPath: path, contents: contents) else {
            throw StorageError(.configuration, "cannot write \(path)")
        }
        XCTAssertEqual(chmod(path, mode), 0)
    }

    static func mode(of path: String) -> mode_t {
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0, path)
        return info.st_mode & 0o7777
    }

    struct ProcessResult {
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    /// Runs an executable with arguments and `input` on stdin; collects its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: Data = Data()) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Read stderr on another thread so neither pipe can fill up and block the child.
        let errorData = LockedBox(Data())
        let errorDone = DispatchSemaphore(value: 0)
        Thread {
            errorData.value = stderr.fileHandleForReading.readDataToEndOfFile()
            errorDone.signal()
        }.start()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errorDone.wait()
        return ProcessResult(status: process.terminationStatus, stdout: output, stderr: String(decoding: errorData.value, as: UTF8.self))
    }

    /// Runs a shell pipeline (`/bin/sh -c`), failing the test on a non-zero exit.
    @discardableResult
    static func shell(_ script: String, input: Data = Data(), file: StaticString = #filePath, line: UInt = #line) throws -> Data {
        let result = try run("/bin/sh", ["-c", script], input: input)
        XCTAssertEqual(result.status, 0, "\(script): \(result.stderr)", file: file, line: line)
        return result.stdout
    }

    /// Encrypts `plaintext` to the public key PEM exactly as the brief's reference
    /// command does: `openssl pkeyutl -encrypt … rsa_oaep_md:sha256 … | base64 -w0`.
    static func encryptWithCLI(_ plaintext: Data, publicKeyPEM: String, in directory: String,
                               oaepDigest: String = "sha256", mgf1Digest: String = "sha256") throws -> String {
        let pub = directory + "/pub.pem"
        try writeFile(pub, Data(publicKeyPEM.utf8), mode: 0o644)
        let output = try shell(
            "\(openssl) pkeyutl -encrypt -pubin -inkey '\(pub)' -pkeyopt rsa_padding_mode:oaep"
                + " -pkeyopt rsa_oaep_md:\(oaepDigest) -pkeyopt rsa_mgf1_md:\(mgf1Digest) | base64 -w0",
            input: plaintext)
        return String(decoding: output, as: UTF8.self)
    }

    /// A public key PEM of a fresh RSA key made by the CLI (for "another key" cases).
    static func publicKeyFromCLI(bits: Int, in directory: String) throws -> String {
        let key = directory + "/other-\(bits).pem"
        try shell("\(openssl) genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:\(bits) -out '\(key)' 2>/dev/null")
        return String(decoding: try shell("\(openssl) pkey -in '\(key)' -pubout"), as: UTF8.self)
    }
}

/// A value shared between threads in a test, behind a lock.
final class LockedBox<T: Sendable>: Sendable {
    private let stored: Mutex<T>
    init(_ value: T) { stored = Mutex(value) }
    var value: T {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
    /// Changes the value in place, atomically.
    func modify(_ change: (inout T) -> Void) {
        stored.withLock { change(&$0) }
    }
}

/// Asserts that `body` throws a `StorageError` with `code`, and returns its message.
@discardableResult
func XCTAssertStorageError<T>(_ code: StorageError.Code, _ body: @autoclosure () throws -> T,
                               file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
        let value = try body()
        XCTFail("expected StorageError \(code), got a value: \(value)", file: file, line: line)
    } catch let error as StorageError {
        XCTAssertEqual(error.code, code, "message: \(error.message)", file: file, line: line)
        return error.message
    } catch {
        XCTFail("expected StorageError \(code), got \(error)", file: file, line: line)
    }
    return ""
}

/// A test case with a fresh key directory (sharing one transport key pair, which
/// is slow to generate) and its keyring, removed after each test.
class KeyringTestCase: XCTestCase {
    var temporary = ""
    var keyring: SecretKeyring!

    override func setUpWithError() throws {
        temporary = try SecretTestSupport.makeTemporaryDirectory()
        keyring = try SecretKeyring(directory: SecretTestSupport.makeKeyDirectoryWithSharedTransportKey(in: temporary))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: temporary)
    }
}
