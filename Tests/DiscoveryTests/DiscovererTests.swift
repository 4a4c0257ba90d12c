import Discovery
import Foundation
import Smtp
import TestSupport
import XCTest

/// A DNS that answers from tables (names → records), for running the engine against
/// real SMTP servers and a real nginx without an authoritative server.
struct TableDNS: DiscoveryDNS {
    var srv: [String: [ServiceRecord]] = [:]
    var mx: [String: [MailExchanger]] = [:]
    var hosts: [String: [String]] = [:]
    var broken: Set<String> = []

    func serviceRecords(_ name: String) -> Result<[ServiceRecord], DiscoveryDNSFailure> {
        if broken.contains(name) { return .failure(DiscoveryDNSFailure(notFound: false, hint: "SERVFAIL for \(name)")) }
        return srv[name].map { .success($0) } ?? .failure(DiscoveryDNSFailure(notFound: true, hint: "no SRV"))
    }
    func mailExchangers(_ domain: String) -> Result<[MailExchanger], DiscoveryDNSFailure> {
        mx[domain].map { .success($0) } ?? .failure(DiscoveryDNSFailure(notFound: true, hint: "no MX"))
    }
    func addresses(_ host: String) -> Result<[String], DiscoveryDNSFailure> {
        hosts[host].map { .success($0) } ?? .failure(DiscoveryDNSFailure(notFound: true, hint: "\(host) does not resolve"))
    }
}

/// The discovery engine end to end below HTTP: real aiosmtpd servers (the test CA's
/// `discovery` certificate, AUTH offered), a real nginx serving autoconfig documents
/// (valid and hostile), and DNS answers from a table. Ports are the fixtures': the
/// probe list is injected (production probes 465, 587, 25, 2525).
final class DiscovererTests: XCTestCase {
    private static let implicit = Result { try SmtpTestServer(mode: .implicit, certificate: "discovery", user: "u", password: "p") }
    private static let starttls = Result { try SmtpTestServer(mode: .starttls, certificate: "discovery", user: "u", password: "p") }
    private static let wrongCertificate = Result { try SmtpTestServer(mode: .implicit, certificate: "good", user: "u", password: "p") }
    private static let web = Result { try AutoconfigWebServer() }

    private func options(_ web: AutoconfigWebServer? = nil, deadline: Double = 8) throws -> DiscoveryOptions {
        var options = DiscoveryOptions()
        options.deadline = deadline
        options.caFile = try SmtpTestCertificates.shared().certificate("ca")
        options.autoconfigPort = web?.port
        options.probes = [SmtpProbe(port: try Self.implicit.get().port, security: .implicitTLS),
                          SmtpProbe(port: try Self.starttls.get().port, security: .startTLSRequired)]
        return options
    }

    private let loopback = ["127.0.0.1"]

    func testSRVRecordsAreProbedAndImplicitTLSWins() throws {
        let (implicit, starttls) = (try Self.implicit.get(), try Self.starttls.get())
        var dns = TableDNS()
        dns.srv["_submissions._tcp.srv.example.test"] = [ServiceRecord(priority: 0, weight: 1, port: implicit.port, target: "mail.srv.example.test")]
        dns.srv["_submission._tcp.srv.example.test"] = [ServiceRecord(priority: 0, weight: 1, port: starttls.port, target: "mail.srv.example.test")]
        dns.hosts["mail.srv.example.test"] = loopback
        let report = Discoverer(dns: dns, options: try options()).discover(try EmailAddress("noreply@srv.example.test"))
        let proposal = try XCTUnwrap(report.proposal, report.explanation)
        XCTAssertEqual(proposal.host, "mail.srv.example.test")
        XCTAssertEqual(proposal.port, implicit.port)
        XCTAssertEqual(proposal.connectionType, "SSL")
        XCTAssertEqual(proposal.tlsVerify, "Full")
        XCTAssertEqual(proposal.authentication, "Auto")
        XCTAssertEqual(proposal.username, "noreply@srv.example.test")
        XCTAssertEqual(report.candidates.count, 2)
        XCTAssertTrue(report.candidates.allSatisfy { $0.usable && $0.verified.certificateValid == true && $0.verified.tls })
        XCTAssertTrue(report.candidates[0].verified.authMechanisms.contains("PLAIN"), "\(report.candidates[0].verified)")
        XCTAssertEqual(report.sources.filter { $0.source == .srv }.map(\.found.count), [1, 1])
        // Nothing was guessed: the sources' candidates work.
        XCTAssertFalse(report.sources.contains { $0.source == .probe })
        XCTAssertTrue(report.explanation.contains("SRV"), report.explanation)
        // Probes never sign in and never send mail.
        XCTAssertEqual(implicit.messageCount + starttls.messageCount, 0)
    }

