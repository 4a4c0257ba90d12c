import XCTest
@testable import Smtp

final class HostNameValidationTests: XCTestCase {
    private func accepted(_ input: String, file: StaticString = #filePath, line: UInt = #line) -> HostName? {
        switch HostName.validate(input) {
        case .success(let host): return host
        case .failure(let error):
            XCTFail("refused \(input.debugDescription): \(error.reason)", file: file, line: line)
            return nil
        }
    }

    private func refused(_ input: String, file: StaticString = #filePath, line: UInt = #line) -> ValidationError? {
        switch HostName.validate(input) {
        case .success(let host):
            XCTFail("accepted \(input.prefix(80).debugDescription) as \(host)", file: file, line: line)
            return nil
        case .failure(let error): return error
        }
    }

    func testDomainNames() {
        XCTAssertEqual(accepted("smtp.example.com")?.kind, .domainName)
        XCTAssertEqual(accepted("SMTP.Example.COM")?.ascii, "smtp.example.com")
        XCTAssertEqual(accepted("localhost")?.ascii, "localhost", "single labels are fine on private networks")
        XCTAssertEqual(accepted("mail-1.a1.example")?.ascii, "mail-1.a1.example")
        XCTAssertEqual(accepted("1.example.com")?.kind, .domainName, "digits are fine except as the whole last label")
    }

    func testTrailingDotIsAcceptedAndDropped() {
        let host = accepted("example.com.")
        XCTAssertEqual(host?.ascii, "example.com")
        XCTAssertEqual(host?.kind, .domainName)
        XCTAssertEqual(refused(".")?.reason, "the host name starts with a dot")
        XCTAssertEqual(refused("example.com..")?.reason, "the host name has two dots in a row")
    }

    func testInternationalizedNamesBecomePunycode() {
        let host = accepted("bücher.example")
        XCTAssertEqual(host?.ascii, "xn--bcher-kva.example")
        XCTAssertEqual(host?.unicode, "bücher.example")
        XCTAssertEqual(host?.kind, .domainName)
        XCTAssertEqual(accepted("xn--bcher-kva.example")?.unicode, "bücher.example")
        XCTAssertEqual(accepted("Bücher.Example.")?.ascii, "xn--bcher-kva.example")
        XCTAssertEqual(accepted("例え.テスト")?.ascii, "xn--r8jz45g.xn--zckzah")
        // 60 "ü" encode to more than 63 octets.
        XCTAssertEqual(refused(String(repeating: "ü", count: 60) + ".example")?.code, .tooLong)
        XCTAssertEqual(refused("mail.☃.example")?.code, .invalidCharacter)
    }

    func testIPv4() {
        let host = accepted("192.0.2.10")
        XCTAssertEqual(host?.kind, .ipv4)
        XCTAssertEqual(host?.ascii, "192.0.2.10")
        XCTAssertEqual(accepted("127.0.0.1")?.kind, .ipv4)
        for bad in ["256.1.1.1", "1.2.3", "127.1", "010.0.0.1", "1.2.3.4.5", "1.2.3.999", "0x7f.0.0.1"] {
            let error = refused(bad)
            XCTAssertEqual(error?.code, .invalidSyntax, bad)
        }
        XCTAssertEqual(refused("1.2.3.256")?.reason, "“1.2.3.256” is not a valid IPv4 address (four numbers 0–255 separated by dots, without leading zeros)")
        XCTAssertEqual(refused("1.2.3")?.reason, "“1.2.3” is not written as a dotted quad: some programs read it as 1.2.0.3, others refuse it; write IPv4 addresses as a dotted quad (four numbers 0–255 separated by dots, without leading zeros), e.g. 1.2.0.3")
    }

    func testIPv6WithOrWithoutBrackets() {
        let host = accepted("2001:DB8:0:0:0:0:0:1")
        XCTAssertEqual(host?.kind, .ipv6)
        XCTAssertEqual(host?.ascii, "2001:db8::1")
        XCTAssertEqual(host?.bracketed, "[2001:db8::1]")
        XCTAssertEqual(accepted("[::1]")?.ascii, "::1")
        XCTAssertEqual(accepted("::ffff:192.0.2.1")?.kind, .ipv6)
        XCTAssertEqual(refused("fe80::1%eth0")?.code, .notAllowed)
        XCTAssertEqual(refused("[fe80::1%25eth0]")?.code, .notAllowed)
        XCTAssertEqual(refused("[::1")?.reason, "the brackets around the IPv6 address don't match")
        XCTAssertEqual(refused("::1]")?.code, .invalidSyntax)
        XCTAssertEqual(refused("[]")?.code, .invalidSyntax)
        XCTAssertEqual(refused("1:2:3:4:5:6:7:8:9")?.code, .invalidSyntax)
        XCTAssertEqual(refused("[192.0.2.1]")?.code, .invalidSyntax, "brackets are for IPv6 only")
        XCTAssertEqual(refused("example.com:25")?.reason, "“example.com:25” is not a valid IPv6 address", "the port has its own field")
    }

