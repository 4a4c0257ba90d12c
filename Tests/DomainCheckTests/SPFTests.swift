import XCTest
@testable import DomainCheck

final class SPFRecordTests: XCTestCase {
    func testParsesEveryMechanismAndModifier() throws {
        let r = try SPFRecord("v=spf1 +all -include:_spf.example.org ~a ?a:mail.example.org/24//64 mx/28 mx:mx.example.org "
                              + "ptr ptr:example.org ip4:192.0.2.1/24 ip6:2001:db8::/32 exists:%{i}.bl.example.org redirect=other.example exp=explain.%{d} foo=bar")
        XCTAssertEqual(r.directives.map(\.qualifier), [.pass, .fail, .softfail, .neutral, .pass, .pass, .pass, .pass, .pass, .pass, .pass])
        XCTAssertEqual(r.directives[3].mechanism, .a(domain: "mail.example.org", ip4Prefix: 24, ip6Prefix: 64))
        XCTAssertEqual(r.directives[4].mechanism, .mx(domain: nil, ip4Prefix: 28, ip6Prefix: nil))
        XCTAssertEqual(r.directives[8].mechanism, .ip4(IPAddress("192.0.2.1")!, prefix: 24))
        XCTAssertEqual(r.redirect, "other.example")
        XCTAssertTrue(r.terms.contains(.unknownModifier(name: "foo", value: "bar")))
        // include, a, a, mx, mx, ptr, ptr, exists + redirect
        XCTAssertEqual(r.lookupTerms, 9)
    }

    func testRecognisesOnlyVersionOne() {
        XCTAssertTrue(SPFRecord.isSPF("v=spf1"))
        XCTAssertTrue(SPFRecord.isSPF("V=SPF1 -all"))
        XCTAssertFalse(SPFRecord.isSPF("v=spf10 -all"))
        XCTAssertFalse(SPFRecord.isSPF("google-site-verification=abc"))
    }

    func testSyntaxErrors() {
        for bad in ["v=spf1 include", "v=spf1 ip4:300.1.1.1", "v=spf1 ip4:192.0.2.0/33", "v=spf1 ip6:192.0.2.1",
                    "v=spf1 foo:bar", "v=spf1 all:x", "v=spf1 redirect=a.example redirect=b.example", "v=spf1 exists:%{z}.example",
                    "v=spf1 include:%{i", "v=spf1 a:%{c}.example"] {
            XCTAssertThrowsError(try SPFRecord(bad), bad)
        }
    }

    func testMacroExpansion() {
        let c = SPFMacro.Context(sender: "strong-bad@email.example.com", domain: "email.example.com", ip: IPAddress("192.0.2.3"), helo: nil)
        XCTAssertEqual(SPFMacro.expand("%{s}", c), "strong-bad@email.example.com")
        XCTAssertEqual(SPFMacro.expand("%{o}", c), "email.example.com")
        XCTAssertEqual(SPFMacro.expand("%{d4}", c), "email.example.com")
        XCTAssertEqual(SPFMacro.expand("%{d2}", c), "example.com")
        XCTAssertEqual(SPFMacro.expand("%{dr}", c), "com.example.email")
        XCTAssertEqual(SPFMacro.expand("%{d2r}", c), "example.email")
        XCTAssertEqual(SPFMacro.expand("%{l-}", c), "strong.bad")
        XCTAssertEqual(SPFMacro.expand("%{lr-}", c), "bad.strong")
        XCTAssertEqual(SPFMacro.expand("%{ir}.%{v}._spf.%{d2}", c), "3.2.0.192.in-addr._spf.example.com")
        XCTAssertEqual(SPFMacro.expand("%%%_%-", c), "% %20")
        let v6 = SPFMacro.Context(sender: "a@b", domain: "b", ip: IPAddress("2001:db8::cb01"), helo: nil)
        XCTAssertEqual(SPFMacro.expand("%{ir}.%{v}", v6), "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6")
        // The HELO name is not known here: not expanded, not guessed.
        XCTAssertNil(SPFMacro.expand("%{h}.example", c))
    }

