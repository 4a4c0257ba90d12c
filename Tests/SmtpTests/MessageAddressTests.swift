import XCTest
@testable import Smtp

final class MessageAddressTests: XCTestCase {
    // MARK: Internationalized domains (more in InternationalizedNameTests)

    func testIDNDomainBecomesALabels() throws {
        let address = try EmailAddress("info@bücher.example")
        XCTAssertEqual(address.asciiDomain, "xn--bcher-kva.example")
        XCTAssertEqual(address.domain, "bücher.example")
        XCTAssertEqual(address.address, "info@xn--bcher-kva.example")
        XCTAssertEqual(address.unicodeAddress, "info@bücher.example")
        XCTAssertFalse(address.requiresSMTPUTF8, "an IDN domain alone goes in A-labels, no SMTPUTF8 needed")

        let fromALabel = try EmailAddress("info@XN--BCHER-KVA.example")
        XCTAssertEqual(fromALabel.domain, "bücher.example")
        XCTAssertEqual(fromALabel, address)

        XCTAssertEqual(try EmailAddress("a@BÜCHER.example").asciiDomain, "xn--bcher-kva.example", "lower-cased first")
        XCTAssertEqual(try EmailAddress("a@bu\u{0308}cher.example").asciiDomain, "xn--bcher-kva.example", "NFC first")
        XCTAssertEqual(try EmailAddress("a@例え。テスト").asciiDomain, "xn--r8jz45g.xn--zckzah", "ideographic full stop separates labels")
        XCTAssertThrowsError(try EmailAddress("a@xn--zz.example")) // not valid punycode
    }

    // MARK: EmailAddress

