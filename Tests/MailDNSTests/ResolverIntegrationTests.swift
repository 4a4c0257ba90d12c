import Foundation
import XCTest
import MailDNS
import TestSupport

/// DNSResolver against the real nsd of Tests/Fixtures/dns (the run's, or one started
/// for this process): each record type, each kind of failure, TXT joining, IDN.
final class ResolverIntegrationTests: XCTestCase {
    private var resolver: DNSResolver!

    override func setUpWithError() throws {
        resolver = try DNSResolver(servers: [try NSDServer.sharedAddress()], timeout: 2, attempts: 2)
    }

    private func failure(_ name: String, _ type: DNSRecordType, file: StaticString = #filePath, line: UInt = #line) -> DNSError? {
        do {
            let records = try resolver.query(name, type)
            XCTFail("expected an error for \(name) \(type), got \(records)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testAddresses() throws {
        XCTAssertEqual(try resolver.query("example.test", .a), [.a("127.0.0.1")])
        XCTAssertEqual(try resolver.query("mail.example.test", .aaaa), [.aaaa("::1")])
        XCTAssertEqual(try resolver.query("many.example.test", .a).count, 8)
    }

    func testMailExchangers() throws {
        let records = try resolver.query("example.test", .mx)
        XCTAssertEqual(Set(records.map { "\($0)" }),
                       ["mx(preference: 10, exchange: \"mail.example.test\")", "mx(preference: 20, exchange: \"backup-mail.example.test\")"])
        XCTAssertEqual(try resolver.query("mx365.example.test", .mx),
                       [.mx(preference: 0, exchange: "contoso-test.mail.protection.outlook.com")])
        XCTAssertEqual(try resolver.query("mxgoogle.example.test", .mx).count, 3)
    }

    func testServiceRecords() throws {
        XCTAssertEqual(try resolver.query("_submissions._tcp.example.test", .srv),
                       [.srv(priority: 0, weight: 1, port: 465, target: "mail.example.test")])
        XCTAssertEqual(try resolver.query("_submission._tcp.example.test", .srv),
                       [.srv(priority: 10, weight: 1, port: 587, target: "mail.example.test")])
        XCTAssertEqual(try resolver.query("_submission._tcp.noservice.example.test", .srv),
                       [.srv(priority: 0, weight: 0, port: 0, target: "")])
    }

    func testTextRecordsJoinTheirCharacterStrings() throws {
        XCTAssertEqual(try resolver.query("example.test", .txt), [.txt("v=spf1 mx include:_spf.example.test -all")])
        XCTAssertEqual(try resolver.query("split.example.test", .txt), [.txt("v=spf1 ip4:192.0.2.0/24 -all")])
        XCTAssertEqual(Set(try resolver.query("multi.example.test", .txt).map { "\($0)" }),
                       ["txt(\"first record\")", "txt(\"second record\")"])
        let dkim = try resolver.query("s1._domainkey.example.test", .txt)
        guard dkim.count == 1, case .txt(let key) = dkim[0] else { return XCTFail("\(dkim)") }
        XCTAssertTrue(key.hasPrefix("v=DKIM1; k=rsa; p=MIIB"), key)
        XCTAssertTrue(key.hasSuffix("/IgTvB60fVwIDAQAB"), key)   // the joint of the 2nd and 3rd strings
        XCTAssertFalse(key.contains(" p=MIIB ") || key.dropFirst(18).contains(" "), "strings joined without separator")
        // Over 512 octets: truncated on UDP, fetched again over TCP.
        XCTAssertEqual(try resolver.query("bulk.example.test", .txt), [.txt(String(repeating: "0123456789", count: 75))])
        XCTAssertEqual(try resolver.query("spf-two.example.test", .txt).count, 3)
    }

    func testAliases() throws {
        XCTAssertEqual(try resolver.query("smtp.example.test", .cname), [.cname("mail.example.test")])
        // A CNAME question gets the first link only; an address question the chain's end.
        XCTAssertEqual(try resolver.query("alias1.example.test", .cname), [.cname("alias2.example.test")])
        XCTAssertEqual(try resolver.query("alias1.example.test", .a), [.a("127.0.0.1")])
        XCTAssertEqual(failure("mail.example.test", .cname)?.kind, .nodata)
    }

    func testNoSuchNameIsNotNoSuchRecord() throws {
        let nxdomain = try XCTUnwrap(failure("nope.example.test", .a))
        XCTAssertEqual(nxdomain.kind, .nxdomain)
        XCTAssertEqual(nxdomain.name, "nope.example.test")
        XCTAssertEqual(nxdomain.type, .a)
        XCTAssertTrue(nxdomain.hint.contains("nope.example.test does not exist"), nxdomain.hint)

        let nodata = try XCTUnwrap(failure("mail.example.test", .mx))
        XCTAssertEqual(nodata.kind, .nodata)
        XCTAssertEqual(nodata.hint, "mail.example.test exists but has no MX record")

        XCTAssertEqual(failure("nosrv.example.test", .mx)?.kind, .nodata)
        XCTAssertEqual(failure("nosrv.example.test", .txt)?.kind, .nodata)
        XCTAssertEqual(failure("_submission._tcp.nosrv.example.test", .srv)?.kind, .nxdomain)
        XCTAssertEqual(failure("s1._domainkey.dmarc-reject-nodkim.example.test", .txt)?.kind, .nxdomain)
    }

    func testRefusedAndServerFailure() throws {
        let refused = try XCTUnwrap(failure("example.invalid", .a))
        XCTAssertEqual(refused.kind, .refused)
        XCTAssertTrue(refused.hint.contains("REFUSED"), refused.hint)
        // servfail.example.test's zone file is broken on purpose: nsd answers SERVFAIL.
        let servfail = try XCTUnwrap(failure("servfail.example.test", .a))
        XCTAssertEqual(servfail.kind, .servfail)
        XCTAssertTrue(servfail.hint.contains("SERVFAIL"), servfail.hint)
    }

    func testInternationalizedNameIsAskedInALabels() throws {
        XCTAssertEqual(try resolver.query("bücher.example.test", .a), [.a("127.0.0.1")])
        XCTAssertEqual(failure("bücher.example.test", .mx)?.name, "xn--bcher-kva.example.test")
    }

    func testQueryAllKeepsEachResultApartAndInOrder() throws {
        let results = resolver.queryAll([
            DNSQuestion(name: "_submissions._tcp.example.test", type: .srv),
            DNSQuestion(name: "nope.example.test", type: .mx),
            DNSQuestion(name: "a..b", type: .a),
            DNSQuestion(name: "example.test", type: .a),
            DNSQuestion(name: "servfail.example.test", type: .txt),
        ])
        XCTAssertEqual(results.count, 5)
        XCTAssertEqual(try results[0].get(), [.srv(priority: 0, weight: 1, port: 465, target: "mail.example.test")])
        XCTAssertEqual(results[1].error?.kind, .nxdomain)
        XCTAssertEqual(results[2].error?.kind, .badName)
        XCTAssertEqual(try results[3].get(), [.a("127.0.0.1")])
        XCTAssertEqual(results[4].error?.kind, .servfail)
        XCTAssertEqual(resolver.queryAll([]).count, 0)
    }

    func testResolverIsSafeToShareBetweenThreads() throws {
        let resolver = self.resolver!
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 16) { index in
            let name = index % 2 == 0 ? "example.test" : "mail.example.test"
            if (try? resolver.query(name, .a)) != [.a("127.0.0.1")] { failures.withLock { $0 += 1 } }
        }
        XCTAssertEqual(failures.withLock { $0 }, 0)
    }

    func testTemplatesAreFilledWithTheGivenPorts() throws {
        let dns = try NSDServer(values: ["SUBMISSIONS_PORT": "2465"])
        let own = try DNSResolver(servers: [dns.address], timeout: 1, attempts: 1)
        XCTAssertEqual(try own.query("_submissions._tcp.example.test", .srv),
                       [.srv(priority: 0, weight: 1, port: 2465, target: "mail.example.test")])
        XCTAssertEqual(try own.query("_submission._tcp.example.test", .srv),
                       [.srv(priority: 10, weight: 1, port: 587, target: "mail.example.test")], "the file's default")
        let directory = dns.directoryPath
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/zones/example.test.zone"))
        dns.stop()
        XCTAssertThrowsError(try own.query("example.test", .a), "nsd stopped")
    }
}

import Synchronization

extension Result {
    /// The failure, if any.
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