    func testDotTargetMeansNotOfferedAndSTARTTLSIsProposed() throws {
        let starttls = try Self.starttls.get()
        var dns = TableDNS()
        dns.srv["_submissions._tcp.srv.example.test"] = [ServiceRecord(priority: 0, weight: 0, port: 0, target: ".")]
        dns.srv["_submission._tcp.srv.example.test"] = [ServiceRecord(priority: 0, weight: 1, port: starttls.port, target: "mail.srv.example.test")]
        dns.hosts["mail.srv.example.test"] = loopback
        let report = Discoverer(dns: dns, options: try options()).discover(try EmailAddress("a@srv.example.test"))
        XCTAssertEqual(report.sources.first?.found, ["not offered (target \".\")"])
        XCTAssertEqual(report.proposal?.connectionType, "STARTTLS")
        XCTAssertEqual(report.proposal?.port, starttls.port)
    }

    func testAutoconfigIsUsedOnlyAfterProbingConfirmsIt() throws {
        let (web, starttls) = (try Self.web.get(), try Self.starttls.get())
        try web.put(host: "autoconfig.ac.example.test", path: "/mail/config-v1.1.xml",
                    AutoconfigWebServer.document(domains: ["ac.example.test"], host: "smtp.ac.example.test", port: starttls.port,
                                                 socketType: "STARTTLS", username: "%EMAILLOCALPART%"))
        var dns = TableDNS()
        dns.hosts = ["autoconfig.ac.example.test": loopback, "smtp.ac.example.test": loopback]
        var options = try options(web)
        options.probes = []
        let report = Discoverer(dns: dns, options: options).discover(try EmailAddress("noreply@ac.example.test"))
        let proposal = try XCTUnwrap(report.proposal, report.explanation)
        XCTAssertEqual(proposal.host, "smtp.ac.example.test")
        XCTAssertEqual(proposal.connectionType, "STARTTLS")
        XCTAssertEqual(proposal.username, "noreply")
        XCTAssertEqual(report.candidates.first?.source, .autoconfig)
        XCTAssertEqual(report.sources.first { $0.source == .autoconfig }?.found, ["smtp.ac.example.test:\(starttls.port) STARTTLS"])

        // The same document naming a port where nothing answers: listed, never proposed.
        let dead = try freePort()
        try web.put(host: "autoconfig.acdead.example.test", path: "/mail/config-v1.1.xml",
                    AutoconfigWebServer.document(domains: ["acdead.example.test"], host: "smtp.ac.example.test", port: dead, socketType: "SSL"))
        dns.hosts["autoconfig.acdead.example.test"] = loopback
        let unconfirmed = Discoverer(dns: dns, options: options).discover(try EmailAddress("noreply@acdead.example.test"))
        XCTAssertNil(unconfirmed.proposal)
        XCTAssertEqual(unconfirmed.candidates.first?.port, dead)
        XCTAssertNotNil(unconfirmed.candidates.first?.verified.error)
        XCTAssertTrue(unconfirmed.explanation.contains("No SMTP server could be verified"), unconfirmed.explanation)
    }

    func testTheWellKnownURLIsTheFallback() throws {
        let (web, implicit) = (try Self.web.get(), try Self.implicit.get())
        try web.put(host: "acwk.example.test", path: "/.well-known/autoconfig/mail/config-v1.1.xml",
                    AutoconfigWebServer.document(domains: ["acwk.example.test"], host: "smtp.acwk.example.test", port: implicit.port, socketType: "SSL"))
        var dns = TableDNS()
        dns.hosts = ["acwk.example.test": loopback, "smtp.acwk.example.test": loopback]
        let report = Discoverer(dns: dns, options: try options(web)).discover(try EmailAddress("x@acwk.example.test"))
        let sources = report.sources.filter { $0.source == .autoconfig }
        XCTAssertEqual(sources.count, 2)
        XCTAssertEqual(sources[0].found, [])
        XCTAssertNil(sources[0].error, "an autoconfig host that does not resolve is simply not published")
        XCTAssertEqual(sources[1].found.count, 1)
        XCTAssertEqual(report.proposal?.host, "smtp.acwk.example.test")
        XCTAssertEqual(report.proposal?.connectionType, "SSL")
    }

    func testHostileAutoconfigDocumentsAreRefused() throws {
        let (web, implicit) = (try Self.web.get(), try Self.implicit.get())
        let huge = "<?xml version=\"1.0\"?><clientConfig><!--" + String(repeating: "x", count: 2 * 1024 * 1024) + "--></clientConfig>"
        try web.put(host: "autoconfig.achuge.example.test", path: "/mail/config-v1.1.xml", huge)
        try web.put(host: "autoconfig.acentity.example.test", path: "/mail/config-v1.1.xml", AutoconfigWebServer.billionLaughs)
        try web.put(host: "autoconfig.acwrong.example.test", path: "/mail/config-v1.1.xml",
                    AutoconfigWebServer.document(domains: ["other.example"], host: "smtp.acwrong.example.test", port: implicit.port, socketType: "SSL"))
        var dns = TableDNS()
        for domain in ["achuge", "acentity", "acwrong"] { dns.hosts["autoconfig.\(domain).example.test"] = loopback }
        dns.hosts["smtp.acwrong.example.test"] = loopback
        var options = try options(web)
        options.probes = []
        let expectations = [("achuge", "larger than 64 KiB"), ("acentity", "DTD"), ("acwrong", "ignored: the document is for other.example")]
        for (domain, phrase) in expectations {
            let report = Discoverer(dns: dns, options: options).discover(try EmailAddress("a@\(domain).example.test"))
            let first = try XCTUnwrap(report.sources.first { $0.source == .autoconfig })
            XCTAssertTrue(first.error?.contains(phrase) ?? false, "\(domain): \(first.error ?? "no error")")
            XCTAssertTrue(first.found.isEmpty, domain)
            XCTAssertNil(report.proposal, "\(domain): nothing from a refused document is proposed")
            XCTAssertTrue(report.candidates.isEmpty, domain)
        }
    }

