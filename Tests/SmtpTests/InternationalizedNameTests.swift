import XCTest
import Smtp

/// UTS #46 (non-transitional) and IDNA2008 as libidn2 implements them, through the
/// public `HostName` and `EmailAddress`. Each case marked "was:" is one the former
/// hand-written subset got wrong (it checked general categories only).
final class InternationalizedNameTests: XCTestCase {
    private func host(_ input: String, file: StaticString = #filePath, line: UInt = #line) -> HostName? {
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
            XCTFail("accepted \(input.debugDescription) as \(host.ascii)", file: file, line: line)
            return nil
        case .failure(let error): return error
        }
    }

    /// Non-transitional: the deviation characters ß and ς are letters of the name, not
    /// spellings of "ss" and "σ" (IDNA2003 and transitional processing change them).
    /// The capital ẞ is mapped to "ss" by UTS #46 (was: lower-cased to ß, another name).
    func testDeviationCharactersAreKeptAndCapitalSharpSIsMapped() throws {
        XCTAssertEqual(host("faß.de")?.ascii, "xn--fa-hia.de")
        XCTAssertEqual(host("faß.de")?.unicode, "faß.de")
        XCTAssertEqual(host("βόλος.gr")?.ascii, "xn--nxasmm1c.gr")
        XCTAssertEqual(host("ΒΌΛΟΣ.gr")?.ascii, "xn--nxasmq6b.gr", "capital sigma maps to σ, not ς")
        XCTAssertEqual(host("FAẞ.de")?.ascii, "fass.de")
        XCTAssertEqual(try EmailAddress("info@FAẞ.de").asciiDomain, "fass.de")
    }

    /// CONTEXTJ (RFC 5892 A.1, A.2): a zero-width non-joiner between joining letters and
    /// a zero-width joiner after a virama are part of real names (was: refused as
    /// format characters); elsewhere they are refused as misplaced, not as unknown.
    func testJoinersAreAllowedInTheirContextOnly() throws {
        XCTAssertEqual(host("نامه\u{200C}ای.example")?.ascii, "xn--mgba3gch31f060k.example")
        XCTAssertEqual(host("xn--mgba3gch31f060k.example")?.unicode, "نامه\u{200C}ای.example")
        XCTAssertEqual(host("क्\u{200D}ष.example")?.ascii, "xn--11b2ezcw70k.example")
        let error = refused("a\u{200C}b.example")
        XCTAssertEqual(error?.code, .invalidSyntax)
        XCTAssertTrue(error?.reason.contains("zero-width joiner or non-joiner") ?? false, error?.reason ?? "")
    }

    /// CONTEXTO (RFC 5892 A.3–A.9): the middle dot only between two "l" (Catalan), the
    /// katakana middle dot only with Japanese script, Arabic-Indic digits of one kind
    /// (was: the dots refused everywhere, the digits mixed freely).
    func testContextORules() throws {
        XCTAssertEqual(host("col·legi.cat")?.ascii, "xn--collegi-xma.cat")
        XCTAssertEqual(host("ア・イ.jp")?.ascii, "xn--ccke4x.jp")
        for bad in ["a·b.example", "a・b.example", "ا٠۰.example"] {
            let error = refused(bad)
            XCTAssertEqual(error?.code, .invalidSyntax, bad)
            XCTAssertTrue(error?.reason.contains("allow only beside certain others") ?? false, "\(bad): \(error?.reason ?? "")")
        }
    }

    /// The bidi rule (RFC 5893): a label with Hebrew or Arabic letters starts with one
    /// and holds no Latin letters (was: any mix of letters accepted), typed or as an
    /// A-label.
    func testBidiRule() throws {
        XCTAssertEqual(host("א1.example")?.ascii, "xn--1-zhc.example", "digits may end a right-to-left label")
        XCTAssertEqual(host("مثال.example")?.unicode, "مثال.example")
        for bad in ["אa.example", "aא.example", "xn--a-0hc.example"] {
            let error = refused(bad)
            XCTAssertEqual(error?.code, .invalidSyntax, bad)
            XCTAssertTrue(error?.reason.contains("bidi rule") ?? false, "\(bad): \(error?.reason ?? "")")
        }
        XCTAssertThrowsError(try EmailAddress("info@אa.example"))
    }

    /// Characters IDNA2008 disallows although they are "letters or numbers" by general
    /// category (was: accepted), and compatibility forms that NFKC would turn into a
    /// dot, changing the labels (was: "⒈example.com" saved as "1.example.com").
    func testDisallowedCharactersAreNamed() throws {
        XCTAssertEqual(refused("mail.☃.example")?.reason, "the host name contains “☃” (U+2603), which domain names don't allow")
        let repeatMark = refused("a〱b.example")
        XCTAssertEqual(repeatMark?.code, .invalidCharacter)
        XCTAssertEqual(repeatMark?.reason, "the host name contains “〱” (U+3031), which domain names don't allow")
        XCTAssertEqual(refused("⒈example.com")?.code, .invalidCharacter)
        XCTAssertEqual(refused("ـب.example")?.code, .invalidCharacter, "the Arabic tatweel is disallowed")
        XCTAssertThrowsError(try EmailAddress("info@⒈example.com"))
    }

    /// UTS #46 mapping: case, full width, the ideographic full stops, and the
    /// characters it maps to nothing (soft hyphen; was: refused).
    func testMapping() throws {
        XCTAssertEqual(host("ＭＡＩＬ．Ｅｘａｍｐｌｅ。ｃｏｍ")?.ascii, "mail.example.com")
        XCTAssertEqual(host("Bücher.EXAMPLE")?.ascii, "xn--bcher-kva.example")
        XCTAssertEqual(host("ex\u{AD}ample.com")?.ascii, "example.com")
        XCTAssertEqual(host("ex\u{AD}ample.com")?.unicode, "example.com")
        XCTAssertEqual(try EmailAddress("info@例え｡テスト").asciiDomain, "xn--r8jz45g.xn--zckzah")
    }

    /// Hyphens: an internationalized label follows IDNA2008 ("--" in the third and
    /// fourth place is reserved; was: accepted); ASCII labels stay plain LDH, since
    /// names like "r3---sn-abc.googlevideo.com" exist.
    func testHyphenRules() throws {
        let reserved = refused("ab--ü.example")
        XCTAssertEqual(reserved?.code, .invalidSyntax)
        XCTAssertTrue(reserved?.reason.contains("third and fourth") ?? false, reserved?.reason ?? "")
        XCTAssertEqual(refused("-ü.example")?.reason, "the label “-ü” of the host name starts with a hyphen")
        XCTAssertEqual(host("r3---sn-abc.googlevideo.com")?.ascii, "r3---sn-abc.googlevideo.com")
        XCTAssertEqual(refused("bü_cher.example")?.reason, "the host name contains an underscore, which host names don't allow")
    }

    /// A full-width IPv4 address in the domain of an address is an address, to be put
    /// in brackets (was: saved as the domain name "127.0.0.1").
    func testFullWidthAddressInTheDomainPartIsAnAddress() {
        guard case .failure(let error) = EmailAddress.validate("info@１２７.０.０.１") else { return XCTFail("accepted") }
        XCTAssertEqual(error.reason, "an IP address as the domain part must be in brackets, like name@[127.0.0.1]")
    }

    /// A-labels: decoded for display; invalid Punycode refused; the RFC 3492 vectors
    /// that are valid labels decode through libidn2.
    func testALabels() throws {
        XCTAssertEqual(host("xn--ihqwcrb4cv8a8dqg056pqjye.example")?.unicode, "他们为什么不说中文.example")
        XCTAssertEqual(host("XN--2-U9TLZR9756BT3UC0V.example")?.unicode, "ひとつ屋根の下2.example")
        XCTAssertEqual(refused("xn--zz.example")?.reason, "the label “xn--zz” of the host name is not valid punycode")
        XCTAssertEqual(refused("xn--.example")?.code, .invalidSyntax)
        // The A-label of "bÜcher": a second spelling of xn--bcher-kva.
        XCTAssertEqual(refused("xn--bcher-2pa.example")?.reason, "the label “xn--bcher-2pa” of the host name is not in canonical form; write “bücher” instead")
    }
}
