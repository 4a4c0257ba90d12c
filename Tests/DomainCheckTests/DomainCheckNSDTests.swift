import DomainCheck
import MailDNS
import TestSupport
import XCTest

/// The domain check through MailDNS's resolver against the nsd of Tests/Fixtures/dns
/// (the run's, from EMAILSETUP_TEST_DNS_SERVER, or one started for this process).
final class DomainCheckNSDTests: XCTestCase {
    private func check(_ domain: String, host: String? = nil, addresses: [String] = []) throws -> DomainCheckReport {
        let resolver = try DNSResolver(servers: [try NSDServer.sharedAddress()], timeout: 2, attempts: 1)
        return try DomainChecker(dns: resolver).check(DomainCheckRequest(domain: domain, sender: "noreply@\(domain)", smtpHost: host,
                                                                        sendingAddresses: addresses))
    }

    func testAGoodDomain() throws {
        let r = try check("example.test", addresses: ["127.0.0.1"])
        XCTAssertEqual(r.spf.record, "v=spf1 mx include:_spf.example.test -all")
        XCTAssertEqual(r.spf.result, .pass)
        XCTAssertEqual(r.spf.evaluations.first?.matched, "mx")
        XCTAssertEqual(r.spf.lookups, 2)
        XCTAssertEqual(r.spf.tree.children.map(\.domain), ["_spf.example.test"])
        XCTAssertEqual(r.dkim.usableKeys.map(\.selector), ["s1"])
        XCTAssertEqual(r.dkim.usableKeys.first?.bits, 2048, "the key's three character-strings joined")
        XCTAssertEqual(r.dmarc.effectivePolicy, "reject")
        XCTAssertEqual(r.dmarc.dkimAlignment, "key_published")
        XCTAssertEqual(r.findings.filter { $0.severity == .error }, [], "\(r.findings)")
    }

    func testTooManyLookups() throws {
        let r = try check("spf-toomany.example.test", addresses: ["198.51.100.1"])
        XCTAssertEqual(r.spf.lookups, 11)
        XCTAssertEqual(r.spf.result, .permerror)
        XCTAssertTrue(r.findings.contains { $0.severity == .error && $0.topic == "spf" && $0.message.contains("needs 11 DNS lookups") })
        // An address matched early still passes: receivers stop at the first match.
        XCTAssertEqual(try check("spf-toomany.example.test", addresses: ["192.0.2.1"]).spf.result, .pass)
    }

    func testTwoSPFRecords() throws {
        let r = try check("spf-two.example.test", addresses: ["127.0.0.1"])
        XCTAssertEqual(r.spf.recordsFound, 2)
        XCTAssertEqual(r.spf.result, .permerror)
        let merge = r.findings.first { $0.message.contains("publishes 2 SPF records") }
        XCTAssertEqual(merge?.record?.value, "v=spf1 ip4:127.0.0.0/8 ip4:192.0.2.0/24 -all")
    }

    func testRejectWithoutDKIM() throws {
        let r = try check("dmarc-reject-nodkim.example.test", addresses: ["127.0.0.1"])
        XCTAssertEqual(r.spf.result, .pass)
        XCTAssertEqual(r.dkim.usableKeys, [])
        XCTAssertEqual(r.dmarc.effectivePolicy, "reject")
        XCTAssertEqual(r.dmarc.dkimAlignment, "no_key")
        XCTAssertTrue(r.findings.contains { $0.topic == "dmarc" && $0.severity == .warning && $0.message.contains("forwarded") })
        // From a server SPF does not list, the mail itself will be rejected.
        let rejected = try check("dmarc-reject-nodkim.example.test", addresses: ["198.51.100.1"])
        XCTAssertTrue(rejected.findings.contains { $0.topic == "dmarc" && $0.severity == .error && $0.message.contains("will be rejected") })
    }

    func testProviderCNAMEKeysAndMacros() throws {
        let r = try check("provider.example.test", host: "smtp.office365.com", addresses: ["127.0.0.1"])
        XCTAssertEqual(r.spf.evaluations, [])
        XCTAssertEqual(r.spf.providerIncludePresent, false)
        let fix = r.findings.first { $0.topic == "spf" && $0.record?.value.contains("include:spf.protection.outlook.com") == true }
        XCTAssertEqual(fix?.record?.value, "v=spf1 ip4:192.0.2.0/24 exists:%{i}._spf.provider.example.test include:spf.protection.outlook.com -all")
        XCTAssertTrue(r.spf.notEvaluated.contains { $0.contains("exists:%{i}") })
        let keys = Dictionary(uniqueKeysWithValues: r.dkim.keys.map { ($0.selector, $0) })
        XCTAssertEqual(keys["selector1"]?.cnameTarget, "selector1-provider-example-test._domainkey.tenant.provider.example.test")
        XCTAssertEqual(keys["selector1"]?.bits, 2048)
        XCTAssertTrue(keys["selector2"]?.problem?.contains("no key yet") == true)
        XCTAssertEqual(r.dmarc.effectivePolicy, "quarantine")
    }

    func testRedirectAndOrganisationalFallback() throws {
        let r = try check("sub.provider.example.test", addresses: ["192.0.2.7"])
        XCTAssertEqual(r.spf.tree.children.first?.via, "redirect")
        XCTAssertEqual(r.spf.result, .pass)
        // No _dmarc.sub.provider.example.test: the organisational domain's (last two labels).
        XCTAssertEqual(r.dmarc.organizationalDomain, "example.test")
        XCTAssertEqual(r.dmarc.foundAt, "_dmarc.example.test")
    }

    func testUnreachableDNS() throws {
        let silent = try LoopbackUDPServer(.silent)
        let resolver = try DNSResolver(servers: [silent.address], timeout: 0.3, attempts: 1)
        XCTAssertThrowsError(try DomainChecker(dns: resolver).check(DomainCheckRequest(domain: "example.test"))) { error in
            XCTAssertFalse((error as? DomainCheckError)?.hint.isEmpty ?? true)
        }
    }
}
