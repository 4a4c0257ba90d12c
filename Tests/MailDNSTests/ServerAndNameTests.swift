import XCTest
@testable import MailDNS

/// Server address strings and name forms, without a DNS server.
final class ServerAndNameTests: XCTestCase {
    func testServerAddressForms() throws {
        XCTAssertEqual(try DNSServerAddress("127.0.0.1:5353").description, "127.0.0.1:5353")
        XCTAssertEqual(try DNSServerAddress("192.0.2.1").description, "192.0.2.1:53")
        XCTAssertEqual(try DNSServerAddress("[::1]:5353").description, "[::1]:5353")
        XCTAssertEqual(try DNSServerAddress("[2001:DB8:0::1]").description, "[2001:db8::1]:53")
        XCTAssertEqual(try DNSServerAddress("::1").description, "[::1]:53")
        XCTAssertEqual(try DNSServerAddress(" 10.0.0.53:53 ").host, "10.0.0.53")
        XCTAssertTrue(try DNSServerAddress("::1").isIPv6)
    }

    func testServerAddressRefusals() {
        for bad in ["", "dns.example.com", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1", "[::1]x",
                    "[127.0.0.1]:53", "127.1", "300.0.0.1", "127.0.0.1:53:53"] {
            XCTAssertThrowsError(try DNSServerAddress(bad), bad) { error in
                let error = error as! DNSError
                XCTAssertEqual(error.kind, .other, bad)
                XCTAssertTrue(error.hint.contains("is not a DNS server address"), error.hint)
            }
        }
    }

    func testServerList() throws {
        XCTAssertEqual(try DNSServerAddress.list("").count, 0)
        XCTAssertEqual(try DNSServerAddress.list(" , ").count, 0)
        XCTAssertEqual(try DNSServerAddress.list("127.0.0.1:5353, [::1]:53").map(\.description), ["127.0.0.1:5353", "[::1]:53"])
        XCTAssertThrowsError(try DNSServerAddress.list("127.0.0.1, nameserver"))
    }

    func testResolverRefusesBadSettings() {
        XCTAssertThrowsError(try DNSResolver(servers: ["localhost:53"])) { XCTAssertEqual(($0 as! DNSError).kind, .other) }
        XCTAssertThrowsError(try DNSResolver(timeout: 0))
        XCTAssertThrowsError(try DNSResolver(attempts: 0))
        XCTAssertNoThrow(try DNSResolver(servers: ["127.0.0.1:5353", "[::1]"], timeout: 0.5, attempts: 1))
    }

    func testASCIINamesAreSentAsTheyAre() throws {
        XCTAssertEqual(try DNSName.ascii("_submissions._tcp.Example.TEST.", type: .srv), "_submissions._tcp.Example.TEST")
        XCTAssertEqual(try DNSName.ascii("s1._domainkey.example.test", type: .txt), "s1._domainkey.example.test")
    }

    func testInternationalizedLabelsBecomeALabels() throws {
        XCTAssertEqual(try DNSName.ascii("bücher.example", type: .mx), "xn--bcher-kva.example")
        XCTAssertEqual(try DNSName.ascii("_dmarc.bücher.example", type: .txt), "_dmarc.xn--bcher-kva.example")
        XCTAssertEqual(try DNSName.ascii("sel._domainkey.ＢÜCHER。example", type: .txt), "sel._domainkey.xn--bcher-kva.example")
    }

    func testBadNames() {
        let cases = ["", ".", "a..b", ".a", "has space.example", "back\\slash.example", "_ümlaut._tcp.example",
                     String(repeating: "a", count: 64) + ".example",
                     Array(repeating: "abcdefghij", count: 26).joined(separator: "."), "bücher.127.0.0.1"]
        for name in cases {
            XCTAssertThrowsError(try DNSName.ascii(name, type: .a), name) { error in
                XCTAssertEqual((error as! DNSError).kind, .badName, name)
            }
        }
    }

    func testBadNameIsAnErrorOfItsQuestionNotOfTheBatch() throws {
        let resolver = try DNSResolver(servers: ["127.0.0.1:9"], timeout: 0.2, attempts: 1)
        let results = resolver.queryAll([DNSQuestion(name: "a..b", type: .a)])
        guard case .failure(let error) = results[0] else { return XCTFail("expected a failure") }
        XCTAssertEqual(error.kind, .badName)
        XCTAssertEqual(error.type, .a)
    }
}
