import Foundation
import TestSupport
import XCTest

/// POST email_domain_check and a test email's `domain_check` through nginx, with the
/// responder asking the run's nsd (dns_servers from scripts/test) about the zones of
/// Tests/Fixtures/dns.
final class DomainCheckEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    private func domainCheck(_ body: String) throws -> HTTPTestClient.Response {
        try env.admin.post("/api/setup/email_domain_check", json: body)
    }

    private func findings(_ object: [String: Any]?) -> [[String: Any]] {
        object?["findings"] as? [[String: Any]] ?? []
    }

    func testAGivenDomain() throws {
        let r = try domainCheck(#"{"data":{"domain":"spf-toomany.example.test"}}"#)
        XCTAssertEqual(r.status, 200, r.text)
        let data = try XCTUnwrap(r.data, r.text)
        XCTAssertEqual(data["domain"] as? String, "spf-toomany.example.test")
        XCTAssertEqual((data["spf"] as? [String: Any])?["lookups"] as? Int, 11)
        let error = findings(data).first { $0["severity"] as? String == "error" && $0["topic"] as? String == "spf" }
        XCTAssertTrue((error?["message"] as? String)?.contains("11 DNS lookups") == true, r.text)
        // Two SPF records: the finding carries the merged record to publish.
        let two = try domainCheck(#"{"data":{"domain":"spf-two.example.test"}}"#)
        let merge = findings(two.data).first { ($0["message"] as? String)?.contains("2 SPF records") == true }
        let record = try XCTUnwrap(merge?["record"] as? [String: Any], two.text)
        XCTAssertEqual(record["name"] as? String, "spf-two.example.test")
        XCTAssertEqual(record["type"] as? String, "TXT")
        XCTAssertEqual(record["value"] as? String, "v=spf1 ip4:127.0.0.0/8 ip4:192.0.2.0/24 -all")
    }

    func testTheSavedSenderDomainAndBadInput() throws {
        try env.saveSettings(["from_address": "noreply@dmarc-reject-nodkim.example.test"])
        let r = try domainCheck("")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.data?["domain"] as? String, "dmarc-reject-nodkim.example.test")
        XCTAssertEqual((r.data?["dmarc"] as? [String: Any])?["effective_policy"] as? String, "reject")
        XCTAssertEqual(try domainCheck(#"{"data":{"domain":"not a domain"}}"#).status, 400)
        XCTAssertEqual(try domainCheck(#"{"data":{"domain":"127.0.0.1"}}"#).status, 400)
    }

    func testASuccessfulTestEmailCarriesTheDomainCheck() throws {
        let server = try SmtpTestServer(mode: .plain)
        try env.saveSettings(["from_address": "noreply@example.test", "smtp_port": "\(server.port)"])
        let r = try env.sendTestEmail(to: "ops@example.com")
        XCTAssertEqual(r.status, 200, r.text)
        let check = try XCTUnwrap(r.data?["domain_check"] as? [String: Any], r.text)
        XCTAssertEqual(check["domain"] as? String, "example.test")
        XCTAssertEqual(check["sending_addresses_from"] as? String, "connection")
        let spf = try XCTUnwrap(check["spf"] as? [String: Any])
        XCTAssertEqual(spf["result"] as? String, "pass", r.text)
        XCTAssertEqual((spf["evaluations"] as? [[String: Any]])?.first?["address"] as? String, "127.0.0.1")
        XCTAssertEqual(findings(check).filter { $0["severity"] as? String == "error" }.count, 0, r.text)
        _ = try server.waitForMessages(count: 1)
    }

    func testADomainOutsideTheZonesDoesNotChangeTheTestStatus() throws {
        // nsd refuses names it does not serve: the check reports an error, the test stays 200.
        let server = try SmtpTestServer(mode: .plain)
        try env.saveSettings(["from_address": "noreply@example.invalid", "smtp_port": "\(server.port)"])
        let r = try env.sendTestEmail(to: "ops@example.com")
        XCTAssertEqual(r.status, 200, r.text)
        let check = try XCTUnwrap(r.data?["domain_check"] as? [String: Any], r.text)
        XCTAssertNotNil(check["error"] as? String, r.text)
        XCTAssertEqual(try domainCheck("").status, 504)
    }
}
