import Foundation
import XCTest
@testable import Storage

/// RSA-OAEP/SHA-256 transport: the openssl CLI encrypts to our public key, we decrypt.
final class SecretTransportTests: KeyringTestCase {

    func encrypt(_ plaintext: String) throws -> String {
        try SecretTestSupport.encryptWithCLI(Data(plaintext.utf8), publicKeyPEM: try keyring.publicKeyPEM, in: temporary)
    }

    func testPublicKeyIsSubjectPublicKeyInfoPEMOfAn3072BitKey() throws {
        XCTAssertTrue(try keyring.publicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        XCTAssertTrue(try keyring.publicKeyPEM.hasSuffix("-----END PUBLIC KEY-----\n"))
        let text = try SecretTestSupport.shell("\(SecretTestSupport.openssl) pkey -pubin -noout -text", input: Data(try keyring.publicKeyPEM.utf8))
        XCTAssertTrue(String(decoding: text, as: UTF8.self).contains("3072 bit"))
    }

    func testPasswordsEncryptedByTheCLIDecryptToTheSameText() throws {
        for password in ["S3cret pass", "Grüße, üñí", "emoji 🔑😀 key", "x", String(repeating: "é", count: 159)] {
            XCTAssertEqual(try keyring.decryptTransportPlaintext(base64: try encrypt(password)), password)
        }
    }

    func testLineBreaksInTheBase64AreIgnored() throws {
        let base64 = try encrypt("wrapped")
        var wrapped = ""
        for (i, c) in base64.enumerated() {
            if i > 0 && i % 64 == 0 { wrapped += "\r\n" }
            wrapped.append(c)
        }
        XCTAssertEqual(try keyring.decryptTransportPlaintext(base64: wrapped + "\n"), "wrapped")
    }

    func testTamperedCiphertextFailsAuthentication() throws {
        var bytes = [UInt8](Data(base64Encoded: try encrypt("S3cret pass"))!)
        bytes[100] ^= 0x01
        let message = XCTAssertStorageError(.secretAuthentication, try self.keyring.decryptTransportPlaintext(base64: Data(bytes).base64EncodedString()))
        XCTAssertTrue(message.contains("RSA-OAEP decryption failed"), message)
    }

    func testTruncatedBase64IsMalformed() throws {
        let base64 = try encrypt("S3cret pass")
        let message = XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: String(base64.dropLast(3))))
        XCTAssertTrue(message.contains("truncated base64"), message)
        // Cut at a multiple of 4: valid base64, but too short for the key.
        let short = XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: String(base64.prefix(400))))
        XCTAssertTrue(short.contains("is 300 bytes") && short.contains("exactly 384 bytes"), short)
    }

    func testNotBase64IsMalformed() throws {
        let message = XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: "not*base64!"))
        XCTAssertTrue(message.contains("not base64"), message)
        XCTAssertFalse(message.contains("not*base64"), "the input must not be echoed")
        XCTAssertTrue(XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: "")).contains("empty"))
    }

    func testCiphertextForAnotherKeyOfTheSameSizeFailsAuthentication() throws {
        let other = try SecretTestSupport.publicKeyFromCLI(bits: 3072, in: temporary)
        let base64 = try SecretTestSupport.encryptWithCLI(Data("S3cret pass".utf8), publicKeyPEM: other, in: temporary)
        XCTAssertStorageError(.secretAuthentication, try self.keyring.decryptTransportPlaintext(base64: base64))
    }

    func testCiphertextForAKeyOfAnotherSizeIsTheWrongLength() throws {
        let other = try SecretTestSupport.publicKeyFromCLI(bits: 2048, in: temporary)
        let base64 = try SecretTestSupport.encryptWithCLI(Data("S3cret pass".utf8), publicKeyPEM: other, in: temporary)
        let message = XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: base64))
        XCTAssertTrue(message.contains("256 bytes") && message.contains("RSA-3072"), message)
    }

    func testOAEPWithSHA1FailsAuthentication() throws {
        // The OpenSSL default (SHA-1 for OAEP and MGF1) is not what WebCrypto sends here.
        let base64 = try SecretTestSupport.encryptWithCLI(Data("S3cret pass".utf8), publicKeyPEM: try keyring.publicKeyPEM,
                                                          in: temporary, oaepDigest: "sha1", mgf1Digest: "sha1")
        XCTAssertStorageError(.secretAuthentication, try self.keyring.decryptTransportPlaintext(base64: base64))
        // SHA-256 for OAEP but SHA-1 for MGF1 is also refused.
        let mixed = try SecretTestSupport.encryptWithCLI(Data("S3cret pass".utf8), publicKeyPEM: try keyring.publicKeyPEM,
                                                         in: temporary, oaepDigest: "sha256", mgf1Digest: "sha1")
        XCTAssertStorageError(.secretAuthentication, try self.keyring.decryptTransportPlaintext(base64: mixed))
    }

    func testPlaintextThatIsNotUTF8OrHasNULIsMalformed() throws {
        let notUTF8 = try SecretTestSupport.encryptWithCLI(Data([0x61, 0xFF, 0xFE]), publicKeyPEM: try keyring.publicKeyPEM, in: temporary)
        XCTAssertTrue(XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: notUTF8)).contains("UTF-8"))
        let nul = try SecretTestSupport.encryptWithCLI(Data([0x61, 0x00, 0x62]), publicKeyPEM: try keyring.publicKeyPEM, in: temporary)
        XCTAssertTrue(XCTAssertStorageError(.secretMalformed, try self.keyring.decryptTransportPlaintext(base64: nul)).contains("NUL"))
    }

    func testTheLongestPasswordTheKeyCarriesDecrypts() throws {
        // RSA-3072 with OAEP/SHA-256: 384 - 2*32 - 2 = 318 bytes.
        let longest = String(repeating: "p", count: 318)
        XCTAssertEqual(try keyring.decryptTransportPlaintext(base64: try encrypt(longest)), longest)
    }

    // MARK: The framing: {"nonce":…,"secret":…}

    func testFramedPlaintextOpensToNonceAndSecret() throws {
        // As the README's printf writes it, with a quote and a backslash escaped.
        let opened = try keyring.openTransportSecret(base64: try encrypt(#"{"nonce":"abcdefghijklmnopqrstu-","secret":"p\"w\\ü"}"#))
        XCTAssertEqual(opened.nonce, "abcdefghijklmnopqrstu-")
        XCTAssertEqual(opened.secret, #"p"w\ü"#)
        // What JSON.stringify writes (any member order, whitespace allowed).
        let spaced = try keyring.openTransportSecret(base64: try encrypt(#"{ "secret": "s", "nonce": "ABCDEFGHIJKLMNOPQRSTU_" }"#))
        XCTAssertEqual(spaced.secret, "s")
    }

    func testPlaintextWithoutTheFramingIsRefused() throws {
        let cases = [
            "just the password",
            #"{"secret":"no nonce"}"#,
            #"{"nonce":"abcdefghijklmnopqrstuv","secret":"x","extra":"1"}"#,
            #"{"nonce":"short","secret":"x"}"#,
            #"{"nonce":"abcdefghijklmnopqrstu=","secret":"x"}"#,
            #"{"nonce":"abcdefghijklmnopqrstuv","secret":""}"#,
            #"{"nonce":"abcdefghijklmnopqrstuv","secret":"a\u0000b"}"#,
            #"{"nonce":"abcdefghijklmnopqrstuv","secret":7}"#,
            #"["abcdefghijklmnopqrstuv","x"]"#,
        ]
        for plaintext in cases {
            let message = XCTAssertStorageError(.secretMalformed, try self.keyring.openTransportSecret(base64: try self.encrypt(plaintext)))
            XCTAssertFalse(message.isEmpty, plaintext)
            XCTAssertFalse(message.contains("no nonce") || message.contains("password\"") , "the message must not echo the secret: \(message)")
        }
    }
}
