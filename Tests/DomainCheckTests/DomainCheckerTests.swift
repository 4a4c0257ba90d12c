import XCTest
@testable import DomainCheck

final class DomainCheckerTests: XCTestCase {
    private func check(_ dns: FakeDNS, domain: String = "example.org", host: String? = nil, addresses: [String] = []) throws -> DomainCheckReport {
        try DomainChecker(dns: dns).check(DomainCheckRequest(domain: domain, sender: "noreply@\(domain)", smtpHost: host, sendingAddresses: addresses))
    }

    private func findings(_ r: DomainCheckReport, _ topic: String, _ severity: DomainFinding.Severity) -> [DomainFinding] {
        r.findings.filter { $0.topic == topic && $0.severity == severity }
    }

    func testGoodDomain() throws {
        var dns = FakeDNS()
        dns.txt["example.org"] = ["v=spf1 ip4:192.0.2.10 -all"]
        dns.txt["default._domainkey.example.org"] = ["v=DKIM1; k=rsa; p=" + Self.rsa2048]
        dns.txt["_dmarc.example.org"] = ["v=DMARC1; p=reject; rua=mailto:d@example.org"]
        let r = try check(dns, addresses: ["192.0.2.10"])
        XCTAssertEqual(r.spf.result, .pass)
        XCTAssertEqual(r.dkim.usableKeys.map(\.selector), ["default"])
        XCTAssertEqual(r.dkim.usableKeys.first?.bits, 2048)
        XCTAssertEqual(r.dmarc.effectivePolicy, "reject")
        XCTAssertEqual(r.dmarc.spfAlignment, "pass")
        XCTAssertEqual(r.dmarc.dkimAlignment, "key_published")
        XCTAssertEqual(r.findings.filter { $0.severity != .info }, [], "\(r.findings)")
        XCTAssertEqual(r.sendingAddressesFrom, "connection")
    }

    func testNoRecordsAtAllSuggestsWhatToPublish() throws {
        let r = try check(FakeDNS(existing: ["example.org"]), addresses: ["192.0.2.10"])
        let spf = findings(r, "spf", .error)
        XCTAssertEqual(spf.first?.record, DNSRecordToPublish(name: "example.org", value: "v=spf1 ip4:192.0.2.10 -all"))
        XCTAssertEqual(findings(r, "dkim", .warning).count, 1)
        let dmarc = findings(r, "dmarc", .warning)
        XCTAssertEqual(dmarc.first?.record?.name, "_dmarc.example.org")
        XCTAssertEqual(dmarc.first?.record?.value, "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.org")
        XCTAssertEqual(r.findings.first?.severity, .error, "errors come first")
    }

    func testProviderWithoutItsInclude() throws {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 ip4:192.0.2.10 -all"]])
        let r = try check(dns, host: "smtp.office365.com", addresses: ["52.96.1.1"])
        XCTAssertEqual(r.spf.provider?.name, "Microsoft 365")
        XCTAssertEqual(r.spf.evaluations, [], "the submission server's address is not the sending one")
        XCTAssertEqual(r.spf.providerIncludePresent, false)
        XCTAssertEqual(findings(r, "spf", .error).first?.record?.value, "v=spf1 ip4:192.0.2.10 include:spf.protection.outlook.com -all")
        XCTAssertEqual(r.dmarc.spfAlignment, "unknown")
        XCTAssertEqual(r.dkim.selectorsTried.prefix(2), ["selector1", "selector2"])
    }

