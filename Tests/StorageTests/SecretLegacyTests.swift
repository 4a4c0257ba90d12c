import Foundation
import XCTest
@testable import Storage

/// Values of the original system (`openssl enc -aes256 -md sha1 -a`), made by the CLI.
final class SecretLegacyTests: XCTestCase {
    var temporary = ""

    override func setUpWithError() throws {
        temporary = try SecretTestSupport.makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: temporary)
    }

    /// Writes a legacy key file (0600) with exactly `contents`; returns its path.
    func legacyKeyFile(_ contents: String, name: String = "legacy.key") throws -> String {
        let path = temporary + "/" + name
        try SecretTestSupport.writeFile(path, Data(contents.utf8), mode: 0o600)
        return path
    }

    /// `echo -n PASSWORD | openssl enc -aes256 -md sha1 -a -salt -pass file:KEYFILE`
    func encryptLegacy(_ password: String, keyFile: String) throws -> String {
        let output = try SecretTestSupport.shell(
            "\(SecretTestSupport.openssl) enc -aes256 -md sha1 -a -salt -pass 'file:\(keyFile)' 2>/dev/null",
            input: Data(password.utf8))
        return String(decoding: output, as: UTF8.self)
    }

    func testAValueFromOpensslEncOpens() throws {
        let keyFile = try legacyKeyFile("the old passphrase\n")
        let stored = try encryptLegacy("S3cret pass", keyFile: keyFile)
        XCTAssertTrue(stored.hasPrefix("U2FsdGVkX1"))
        XCTAssertTrue(LegacySecret.isLegacy(stored))
        let passphrase = try LegacySecret.passphrase(fromKeyFile: keyFile)
        XCTAssertEqual(passphrase, "the old passphrase")
        XCTAssertEqual(try LegacySecret.open(stored, passphrase: passphrase), "S3cret pass")
    }

    func testALongPasswordWrappedOverSeveralLinesOpens() throws {
        let keyFile = try legacyKeyFile("pp\n")
        let password = "Grüße 🔑 " + String(repeating: "a long password ", count: 12)
        let stored = try encryptLegacy(password, keyFile: keyFile)
        XCTAssertGreaterThan(stored.split(separator: "\n").count, 2, "openssl wraps base64 at 64 characters")
        XCTAssertEqual(try LegacySecret.open(stored, passphrase: "pp"), password)
    }

    func testThePassphraseIsTheFirstLineAsOpensslReadsIt() throws {
        // Only the first line counts; the rest of the file is ignored by openssl.
        let multiLine = try legacyKeyFile("first line\nsecond line\n", name: "multi.key")
        let stored = try encryptLegacy("pw1", keyFile: multiLine)
        XCTAssertEqual(try LegacySecret.passphrase(fromKeyFile: multiLine), "first line")
        XCTAssertEqual(try LegacySecret.open(stored, passphrase: LegacySecret.passphrase(fromKeyFile: multiLine)), "pw1")
        // No trailing newline at all.
        let bare = try legacyKeyFile("bare", name: "bare.key")
        XCTAssertEqual(try LegacySecret.open(try encryptLegacy("pw2", keyFile: bare), passphrase: LegacySecret.passphrase(fromKeyFile: bare)), "pw2")
        // A CRLF file: openssl keeps the carriage return, and so do we.
        let crlf = try legacyKeyFile("windows\r\n", name: "crlf.key")
        XCTAssertEqual(try LegacySecret.passphrase(fromKeyFile: crlf), "windows\r")
        XCTAssertEqual(try LegacySecret.open(try encryptLegacy("pw3", keyFile: crlf), passphrase: LegacySecret.passphrase(fromKeyFile: crlf)), "pw3")
        // A first line longer than openssl's 1023-byte buffer is cut there.
        let long = try legacyKeyFile(String(repeating: "k", count: 1500) + "\n", name: "long.key")
        XCTAssertEqual(try LegacySecret.passphrase(fromKeyFile: long).utf8.count, 1023)
        XCTAssertEqual(try LegacySecret.open(try encryptLegacy("pw4", keyFile: long), passphrase: LegacySecret.passphrase(fromKeyFile: long)), "pw4")
    }

    func testAWrongPassphraseFailsAuthentication() throws {
        let stored = try encryptLegacy("S3cret pass", keyFile: try legacyKeyFile("right\n"))
        XCTAssertStorageError(.secretAuthentication, try LegacySecret.open(stored, passphrase: "wrong"))
    }

    func testMalformedLegacyValues() throws {
        let stored = try encryptLegacy("S3cret pass", keyFile: try legacyKeyFile("pp\n"))
        XCTAssertStorageError(.secretMalformed, try LegacySecret.open("U2FsdGVkX1*", passphrase: "pp"))
        XCTAssertStorageError(.secretMalformed, try LegacySecret.open(Data("Salted__12345678".utf8).base64EncodedString(), passphrase: "pp"))
        XCTAssertStorageError(.secretMalformed, try LegacySecret.open(Data("Not salted at all".utf8).base64EncodedString(), passphrase: "pp"))
        let bytes = [UInt8](Data(base64Encoded: stored.replacingOccurrences(of: "\n", with: ""))!)
        XCTAssertStorageError(.secretMalformed, try LegacySecret.open(Data(bytes.dropLast(1)).base64EncodedString(), passphrase: "pp"))
        XCTAssertFalse(LegacySecret.isLegacy("v1:00000000:AAAA"))
        XCTAssertFalse(LegacySecret.isLegacy(""))
    }

    func testALegacyKeyFileReadableByOthersIsRefused() throws {
        let keyFile = try legacyKeyFile("pp\n")
        XCTAssertEqual(chmod(keyFile, 0o644), 0)
        let message = XCTAssertStorageError(.keyFile, try LegacySecret.passphrase(fromKeyFile: keyFile))
        XCTAssertTrue(message.contains(keyFile) && message.contains("0644"), message)
        XCTAssertStorageError(.keyFile, try LegacySecret.passphrase(fromKeyFile: self.temporary + "/missing.key"))
        XCTAssertStorageError(.configuration, try LegacySecret.passphrase(fromKeyFile: try self.legacyKeyFile("\nsecond\n", name: "empty.key")))
    }
}

