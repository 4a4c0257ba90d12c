import DomainCheck
@testable import EmailSetupFCGI
import XCTest

/// POST email_domain_check and the test email's `domain_check`, through the handler
/// with DNS answered from a table.
final class DomainCheckEndpointTests: XCTestCase {
    struct TableDNS: DomainCheckDNS {
        var txt: [String: [String]] = [:]
        var unreachable = false
        func lookup(_ name: String, _ type: DomainCheckDNSType) -> DomainCheckDNSAnswer {
            if unreachable { return .failed(hint: "no DNS server answered at 127.0.0.1:9 within 1 s", unreachable: true) }
            guard type == .txt, let t = txt[name] else { return .noSuchName }
            return .records(t.map { .txt($0) })
        }
    }

    var repository: MemorySettingsRepository!
    var handler: APIHandler!

    override func setUp() {
        repository = MemorySettingsRepository()
        repository.values = ["from_address": "app@example.com", "smtp_host": "smtp.office365.com", "smtp_port": "587",
                             "smtp_connection_type": "STARTTLS"]
        repository.version = 3
        handler = APIHandler(repository: repository, logger: .quiet)
        handler.smtp = ScriptedSmtp()
        handler.domainCheckDNS = TableDNS(txt: ["example.com": ["v=spf1 include:spf.protection.outlook.com -all"],
                                                "_dmarc.example.com": ["v=DMARC1; p=none; rua=mailto:d@example.com"],
                                                "example.net": ["v=spf1 -all", "v=spf1 mx -all"]])
    }

    func testTheSavedSenderDomainByDefault() throws {
        for body in ["", "{}", "{\"data\":{}}", "{\"data\":{\"domain\":\"\"}}"] {
            let r = handler.answer(post("/api/setup/email_domain_check", body))
            XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
            XCTAssertEqual(r.data("domain"), "example.com")
            XCTAssertEqual(r.json["data"]?["spf"]?["provider"]?["include_present"], true)
            XCTAssertEqual(r.json["data"]?["dmarc"]?["policy"], "none")
        }
    }

    func testAGivenDomainAndItsFindings() throws {
        let r = handler.answer(post("/api/setup/email_domain_check", #"{"data":{"domain":"Example.NET."}}"#))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.data("domain"), "example.net")
        guard case .array(let findings)? = r.json["data"]?["findings"] else { return XCTFail("no findings") }
        let first = try XCTUnwrap(findings.first)
        XCTAssertEqual(first["severity"], "error")
        XCTAssertEqual(first["topic"], "spf")
        XCTAssertEqual(first["record"]?["type"], "TXT")
        XCTAssertEqual(first["record"]?["name"], "example.net")
        XCTAssertEqual(r.json["data"]?["spf"]?["records"], .array(["v=spf1 -all", "v=spf1 mx -all"]))
    }

    func testBadDomainsAre400() {
        for body in [#"{"data":{"domain":"192.0.2.1"}}"#, #"{"data":{"domain":"localhost"}}"#, #"{"data":{"domain":"exa mple.org"}}"#,
                     #"{"data":{"domain":5}}"#, #"["x"]"#, #"{"data":"example.org"}"#] {
            let r = handler.answer(post("/api/setup/email_domain_check", body))
            XCTAssertEqual(r.status, 400, body)
        }
        repository.values = [:]
        XCTAssertEqual(handler.answer(post("/api/setup/email_domain_check", "")).status, 400, "no domain and no saved sender")
    }

    func testUnreachableDNSIs504AndAFullPool503() {
        handler.domainCheckDNS = TableDNS(unreachable: true)
        let r = handler.answer(post("/api/setup/email_domain_check", ""))
        XCTAssertEqual(r.status, 504)
        XCTAssertTrue(r.error("dns")?.contains("no DNS server answered") == true)
        handler.smtpCapacity = SmtpSlots(capacity: 1)
        let held = handler.smtpCapacity.tryReserve()
        XCTAssertEqual(handler.answer(post("/api/setup/email_domain_check", "")).status, 503)
        _ = held
    }

    func testTestEmailCarriesTheDomainCheckAndKeepsItsStatus() throws {
        var r = handler.answer(post("/api/setup/email_test/ops%40example.org", "{}"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json["data"]?["domain_check"]?["domain"], "example.com")
        XCTAssertEqual(r.json["data"]?["domain_check"]?["spf"]?["provider"]?["name"], "Microsoft 365")
        handler.domainCheckDNS = TableDNS(unreachable: true)
        r = handler.answer(post("/api/setup/email_test/ops%40example.org", "{}"))
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.json["data"]?["domain_check"]?["error"]?.stringValue?.contains("no DNS server answered") == true)
    }
}