    func testGuessedHostsAreProbedWhenNoSourceNamesOne() throws {
        let implicit = try Self.implicit.get()
        var dns = TableDNS()
        dns.hosts["mail.guess.example.test"] = loopback
        let report = Discoverer(dns: dns, options: try options()).discover(try EmailAddress("a@guess.example.test"))
        XCTAssertEqual(report.proposal?.host, "mail.guess.example.test")
        XCTAssertEqual(report.proposal?.port, implicit.port)
        XCTAssertEqual(report.proposal?.connectionType, "SSL")
        let probe = try XCTUnwrap(report.sources.first { $0.source == .probe })
        XCTAssertTrue(probe.tried.contains("smtp.guess.example.test, mail.guess.example.test"), probe.tried)
        XCTAssertEqual(report.candidates.first?.source, .probe)
    }

    func testACertificateNotValidForTheHostIsProposedPinnedNotFull() throws {
        let server = try Self.wrongCertificate.get()
        var dns = TableDNS()
        dns.srv["_submissions._tcp.badcert.example.test"] = [ServiceRecord(priority: 0, weight: 0, port: server.port, target: "smtp.badcert.example.test")]
        dns.hosts["smtp.badcert.example.test"] = loopback
        var options = try options()
        options.probes = []
        let report = Discoverer(dns: dns, options: options).discover(try EmailAddress("a@badcert.example.test"))
        let proposal = try XCTUnwrap(report.proposal, report.explanation)
        XCTAssertEqual(proposal.tlsVerify, "Pinned")
        XCTAssertEqual(proposal.pin?.count, 64)
        XCTAssertEqual(report.candidates.first?.verified.certificateValid, false)
        XCTAssertTrue(report.explanation.contains("not valid for smtp.badcert.example.test"), report.explanation)
    }

    func testMicrosoft365IsRecognisedFromMXAndNotProposedUnverified() throws {
        var dns = TableDNS()
        dns.mx["mx365.example.test"] = [MailExchanger(preference: 0, exchange: "contoso-test.mail.protection.outlook.com")]
        var options = try options()
        options.probes = []
        let report = Discoverer(dns: dns, options: options).discover(try EmailAddress("a@mx365.example.test"))
        let mx = try XCTUnwrap(report.sources.first { $0.source == .mx })
        XCTAssertEqual(mx.found, ["contoso-test.mail.protection.outlook.com → Microsoft 365"])
        let candidate = try XCTUnwrap(report.candidates.first)
        XCTAssertEqual(candidate.host, "smtp.office365.com")
        XCTAssertEqual(candidate.authentication, "XOAUTH2")
        XCTAssertEqual(candidate.verified.error, "smtp.office365.com does not resolve")
        XCTAssertNil(report.proposal)
    }

    func testNothingFoundSaysSoAndDNSErrorsAreReported() throws {
        var dns = TableDNS()
        dns.broken = ["_submissions._tcp.nothing.example.test"]
        let report = Discoverer(dns: dns, options: try options()).discover(try EmailAddress("a@nothing.example.test"))
        XCTAssertNil(report.proposal)
        XCTAssertEqual(report.sources.first?.error, "SERVFAIL for _submissions._tcp.nothing.example.test")
        XCTAssertEqual(report.sources.first { $0.source == .probe }?.error, "neither name resolves")
        XCTAssertTrue(report.explanation.contains("Ask the mail provider"), report.explanation)
    }

    func testTheDeadlineHoldsAgainstAServerThatNeverGreets() throws {
        // A listening socket nobody accepts from: connects succeed, no greeting ever comes.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, length) == 0 && listen(silent, 16) == 0 && getsockname(silent, $0, &length) == 0 }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        var dns = TableDNS()
        dns.srv["_submissions._tcp.slow.example.test"] = [ServiceRecord(priority: 0, weight: 0, port: port, target: "smtp.slow.example.test")]
        dns.hosts["smtp.slow.example.test"] = loopback
        var options = try options(deadline: 2)
        options.probes = []
        let start = Date()
        let report = Discoverer(dns: dns, options: options).discover(try EmailAddress("a@slow.example.test"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.8)
        XCTAssertNil(report.proposal)
        XCTAssertNotNil(report.candidates.first?.verified.error)
    }

    private func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