    func testCIDR() {
        let net = IPAddress("192.0.2.77")!
        XCTAssertTrue(net.matches(IPAddress("192.0.2.1")!, prefix: 24))
        XCTAssertFalse(net.matches(IPAddress("192.0.3.1")!, prefix: 24))
        XCTAssertTrue(net.matches(IPAddress("10.9.9.9")!, prefix: 0))
        XCTAssertTrue(IPAddress("2001:db8::")!.matches(IPAddress("2001:db8:ffff::1")!, prefix: 32))
        XCTAssertFalse(IPAddress("2001:db8::")!.matches(IPAddress("192.0.2.1")!, prefix: 0))
        XCTAssertEqual(IPAddress("::ffff:192.0.2.1")?.isIPv4, true)
        XCTAssertTrue(IPAddress("127.0.0.1")!.isPrivate)
        XCTAssertFalse(IPAddress("192.0.2.1")!.isPrivate)
    }
}

final class SPFEvaluationTests: XCTestCase {
    private func evaluate(_ dns: FakeDNS, _ ip: String, domain: String = "example.org") -> (SPFResult, SPFEvaluator) {
        let e = SPFEvaluator(dns: DNSCache(dns), ip: IPAddress(ip)!, sender: "noreply@\(domain)")
        return (e.checkHost(domain), e)
    }

    func testEveryMechanismMatches() {
        var dns = FakeDNS()
        dns.txt["example.org"] = ["v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:1::/48 a a:web.example.org/30 mx include:inc.example exists:%{i}.ok.example -all"]
        dns.a["example.org"] = ["203.0.113.1"]
        dns.a["web.example.org"] = ["203.0.113.8"]
        dns.mx["example.org"] = ["mx1.example.org"]
        dns.a["mx1.example.org"] = ["203.0.113.20"]
        dns.txt["inc.example"] = ["v=spf1 ip4:203.0.113.30 -all"]
        dns.a["203.0.113.40.ok.example"] = ["127.0.0.2"]
        let cases: [(String, SPFResult, String?)] = [
            ("198.51.100.9", .pass, "ip4:198.51.100.0/24"),
            ("2001:db8:1::5", .pass, "ip6:2001:db8:1::/48"),
            ("203.0.113.1", .pass, "a"),
            ("203.0.113.10", .pass, "a:web.example.org/30"),
            ("203.0.113.20", .pass, "mx"),
            ("203.0.113.30", .pass, "include:inc.example → ip4:203.0.113.30"),
            ("203.0.113.40", .pass, "exists:%{i}.ok.example"),
            ("203.0.113.50", .fail, "-all"),
        ]
        for (ip, result, matched) in cases {
            let (r, e) = evaluate(dns, ip)
            XCTAssertEqual(r, result, ip)
            XCTAssertEqual(e.matched, matched, ip)
        }
    }

    func testQualifiersAndNeutralDefault() {
        for (record, result) in [("v=spf1 ~all", SPFResult.softfail), ("v=spf1 ?all", .neutral), ("v=spf1 +all", .pass),
                                 ("v=spf1 ip4:192.0.2.1", .neutral)] {
            XCTAssertEqual(evaluate(FakeDNS(txt: ["example.org": [record]]), "198.51.100.1").0, result, record)
        }
    }

    func testNoRecordAndTwoRecords() {
        XCTAssertEqual(evaluate(FakeDNS(txt: ["example.org": ["some-verification=1"]]), "192.0.2.1").0, .none)
        let (r, e) = evaluate(FakeDNS(txt: ["example.org": ["v=spf1 -all", "v=spf1 mx -all"]]), "192.0.2.1")
        XCTAssertEqual(r, .permerror)
        XCTAssertTrue(e.problem?.contains("2 SPF records") == true)
    }

    func testRedirect() {
        var dns = FakeDNS(txt: ["example.org": ["v=spf1 redirect=_spf.example.net"], "_spf.example.net": ["v=spf1 ip4:192.0.2.0/24 -all"]])
        XCTAssertEqual(evaluate(dns, "192.0.2.9").0, .pass)
        XCTAssertEqual(evaluate(dns, "198.51.100.1").0, .fail)
        dns.txt["_spf.example.net"] = nil
        XCTAssertEqual(evaluate(dns, "192.0.2.9").0, .permerror, "redirect to a domain without SPF")
    }

    func testIncludeResults() {
        var dns = FakeDNS(txt: ["example.org": ["v=spf1 include:a.example ~all"], "a.example": ["v=spf1 -all"]])
        XCTAssertEqual(evaluate(dns, "192.0.2.1").0, .softfail, "a failing include does not match")
        dns.txt["a.example"] = nil
        XCTAssertEqual(evaluate(dns, "192.0.2.1").0, .permerror, "include of a domain without SPF")
    }