    func testHostileInput() {
        XCTAssertEqual(refused("")?.reason, "the host name is empty")
        XCTAssertEqual(refused("mail.example.com\0.evil")?.reason, "the host name contains a NUL character")
        XCTAssertEqual(refused("mail.example.com\r\nQUIT")?.reason, "the host name contains a line break")
        XCTAssertEqual(refused("mail\n")?.code, .lineBreak)
        XCTAssertEqual(refused("mail\u{1B}[31m")?.code, .controlCharacter)
        XCTAssertEqual(refused(String(repeating: "a", count: 1 << 20))?.code, .tooLong)
        XCTAssertEqual(refused(String(repeating: "a.", count: 1 << 19))?.code, .tooLong)
        XCTAssertEqual(refused("..")?.reason, "the host name starts with a dot")
        XCTAssertEqual(refused("a..b")?.reason, "the host name has two dots in a row")
        XCTAssertEqual(refused("-leading.example.com")?.reason, "the label “-leading” of the host name starts with a hyphen")
        XCTAssertEqual(refused("trailing-.example.com")?.reason, "the label “trailing-” of the host name ends with a hyphen")
        XCTAssertEqual(refused(" example.com")?.reason, "the host name starts or ends with a space")
        XCTAssertEqual(refused("exa mple.com")?.reason, "the host name contains a space")
        XCTAssertEqual(refused("under_score.example.com")?.code, .invalidCharacter)
        XCTAssertEqual(refused("smtp://example.com")?.code, .invalidSyntax)
        XCTAssertEqual(refused("user@example.com")?.code, .invalidCharacter)
        XCTAssertEqual(refused("example.com/path")?.code, .invalidCharacter)
    }

    func testLengthLimits() {
        let label63 = String(repeating: "a", count: 63)
        XCTAssertNotNil(accepted("\(label63).example"))
        XCTAssertEqual(refused("\(label63)a.example")?.code, .tooLong)
        // 4 labels of 63 + 3 dots = 255 > 253; 253 exactly passes, with or without a trailing dot.
        let name253 = [label63, label63, label63, String(repeating: "b", count: 61)].joined(separator: ".")
        XCTAssertEqual(name253.count, 253)
        XCTAssertNotNil(accepted(name253))
        XCTAssertNotNil(accepted(name253 + "."))
        XCTAssertEqual(refused(name253 + "b")?.code, .tooLong)
    }

    /// What `inet_aton` (and so getaddrinfo) reads as an address is never a name:
    /// "0x7f000001" was saved as a name and connected to 127.0.0.1.
    func testLegacyIPv4SpellingsAreRefusedNamingTheDottedQuad() {
        for (typed, quad) in [("0x7f000001", "127.0.0.1"), ("0X7F000001", "127.0.0.1"), ("0x7f000001.", "127.0.0.1"),
                              ("127.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
                              ("0x7f.1", "127.0.0.1"), ("010.0.0.1", "8.0.0.1"), ("0xa9fea9fe", "169.254.169.254"), ("0xa", "0.0.0.10")] {
            let error = refused(typed)
            XCTAssertEqual(error?.code, .invalidSyntax, typed)
            XCTAssertTrue(error?.reason.contains("some programs read it as \(quad)") ?? false, "\(typed): \(error?.reason ?? "")")
            XCTAssertTrue(error?.reason.contains("write IPv4 addresses as a dotted quad") ?? false, "\(typed): \(error?.reason ?? "")")
        }
        // Hex-looking names that are not addresses stay names.
        for name in ["0xdeadbeef.example", "deadbeef", "0x", "x7f000001", "0xg1"] {
            XCTAssertEqual(accepted(name)?.kind, .domainName, name)
        }
    }

    /// Full-width and other compatibility forms are mapped (UTS #46) before the host
    /// is classified: "ａｂｃ.example" was saved as typed, then refused at check time.
    func testFullWidthIsMappedBeforeClassifying() {
        XCTAssertEqual(accepted("ａｂｃ.example")?.ascii, "abc.example")
        XCTAssertEqual(accepted("ＭＡＩＬ．Ｅｘａｍｐｌｅ。ｃｏｍ")?.ascii, "mail.example.com")
        let quad = accepted("１２７.０.０.１")
        XCTAssertEqual(quad?.kind, .ipv4)
        XCTAssertEqual(quad?.ascii, "127.0.0.1")
        XCTAssertEqual(accepted("ｂüｃｈｅｒ.example")?.ascii, "xn--bcher-kva.example")
        XCTAssertEqual(refused("１２７.１")?.code, .invalidSyntax)
        // An A-label whose U-label is not in mapped form would be a second spelling of a name.
        // The A-labels of "bÜcher" and "ａｂｃü".
        for label in ["xn--bcher-2pa", "xn--tda9921kdae"] {
            let error = refused(label + ".example")
            XCTAssertEqual(error?.code, .invalidSyntax, label)
            XCTAssertTrue(error?.reason.contains("not in canonical form") ?? false, "\(label): \(error?.reason ?? "")")
        }
    }

    /// Every accepted host is a fixed point: the canonical form parses to itself, so a
    /// stored value means one thing wherever it is read again.
    func testCanonicalFormIsStable() {
        for typed in ["Mail.Example.COM.", "bücher.example", "ａｂｃ.example", "[2001:DB8::1]", "::FFFF:192.0.2.1", "192.0.2.1", "localhost."] {
            guard let host = accepted(typed) else { continue }
            XCTAssertEqual(accepted(host.ascii)?.ascii, host.ascii, typed)
            XCTAssertEqual(accepted(host.unicode)?.ascii, host.ascii, typed)
        }
    }

    func testThrowingInitialiser() throws {
        XCTAssertEqual(try HostName("[2001:db8::1]").kind, .ipv6)
        XCTAssertThrowsError(try HostName("")) { XCTAssertEqual(($0 as? ValidationError)?.code, .empty) }
    }
}