    func testProviderIncludeFoundDeepInTheChain() throws {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 include:_spf.example.org -all"],
                                "_spf.example.org": ["v=spf1 include:_spf.google.com ~all"],
                                "_spf.google.com": ["v=spf1 include:_netblocks.google.com ~all"],
                                "_netblocks.google.com": ["v=spf1 ip4:35.190.247.0/24 ~all"]])
        let r = try check(dns, host: "smtp.gmail.com")
        XCTAssertEqual(r.spf.providerIncludePresent, true)
        XCTAssertEqual(findings(r, "spf", .error), [])
    }

    func testNewProviderRecordWhenNoneExists() throws {
        let r = try check(FakeDNS(existing: ["example.org"]), host: "email-smtp.eu-west-1.amazonaws.com")
        XCTAssertEqual(findings(r, "spf", .error).first?.record?.value, "v=spf1 include:amazonses.com -all")
        XCTAssertTrue(findings(r, "dkim", .warning).first?.message.contains("cannot guess") == true)
    }

    func testTwoSPFRecordsAreMerged() throws {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 mx -all", "v=spf1 include:_spf.google.com ~all"]])
        let r = try check(dns, addresses: ["192.0.2.10"])
        XCTAssertEqual(r.spf.recordsFound, 2)
        XCTAssertEqual(r.spf.result, .permerror)
        let error = findings(r, "spf", .error).first { $0.message.contains("publishes 2 SPF records") }
        XCTAssertEqual(error?.record?.value, "v=spf1 mx include:_spf.google.com -all")
    }

    func testTooManyLookupsIsAnErrorWhateverTheAddress() throws {
        var dns = FakeDNS()
        dns.txt["example.org"] = ["v=spf1 ip4:192.0.2.10 " + (1...11).map { "include:i\($0).example" }.joined(separator: " ") + " -all"]
        for i in 1...11 { dns.txt["i\(i).example"] = ["v=spf1 ip4:10.0.0.\(i) -all"] }
        let r = try check(dns, addresses: ["192.0.2.10"])
        XCTAssertEqual(r.spf.result, .pass, "matched before the limit")
        XCTAssertEqual(r.spf.lookups, 11)
        XCTAssertTrue(findings(r, "spf", .error).contains { $0.message.contains("needs 11 DNS lookups") })
    }

    func testPrivateAddressIsExplained() throws {
        let r = try check(FakeDNS(txt: ["example.org": ["v=spf1 -all"]]), addresses: ["127.0.0.1"])
        let w = findings(r, "spf", .warning)
        XCTAssertTrue(w.first?.message.contains("private address") == true)
        XCTAssertNil(w.first?.record)
    }

    func testSMTPHostAddressesWhenNoTestEmail() throws {
        var dns = FakeDNS(txt: ["example.org": ["v=spf1 a:mail.example.org -all"]])
        dns.a["mail.example.org"] = ["192.0.2.25"]
        let r = try check(dns, host: "mail.example.org")
        XCTAssertEqual(r.sendingAddressesFrom, "smtp_host")
        XCTAssertEqual(r.spf.evaluations.map(\.address), ["192.0.2.25"])
        XCTAssertEqual(r.spf.result, .pass)
    }

    func testUnreachableDNSThrows() {
        XCTAssertThrowsError(try check(FakeDNS(unreachable: true))) { error in
            XCTAssertTrue((error as? DomainCheckError)?.hint.contains("no DNS server answered") == true)
        }
    }

    func testPlusAllAndMissingAll() throws {
        var r = try check(FakeDNS(txt: ["example.org": ["v=spf1 mx +all"]]))
        XCTAssertEqual(findings(r, "spf", .error).first { $0.message.contains("+all") }?.record?.value, "v=spf1 mx -all")
        r = try check(FakeDNS(txt: ["example.org": ["v=spf1 ip4:192.0.2.1"]]))
        XCTAssertTrue(findings(r, "spf", .warning).contains { $0.message.contains("no all term") })
    }

    // MARK: DKIM

    func testDKIMKeysRevokedShortTestingAndCNAME() throws {
        var dns = FakeDNS(txt: ["example.org": ["v=spf1 -all"]])
        dns.txt["s1._domainkey.example.org"] = ["v=DKIM1; p="]
        dns.txt["k1._domainkey.example.org"] = ["k=rsa; t=y; p=" + Self.rsa1024]
        dns.txt["selector1-example-org._domainkey.tenant.onmicrosoft.com"] = ["v=DKIM1; k=rsa; p=" + Self.rsa2048]
        dns.cname["selector1._domainkey.example.org"] = "selector1-example-org._domainkey.tenant.onmicrosoft.com"
        dns.cname["selector2._domainkey.example.org"] = "selector2-example-org._domainkey.tenant.onmicrosoft.com"
        dns.txt["mail._domainkey.example.org"] = ["v=DKIM1; k=rsa; p=!!!"]
        let r = try check(dns)
        let byName = Dictionary(uniqueKeysWithValues: r.dkim.keys.map { ($0.selector, $0) })
        XCTAssertEqual(byName["s1"]?.revoked, true)
        XCTAssertEqual(byName["k1"]?.bits, 1024)
        XCTAssertEqual(byName["k1"]?.testing, true)
        XCTAssertEqual(byName["selector1"]?.cnameTarget, "selector1-example-org._domainkey.tenant.onmicrosoft.com")
        XCTAssertEqual(byName["selector1"]?.bits, 2048)
        XCTAssertTrue(byName["selector2"]?.problem?.contains("has no key yet") == true)
        XCTAssertEqual(byName["mail"]?.problem, "p= is not valid base64")
        XCTAssertEqual(Set(r.dkim.usableKeys.map(\.selector)), ["k1", "selector1"])
        XCTAssertTrue(findings(r, "dkim", .warning).contains { $0.message.contains("1024 bits") })
        XCTAssertTrue(findings(r, "dkim", .warning).contains { $0.message.contains("t=y") })
    }

    func testDKIMTagListAndKeyDetection() {
        XCTAssertTrue(DKIMCheck.looksLikeKey("v=DKIM1; p=abc"))
        XCTAssertFalse(DKIMCheck.looksLikeKey("v=spf1 -all"))
        let key = DKIMCheck.parse("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", selector: "x", name: "x._domainkey.a")
        XCTAssertEqual(key.bits, 256)
        XCTAssertNil(key.problem)
        XCTAssertEqual(DKIMCheck.parse("v=DKIM1; k=dsa; p=AAAA", selector: "x", name: "n").problem?.contains("k=dsa"), true)
    }

    // MARK: DMARC

    func testDMARCParsing() throws {
        let r = try DMARCRecord("v=DMARC1; p=Quarantine; sp=reject; adkim=s; aspf=r; pct=50; rua=mailto:a@example.org, mailto:b@example.net; ruf=mailto:f@example.org")
        XCTAssertEqual(r.policy, "quarantine")
        XCTAssertEqual(r.subdomainPolicy, "reject")
        XCTAssertEqual(r.dkimAlignment, "s")
        XCTAssertEqual(r.spfAlignment, "r")
        XCTAssertEqual(r.percent, 50)
        XCTAssertEqual(r.aggregateReports, ["mailto:a@example.org", "mailto:b@example.net"])
        XCTAssertEqual(r.failureReports, ["mailto:f@example.org"])
        XCTAssertTrue(DMARCRecord.isDMARC("v = DMARC1 ; p=none"))
        XCTAssertFalse(DMARCRecord.isDMARC("p=none; v=DMARC1"))
        for bad in ["v=DMARC1; rua=mailto:a@b", "v=DMARC1; p=block", "v=DMARC1; p=none; pct=150", "v=DMARC1; p=none; adkim=x"] {
            XCTAssertThrowsError(try DMARCRecord(bad), bad)
        }
    }

    func testOrganisationalDomain() {
        XCTAssertEqual(OrganizationalDomain.of("mail.example.org"), "example.org")
        XCTAssertEqual(OrganizationalDomain.of("example.org"), "example.org")
        XCTAssertEqual(OrganizationalDomain.of("a.b.example.co.uk"), "example.co.uk")
        XCTAssertEqual(OrganizationalDomain.of("example.co.uk"), "example.co.uk")
        XCTAssertEqual(OrganizationalDomain.of("Shop.Example.COM.AU."), "example.com.au")
    }

    func testSubdomainInheritsTheOrganisationalPolicy() throws {
        let dns = FakeDNS(txt: ["news.example.org": ["v=spf1 -all"], "_dmarc.example.org": ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.org"]])
        let r = try check(dns, domain: "news.example.org")
        XCTAssertEqual(r.dmarc.foundAt, "_dmarc.example.org")
        XCTAssertEqual(r.dmarc.effectivePolicy, "quarantine")
    }

    func testRejectWithoutDKIM() throws {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 ip4:192.0.2.10 -all"], "_dmarc.example.org": ["v=DMARC1; p=reject"]])
        // SPF unknown (no address): an error with a p=none stop-gap.
        var r = try check(dns)
        let e = findings(r, "dmarc", .error).first
        XCTAssertTrue(e?.message.contains("no DKIM key") == true)
        XCTAssertEqual(e?.record, DNSRecordToPublish(name: "_dmarc.example.org", value: "v=DMARC1; p=none"))
        XCTAssertTrue(findings(r, "dmarc", .info).contains { $0.message.contains("no rua=") })
        // SPF fails: the mail will be rejected.
        r = try check(dns, addresses: ["198.51.100.1"])
        XCTAssertTrue(findings(r, "dmarc", .error).first?.message.contains("will be rejected") == true)
        // SPF passes: forwarding is the risk.
        r = try check(dns, addresses: ["192.0.2.10"])
        XCTAssertTrue(findings(r, "dmarc", .warning).first?.message.contains("forwarded") == true)
    }

    func testTwoDMARCRecords() throws {
        let r = try check(FakeDNS(txt: ["_dmarc.example.org": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]], existing: ["example.org"]))
        XCTAssertNil(r.dmarc.record)
        XCTAssertTrue(findings(r, "dmarc", .error).first?.message.contains("2 DMARC records") == true)
    }

    // openssl genrsa 2048 / 1024 | openssl rsa -pubout, base64 body.
    static let rsa2048 = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA34mALyGM7I1cNzHHLxg454x4HRoZgYrBxdp1Lrcn9g3EZ1I0gkb1jcPMTkshCytJG1qPYm4DKgz+dbJv7rtoaLKGIERwyqBYEkpwx6h2C53hLQjGj6+gLaned/KyIoxD8ZdvTgxeilHHhn4L/QD5GyDxagg+s6ZoMgpzCc32uwhNLSGNTwfYXe6pRKyJUQ+2BHCEGjruJ0zS4+V8FaWue+XJlHPeZsB8V+T7u44wXvgFkbiNOWVtEbNE2wZUOIgoXKcIMUKK947C2SVeGmnMAKhFqmnUlRsgh8pUrQWuSasIhqEO6mfOj7tQP/9XnFPE48H+E/1reR5ED9H/tYKcrwIDAQAB"
    static let rsa1024 = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDWG0jXQ69iDWL9jpd7f8ImVMYXhYLWPJsRCGgyFiC/HS6xTHwud1nVhJckWONESPFao3ALLsyKLUg9fs2SoNmJXCzjLUj2IZNgck/SLZ7uGXP1JPO7Xcb4+WoZSQDaMMRylFd1wSvw28OdzxozUgsuZ2creftzq6seKdi7mVoI5wIDAQAB"
}