    func testLookupLimit() {
        var dns = FakeDNS()
        dns.txt["example.org"] = ["v=spf1 " + (1...11).map { "include:i\($0).example" }.joined(separator: " ") + " -all"]
        for i in 1...11 { dns.txt["i\(i).example"] = ["v=spf1 ip4:10.0.0.\(i) -all"] }
        let (r, e) = evaluate(dns, "192.0.2.1")
        XCTAssertEqual(r, .permerror)
        XCTAssertEqual(e.lookups, 11)
        XCTAssertTrue(e.problem?.contains("more than 10 DNS lookups") == true)
        // Matched before the limit: a receiver stops there and passes.
        XCTAssertEqual(evaluate(dns, "10.0.0.3").0, .pass)
    }

    func testVoidLookupLimit() {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 a:n1.example a:n2.example a:n3.example -all"]])
        let (r, e) = evaluate(dns, "192.0.2.1")
        XCTAssertEqual(r, .permerror)
        XCTAssertEqual(e.voidLookups, 3)
    }

    func testTemperrorWhenAnIncludeCannotBeRead() {
        struct Failing: DomainCheckDNS {
            func lookup(_ name: String, _ type: DomainCheckDNSType) -> DomainCheckDNSAnswer {
                name == "example.org" ? .records([.txt("v=spf1 include:slow.example -all")]) : .failed(hint: "timeout", unreachable: false)
            }
        }
        let e = SPFEvaluator(dns: DNSCache(Failing()), ip: IPAddress("192.0.2.1")!, sender: "a@example.org")
        XCTAssertEqual(e.checkHost("example.org"), .temperror)
    }

    func testMacroNeedingHELOIsReportedNotEvaluated() {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 exists:%{h}.allow.example -all"]])
        let (r, e) = evaluate(dns, "192.0.2.1")
        XCTAssertEqual(r, .fail)
        XCTAssertEqual(e.notEvaluated.count, 1)
        XCTAssertTrue(e.notEvaluated[0].contains("exists:%{h}.allow.example"))
    }

    func testPtrIsNotEvaluated() {
        let (r, e) = evaluate(FakeDNS(txt: ["example.org": ["v=spf1 ptr ~all"]]), "192.0.2.1")
        XCTAssertEqual(r, .softfail)
        XCTAssertTrue(e.notEvaluated.first?.contains("ptr") == true)
    }
}

final class SPFWalkTests: XCTestCase {
    func testCountsLookupsOverTheWholeTree() {
        var dns = FakeDNS()
        dns.txt["example.org"] = ["v=spf1 include:a.example include:b.example mx -all"]
        dns.txt["a.example"] = ["v=spf1 include:c.example a -all"]
        dns.txt["b.example"] = ["v=spf1 ip4:192.0.2.0/24 redirect=d.example"]
        dns.txt["c.example"] = ["v=spf1 ip4:192.0.2.1 -all"]
        dns.txt["d.example"] = ["v=spf1 exists:%{i}.x.example -all"]
        dns.mx["example.org"] = ["mx.example.org"]
        dns.a["a.example"] = ["192.0.2.2"]
        let walk = SPFWalk(domain: "example.org", sender: "a@example.org", dns: DNSCache(dns))
        // top: include×2 + mx = 3; a: include + a = 2; b: redirect = 1; c: 0; d: exists = 1
        XCTAssertEqual(walk.lookups, 7)
        XCTAssertEqual(walk.root.flattened.map(\.domain), ["example.org", "a.example", "c.example", "b.example", "d.example"])
        XCTAssertEqual(walk.root.flattened.map(\.via), ["top", "include", "include", "include", "redirect"])
        XCTAssertEqual(walk.voidLookups, 0)
        XCTAssertEqual(walk.notEvaluated.count, 1, "exists with %{i} needs the sending address")
    }

    func testLoopAndMissingInclude() {
        let dns = FakeDNS(txt: ["example.org": ["v=spf1 include:example.org include:gone.example -all"]])
        let walk = SPFWalk(domain: "example.org", sender: "a@example.org", dns: DNSCache(dns))
        XCTAssertEqual(walk.root.children[0].problem?.contains("loop"), true)
        XCTAssertEqual(walk.root.children[1].problem, "the domain does not exist")
        XCTAssertEqual(walk.voidLookups, 1)
    }
}