    func testAcceptsUsualAndUnusualAddresses() throws {
        let cases: [(String, String)] = [
            ("user@example.com", "user@example.com"),
            ("first.last+tag@Sub.Example.COM", "first.last+tag@sub.example.com"),
            ("!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"),
            ("\"john smith\"@example.com", "\"john smith\"@example.com"),
            ("\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com"),
            ("\"a@b\"@example.com", "\"a@b\"@example.com"),
            ("root@localhost", "root@localhost"),
            ("user@[192.0.2.1]", "user@[192.0.2.1]"),
            ("user@[IPv6:2001:DB8::1]", "user@[IPv6:2001:db8::1]"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(try EmailAddress(input).address, expected, input)
        }
        XCTAssertTrue(try EmailAddress("user@[192.0.2.1]").isAddressLiteral)
    }

    func testUTF8LocalPartNeedsSMTPUTF8() throws {
        let address = try EmailAddress("jörg@example.com")
        XCTAssertTrue(address.requiresSMTPUTF8)
        XCTAssertEqual(address.localPart, "jörg")
        XCTAssertTrue(try EmailAddress("\"jö rg\"@example.com").requiresSMTPUTF8)
    }

    func testRefusesWithReasonsPeopleUnderstand() {
        let cases: [(String, ValidationError.Code, String)] = [
            ("", .empty, "the address is empty"),
            ("user", .missingPart, "the @ sign is missing"),
            ("user@", .missingPart, "the domain part is missing"),
            ("@example.com", .missingPart, "the part before the @ is missing"),
            ("user@example.com\r\nRCPT TO:<x@y>", .lineBreak, "the address contains a line break"),
            ("user@example.com\n", .lineBreak, "the address contains a line break"),
            ("us\0er@example.com", .nul, "the address contains a NUL character"),
            ("us\u{7}er@example.com", .controlCharacter, "the address contains a control character (U+0007)"),
            ("<user@example.com>", .invalidCharacter, "the address contains an angle bracket (< or >); give the bare address, like name@example.com"),
            ("john smith@example.com", .invalidCharacter, "the address contains a space outside quotes"),
            ("a@b@example.com", .invalidSyntax, "the address contains more than one @ (an @ in the local part must be inside quotes)"),
            (".user@example.com", .invalidSyntax, "the part before the @ starts with a dot"),
            ("user.@example.com", .invalidSyntax, "the part before the @ ends with a dot"),
            ("us..er@example.com", .invalidSyntax, "the part before the @ has two dots in a row"),
            ("us,er@example.com", .invalidCharacter, "the part before the @ contains “,”, which is only allowed inside quotes"),
            ("user@example..com", .invalidSyntax, "the domain part has two dots in a row"),
            ("user@example.com.", .invalidSyntax, "the domain part ends with a dot"),
            ("user@-example.com", .invalidSyntax, "the label “-example” of the domain part starts with a hyphen"),
            ("user@exa_mple.com", .invalidCharacter, "the domain part contains an underscore, which host names don't allow"),
            ("user@192.0.2.1", .invalidSyntax, "an IP address as the domain part must be in brackets, like name@[192.0.2.1]"),
            ("user@[300.0.0.1]", .invalidSyntax, "the domain part “[300.0.0.1]” is not a valid address literal (an IPv4 address, or IPv6: followed by an IPv6 address)"),
            ("user@[IPv6:fe80::1%eth0]", .notAllowed, "the IPv6 address literal has a zone id (“%…”), which addresses can't use"),
            ("\"unclosed@example.com", .invalidSyntax, "the quotes of the local part are not closed"),
            ("\"a\"b@example.com", .invalidSyntax, "the closing quote of the local part must be followed by @"),
            ("user@exam ple.com", .invalidCharacter, "the domain part contains a space"),
            ("user@ex☃ample.com", .invalidCharacter, "the domain part contains “☃” (U+2603), which domain names don't allow"),
        ]
        for (input, code, reason) in cases {
            switch EmailAddress.validate(input) {
            case .success(let address): XCTFail("accepted \(input.debugDescription) as \(address)")
            case .failure(let error):
                XCTAssertEqual(error.code, code, input.debugDescription)
                XCTAssertEqual(error.reason, reason, input.debugDescription)
            }
        }
    }

    func testLengthLimits() throws {
        let local64 = String(repeating: "a", count: 64)
        XCTAssertNoThrow(try EmailAddress("\(local64)@example.com"))
        XCTAssertThrowsError(try EmailAddress("\(local64)a@example.com")) { error in
            XCTAssertEqual((error as? ValidationError)?.reason, "the part before the @ is longer than 64 characters")
        }
        let label63 = String(repeating: "b", count: 63)
        XCTAssertNoThrow(try EmailAddress("a@\(label63).com"))
        XCTAssertThrowsError(try EmailAddress("a@\(label63)b.com")) { error in
            XCTAssertEqual((error as? ValidationError)?.code, .tooLong)
        }
        // 64 + 1 + 189 = 254 octets is the most; one more is refused.
        let domain189 = [String](repeating: String(repeating: "c", count: 62), count: 3).joined(separator: ".") + ".xx"  // 62*3+2+3 = 191
        XCTAssertEqual(domain189.utf8.count, 191)
        let domainExact = String(domain189.dropFirst(2))  // 189
        XCTAssertEqual(("\(local64)@\(domainExact)").utf8.count, 254)
        XCTAssertNoThrow(try EmailAddress("\(local64)@\(domainExact)"))
        XCTAssertThrowsError(try EmailAddress("\(local64)@c\(domainExact)")) { error in
            XCTAssertEqual((error as? ValidationError)?.reason, "the address is longer than 254 characters")
        }
        let huge = String(repeating: "x", count: 1 << 20) + "@example.com"
        XCTAssertEqual(EmailAddress.validate(huge).failureCode, .tooLong)
    }

    // MARK: Mailbox

    func testMailboxParsing() throws {
        let plain = try Mailbox("ops@example.com")
        XCTAssertNil(plain.displayName)
        let named = try Mailbox("Ops Team <ops@example.com>")
        XCTAssertEqual(named.displayName, "Ops Team")
        XCTAssertEqual(named.address.address, "ops@example.com")
        let quoted = try Mailbox("\"Doe, \\\"JD\\\" Jane\" <jane@example.com>")
        XCTAssertEqual(quoted.displayName, "Doe, \"JD\" Jane")
        XCTAssertThrowsError(try Mailbox("Evil\r\nBcc: x@y.z <a@example.com>"))
        XCTAssertThrowsError(try Mailbox(displayName: "Line\nbreak", address: Fixture.address("a@example.com"))) { error in
            XCTAssertEqual((error as? ValidationError)?.reason, "the display name contains a line break")
        }
        XCTAssertThrowsError(try Mailbox("Name a@example.com>"))
    }
}

extension Result where Failure == ValidationError {
    var failureCode: ValidationError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}
