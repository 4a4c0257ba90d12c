import Discovery
import Foundation
import XCTest

/// The autoconfig reader on untrusted input: the Thunderbird format, placeholders, and
/// every refusal (DTD, entities, nesting) without expanding anything.
final class AutoconfigParsingTests: XCTestCase {
    func testReadsTheSmtpServersOfAThunderbirdDocument() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <clientConfig version="1.1"><emailProvider id="example.org">
              <domain>Example.org</domain><domain>example.net</domain>
              <incomingServer type="imap"><hostname>imap.example.org</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
              <outgoingServer type="smtp">
                <hostname> smtp.example.org </hostname><port>465</port><socketType>SSL</socketType>
                <authentication>password-cleartext</authentication><username>%EMAILLOCALPART%</username>
              </outgoingServer>
              <outgoingServer type="smtp"><hostname>smtp.example.org</hostname><port>587</port><socketType>STARTTLS</socketType>
                <authentication>OAuth2</authentication><authentication>password-cleartext</authentication></outgoingServer>
              <outgoingServer type="smtp"><hostname>bad</hostname><port>99999</port><socketType>SSL</socketType></outgoingServer>
              <outgoingServer type="smtp"><hostname><![CDATA[cdata.example.org]]></hostname><port>25</port><socketType>plain</socketType></outgoingServer>
            </emailProvider></clientConfig>
            """
        let document = try AutoconfigDocument.parse(Data(xml.utf8))
        XCTAssertEqual(document.domains, ["example.org", "example.net"])
        XCTAssertEqual(document.outgoingServers.map(\.hostname), ["smtp.example.org", "smtp.example.org", "cdata.example.org"])
        XCTAssertEqual(document.outgoingServers.map(\.port), [465, 587, 25])
        XCTAssertEqual(document.outgoingServers[1].authentication, ["OAuth2", "password-cleartext"])
        XCTAssertEqual(document.outgoingServers[0].username, "%EMAILLOCALPART%")
        XCTAssertEqual(AutoconfigDocument.expand("%EMAILLOCALPART%", address: "noreply@example.org"), "noreply")
        XCTAssertEqual(AutoconfigDocument.expand("%EMAILADDRESS%", address: "noreply@example.org"), "noreply@example.org")
        XCTAssertEqual(AutoconfigDocument.expand("u-%EMAILDOMAIN%", address: "noreply@example.org"), "u-example.org")
    }

    func testPredefinedEntitiesAndCharacterReferencesAreResolved() throws {
        let root = try UntrustedXML.parse(Data(#"<a t="x&amp;y">&lt;b&gt; &#65;&#x42; &quot;&apos;</a>"#.utf8))
        XCTAssertEqual(root.attributes["t"], "x&y")
        XCTAssertEqual(root.text, "<b> AB \"'")
    }

    func testBillionLaughsIsRefusedWithoutExpansion() {
        let xml = AutoconfigWebServerStandIn.billionLaughs
        let start = Date()
        XCTAssertThrowsError(try UntrustedXML.parse(Data(xml.utf8))) { error in
            XCTAssertTrue("\(error)".contains("DTD"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5)
    }

    func testExternalEntitiesAndUndeclaredEntitiesAreRefused() {
        let external = #"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><clientConfig>&e;</clientConfig>"#
        XCTAssertThrowsError(try UntrustedXML.parse(Data(external.utf8)))
        XCTAssertThrowsError(try UntrustedXML.parse(Data("<clientConfig>&e;</clientConfig>".utf8))) { error in
            XCTAssertTrue("\(error)".contains("not predefined"), "\(error)")
        }
        XCTAssertThrowsError(try UntrustedXML.parse(Data("<a><!ENTITY e \"x\"></a>".utf8)))
    }

    func testBrokenAndDeepDocumentsAreRefused() {
        XCTAssertThrowsError(try UntrustedXML.parse(Data("<a><b></a></b>".utf8)))
        XCTAssertThrowsError(try UntrustedXML.parse(Data("<a>".utf8)))
        XCTAssertThrowsError(try UntrustedXML.parse(Data("".utf8)))
        XCTAssertThrowsError(try UntrustedXML.parse(Data("<a></a><b></b>".utf8)))
        let deep = String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100)
        XCTAssertThrowsError(try UntrustedXML.parse(Data(deep.utf8))) { XCTAssertTrue("\($0)".contains("deeper"), "\($0)") }
        XCTAssertThrowsError(try AutoconfigDocument.parse(Data("<html><body/></html>".utf8))) {
            XCTAssertTrue("\($0)".contains("not a Thunderbird autoconfig"), "\($0)")
        }
    }
}

/// The billion-laughs text without starting a server (the same as AutoconfigWebServer's).
enum AutoconfigWebServerStandIn {
    static var billionLaughs: String {
        var lines = ["<?xml version=\"1.0\"?>", "<!DOCTYPE clientConfig [", "  <!ENTITY lol \"lol\">"]
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            lines.append("  <!ENTITY lol\(level) \"" + String(repeating: "&\(previous);", count: 10) + "\">")
        }
        lines.append("]>")
        lines.append("<clientConfig version=\"1.1\"><emailProvider id=\"x\"><domain>&lol9;</domain></emailProvider></clientConfig>")
        return lines.joined(separator: "\n")
    }
}