/// `SecretOpener`: one entry point for "", v1 and legacy values.
final class SecretOpenerTests: KeyringTestCase {

    func legacyValue(_ password: String, passphrase: String) throws -> String {
        let keyFile = temporary + "/legacy.key"
        try SecretTestSupport.writeFile(keyFile, Data((passphrase + "\n").utf8), mode: 0o600)
        let output = try SecretTestSupport.shell("\(SecretTestSupport.openssl) enc -aes256 -md sha1 -a -salt -pass 'file:\(keyFile)' 2>/dev/null",
                                                 input: Data(password.utf8))
        return String(decoding: output, as: UTF8.self)
    }

    func testEveryFormatOpens() throws {
        let opener = SecretOpener(keyring: keyring, legacyPassphrase: "old")
        XCTAssertEqual(try opener.open(""), "")
        XCTAssertEqual(try opener.open(try keyring.seal("v1 value")), "v1 value")
        XCTAssertEqual(try opener.open(try legacyValue("legacy value", passphrase: "old")), "legacy value")
        XCTAssertStorageError(.secretMalformed, try opener.open("plain text"))
        XCTAssertEqual(SecretOpener.format(of: ""), .empty)
        XCTAssertEqual(SecretOpener.format(of: "v1:x"), .sealed)
        XCTAssertEqual(SecretOpener.format(of: "U2FsdGVkX1abc"), .legacy)
        XCTAssertEqual(SecretOpener.format(of: "hunter2"), .unknown)
    }

    func testALegacyValueWithoutALegacyKeyIsAConfigurationError() throws {
        let opener = SecretOpener(keyring: keyring)
        let message = XCTAssertStorageError(.configuration, try opener.open(try self.legacyValue("x", passphrase: "old")))
        XCTAssertTrue(message.contains("legacy key file"), message)
        XCTAssertEqual(try opener.open(try keyring.seal("still fine")), "still fine")
    }

    func testResealTurnsLegacyValuesIntoV1UnderTheCurrentKey() throws {
        let opener = SecretOpener(keyring: keyring, legacyPassphrase: "old")
        let resealed = try opener.reseal(try legacyValue("migrated", passphrase: "old"))
        XCTAssertEqual(try SealedSecret(parsing: resealed).keyID, try keyring.currentKeyID())
        XCTAssertEqual(try keyring.open(resealed), "migrated")
        XCTAssertEqual(try opener.reseal(""), "")
        let old = try keyring.seal("moved")
        let new = try keyring.rotate()
        XCTAssertEqual(try SealedSecret(parsing: try opener.reseal(old)).keyID, new)
    }
}
