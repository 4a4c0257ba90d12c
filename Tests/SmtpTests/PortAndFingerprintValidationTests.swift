import XCTest
@testable import Smtp

final class PortAndFingerprintValidationTests: XCTestCase {
    func testPorts() {
        for (text, value) in [("1", 1), ("25", 25), ("465", 465), ("587", 587), ("2525", 2525), ("65535", 65535)] {
            XCTAssertEqual(try PortNumber.validate(text).get().value, UInt16(value), text)
        }
        XCTAssertEqual(try PortNumber(parsing: "587").description, "587")
        XCTAssertEqual(PortNumber(0), nil)
        XCTAssertEqual(PortNumber(25)?.value, 25)
    }

    func testBadPorts() {
        let cases: [(String, ValidationError.Code, String)] = [
            ("", .empty, "the port is empty"),
            ("0", .outOfRange, "the port must be a number between 1 and 65535"),
            ("65536", .outOfRange, "the port must be a number between 1 and 65535"),
            ("99999", .outOfRange, "the port must be a number between 1 and 65535"),
            ("1000000", .outOfRange, "the port must be a number between 1 and 65535"),
            ("025", .invalidSyntax, "the port has a leading zero; write it without (e.g. 25)"),
            ("00", .invalidSyntax, "the port has a leading zero; write it without (e.g. 25)"),
            ("+25", .invalidCharacter, "the port must be a number between 1 and 65535, written with the digits 0–9 only"),
            ("-1", .invalidCharacter, "the port must be a number between 1 and 65535, written with the digits 0–9 only"),
            (" 25", .invalidCharacter, "the port contains a space"),
            ("25 ", .invalidCharacter, "the port contains a space"),
            ("2 5", .invalidCharacter, "the port contains a space"),
            ("25\r\n", .lineBreak, "the port contains a line break"),
            ("25\0", .nul, "the port contains a NUL character"),
            ("٢٥", .invalidCharacter, "the port must be a number between 1 and 65535, written with the digits 0–9 only"),
            ("0x19", .invalidCharacter, "the port must be a number between 1 and 65535, written with the digits 0–9 only"),
            ("25.0", .invalidCharacter, "the port must be a number between 1 and 65535, written with the digits 0–9 only"),
            ("smtp", .invalidCharacter, "the port must be a number between 1 and 65535, written with the digits 0–9 only"),
            ("25\n" + String(repeating: "9", count: 1 << 20), .lineBreak, "the port contains a line break"),
            (String(repeating: "9", count: 1 << 20), .outOfRange, "the port must be a number between 1 and 65535"),
        ]
        for (text, code, reason) in cases {
            switch PortNumber.validate(text) {
            case .success(let port): XCTFail("accepted \(text.prefix(20).debugDescription) as \(port)")
            case .failure(let error):
                XCTAssertEqual(error.code, code, text.prefix(20).debugDescription)
                XCTAssertEqual(error.reason, reason, text.prefix(20).debugDescription)
            }
        }
    }

    static let hex = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

    func testFingerprintForms() throws {
        let colon = stride(from: 0, to: 64, by: 2).map { i -> String in
            let start = Self.hex.index(Self.hex.startIndex, offsetBy: i)
            return String(Self.hex[start..<Self.hex.index(start, offsetBy: 2)]).uppercased()
        }.joined(separator: ":")
        for text in [Self.hex, Self.hex.uppercased(), colon, colon.lowercased(), "  \(colon)\t",
                     "sha256 Fingerprint=\(colon)", "SHA256 Fingerprint=\(colon)", "sha256:\(Self.hex)"] {
            let pin = try SHA256Fingerprint.validate(text).get()
            XCTAssertEqual(pin.hex, Self.hex, text)
            XCTAssertEqual(pin.colonSeparated, colon)
        }
        XCTAssertEqual(SHA256Fingerprint(bytes: [UInt8](repeating: 0xAB, count: 32))?.hex, String(repeating: "ab", count: 32))
        XCTAssertNil(SHA256Fingerprint(bytes: [1, 2, 3]))
    }

    func testBadFingerprints() {
        let short = String(Self.hex.dropLast(2))
        let cases: [(String, ValidationError.Code)] = [
            ("", .empty),
            (short, .invalidSyntax),
            (Self.hex + "00", .invalidSyntax),
            (String(Self.hex.dropLast()) + "g", .invalidCharacter),
            (Self.hex + "\n", .lineBreak),
            ("\r\n" + Self.hex, .lineBreak),
            (String(Self.hex.prefix(10)) + "\0" + String(Self.hex.dropFirst(11)), .nul),
            (":" + Self.hex, .invalidSyntax),
            ("5E:88:48", .invalidSyntax),
            ("5E8:84898" + String(Self.hex.dropFirst(8)), .invalidSyntax),
            (Self.hex.prefix(32) + " " + Self.hex.dropFirst(32), .invalidCharacter),
            (String(repeating: "a", count: 1 << 20), .tooLong),
            (String(repeating: "é", count: 32), .invalidCharacter),
        ]
        for (text, code) in cases {
            switch SHA256Fingerprint.validate(String(text)) {
            case .success(let pin): XCTFail("accepted \(text.prefix(40).debugDescription) as \(pin)")
            case .failure(let error):
                XCTAssertEqual(error.code, code, "\(text.prefix(40).debugDescription): \(error.reason)")
                XCTAssertTrue(error.reason.hasPrefix("the fingerprint"), error.reason)
            }
        }
        XCTAssertEqual(SHA256Fingerprint.validate(short).failureCode, .invalidSyntax)
        if case .failure(let error) = SHA256Fingerprint.validate(short) {
            XCTAssertEqual(error.reason, "the fingerprint has 62 hex digits, not 64; a SHA-256 fingerprint is 64 hexadecimal digits, optionally in pairs separated by colons")
        }
    }
}

final class EmailAddressValidationTests: XCTestCase {
    func testTheFormsValidatorIsTheAddressParser() {
        XCTAssertEqual(try EmailAddress.validate("Admin@Example.COM").get().address, "Admin@example.com", "the local part keeps its case")
        XCTAssertEqual(EmailAddress.validate("admin@").failureCode, .missingPart)
        XCTAssertEqual(EmailAddress.validate("admin@example.com\r\n").failureCode, .lineBreak)
        XCTAssertEqual(EmailAddress.validate("admin@example.com\0").failureCode, .nul)
        XCTAssertEqual(EmailAddress.validate(String(repeating: "a", count: 1 << 20)).failureCode, .tooLong)
        XCTAssertEqual(EmailAddress.validate("a@..").failureCode, .invalidSyntax)
        XCTAssertEqual(EmailAddress.validate("a@-leading.example").failureCode, .invalidSyntax)
        XCTAssertEqual(EmailAddress.validate("a@example.com.").failureCode, .invalidSyntax, "a trailing dot is not part of an addr-spec")
        XCTAssertEqual(try EmailAddress.validate("a@bücher.example").get().asciiDomain, "xn--bcher-kva.example")
    }
}
