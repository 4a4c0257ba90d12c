import Foundation
import TestSupport
import XCTest

/// The servers one discovery run needs: two SMTP servers (SSL/TLS and STARTTLS, the
/// `discovery` certificate of the test CA), nsd with the zones of Tests/Fixtures/dns
/// pointing SRV records at those ports, and an nginx serving autoconfig documents.
final class DiscoveryFixtures: Sendable {
    let implicit: SmtpTestServer
    let starttls: SmtpTestServer
    let dns: NSDServer
    let web: AutoconfigWebServer
    let caFile: String

    init() throws {
        implicit = try SmtpTestServer(mode: .implicit, certificate: "discovery", user: "u", password: "p")
        starttls = try SmtpTestServer(mode: .starttls, certificate: "discovery", user: "u", password: "p")
        dns = try NSDServer(values: ["DISCOVERY_SSL_PORT": String(implicit.port), "DISCOVERY_STARTTLS_PORT": String(starttls.port)])
        web = try AutoconfigWebServer()
        caFile = web.caFile
        try web.put(host: "autoconfig.ac.example.test", path: "/mail/config-v1.1.xml",
                    AutoconfigWebServer.document(domains: ["ac.example.test"], host: "smtp.ac.example.test",
                                                 port: starttls.port, socketType: "STARTTLS", username: "%EMAILLOCALPART%"))
        try web.put(host: "autoconfig.acentity.example.test", path: "/mail/config-v1.1.xml", AutoconfigWebServer.billionLaughs)
    }

    /// Responder configuration lines pointing discovery at these servers.
    var responderConfig: String {
        """
        dns_servers = \(dns.address)
        discovery_ca_file = \(caFile)
        discovery_autoconfig_port = \(web.port)
        discovery_probe_ports = \(implicit.port):ssl,\(starttls.port):starttls
        """
    }

    /// The same for `emailsetup discover`.
    var cliOptions: [String] {
        ["--dns-server", dns.address, "--ca-file", caFile, "--autoconfig-port", String(web.port),
         "--probe-ports", "\(implicit.port):ssl,\(starttls.port):starttls"]
    }
}

/// `POST /api/setup/email_discover/{address}` through nginx and a responder whose
/// configuration points discovery at the fixtures (its own PrivateWebStack).
final class DiscoveryEndToEndTests: XCTestCase {
    private static let fixtures = Result { try DiscoveryFixtures() }
    private static let stack = Result {
        try PrivateWebStack(try EndToEndEnvironment.require(), config: try fixtures.get().responderConfig + "\nadmins = disco", users: [("disco", "pw-disco")])
    }

    private func client() throws -> HTTPTestClient {
        try Self.stack.get().client(user: "disco", password: "pw-disco")
    }

    override class func tearDown() {
        (try? stack.get())?.stop()
        super.tearDown()
    }

    private func discover(_ address: String) throws -> HTTPTestClient.Response {
        try client().request("POST", "/api/setup/email_discover/" + (address.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? address),
                             headers: ["X-Requested-With": "EmailSetup"])
    }

    func testSRVRecordsGiveAVerifiedProposal() throws {
        let fixtures = try Self.fixtures.get()
        let response = try discover("noreply@srv.example.test")
        XCTAssertEqual(response.status, 200, response.text)
        let data = try XCTUnwrap(response.data)
        XCTAssertEqual(data["domain"] as? String, "srv.example.test")
        let proposal = try XCTUnwrap(data["proposal"] as? [String: Any], response.text)
        XCTAssertEqual(proposal["smtp_host"] as? String, "mail.srv.example.test")
        XCTAssertEqual(proposal["smtp_port"] as? Int, fixtures.implicit.port)
        XCTAssertEqual(proposal["smtp_connection_type"] as? String, "SSL")
        XCTAssertEqual(proposal["smtp_tls_verify"] as? String, "Full")
        XCTAssertEqual(proposal["smtp_authentication_type"] as? String, "Auto")
        let sources = try XCTUnwrap(data["sources"] as? [[String: Any]])
        XCTAssertEqual(sources.first?["source"] as? String, "srv")
        XCTAssertEqual(sources.first?["tried"] as? String, "SRV _submissions._tcp.srv.example.test")
        let candidates = try XCTUnwrap(data["candidates"] as? [[String: Any]])
        let verified = try XCTUnwrap(candidates.first?["verified"] as? [String: Any])
        XCTAssertEqual(verified["certificate_valid"] as? Bool, true)
        XCTAssertTrue((verified["auth_mechanisms"] as? [String])?.contains("PLAIN") ?? false, "\(verified)")
        XCTAssertLessThan(data["elapsed_ms"] as? Int ?? 99_999, 2_000)
        XCTAssertEqual(fixtures.implicit.messageCount, 0, "a discovery sends no mail")
    }

    func testAutoconfigDocumentIsProbedAndItsUsernameExpanded() throws {
        let fixtures = try Self.fixtures.get()
        let response = try discover("noreply@ac.example.test")
        XCTAssertEqual(response.status, 200, response.text)
        let proposal = try XCTUnwrap(response.data?["proposal"] as? [String: Any], response.text)
        XCTAssertEqual(proposal["smtp_host"] as? String, "smtp.ac.example.test")
        XCTAssertEqual(proposal["smtp_port"] as? Int, fixtures.starttls.port)
        XCTAssertEqual(proposal["smtp_connection_type"] as? String, "STARTTLS")
        XCTAssertEqual(proposal["smtp_username"] as? String, "noreply")
    }

    func testHostileAutoconfigIsRefusedAndNothingIsProposed() throws {
        let response = try discover("a@acentity.example.test")
        XCTAssertEqual(response.status, 200, response.text)
        let data = try XCTUnwrap(response.data)
        XCTAssertTrue(data["proposal"] is NSNull, response.text)
        let autoconfig = (data["sources"] as? [[String: Any]] ?? []).first { $0["source"] as? String == "autoconfig" }
        XCTAssertTrue((autoconfig?["error"] as? String)?.contains("DTD") ?? false, response.text)
        XCTAssertTrue((data["explanation"] as? String)?.contains("No SMTP server could be verified") ?? false, response.text)
    }

    func testABadAddressIsRefusedWithTheSettingsWords() throws {
        let response = try discover("not-an-address")
        XCTAssertEqual(response.status, 400, response.text)
        XCTAssertTrue(response.errors?["address"]?.hasPrefix("From address is not a valid email address") ?? false, response.text)
    }

    func testGetIsNotAllowedAndCSRFHeaderIsRequired() throws {
        XCTAssertEqual(try client().request("GET", "/api/setup/email_discover/a@srv.example.test").status, 405)
        XCTAssertEqual(try client().request("POST", "/api/setup/email_discover/a@srv.example.test").status, 403)
    }
}

/// `emailsetup discover` against the same fixtures: output, JSON and exit statuses.
final class CLIDiscoveryTests: XCTestCase {
    private static let fixtures = Result { try DiscoveryFixtures() }

    private func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let env = try EndToEndEnvironment.require()
        let result = try ScriptRunner.runWithStatus(env.binary, ["discover"] + arguments, timeout: 60)
        return (result.status, result.output)
    }

    func testFoundIsExitZeroWithTheProposal() throws {
        let fixtures = try Self.fixtures.get()
        let text = try cli(["noreply@srv.example.test"] + fixtures.cliOptions)
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("proposal: --host mail.srv.example.test --port \(fixtures.implicit.port) --security ssl"), text.output)
        let json = try cli(["noreply@guess.example.test", "--json"] + fixtures.cliOptions)
        XCTAssertEqual(json.status, 0, json.output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any], json.output)
        let proposal = try XCTUnwrap(object["proposal"] as? [String: Any])
        XCTAssertEqual(proposal["smtp_host"] as? String, "mail.guess.example.test")
        XCTAssertEqual((object["sources"] as? [[String: Any]])?.last?["source"] as? String, "probe")
    }

    func testNothingVerifiedIsExitThree() throws {
        let fixtures = try Self.fixtures.get()
        let result = try cli(["a@nothing.example.test"] + fixtures.cliOptions)
        XCTAssertEqual(result.status, 3, result.output)
        XCTAssertTrue(result.output.contains("proposal: none"), result.output)
    }

    func testBadInputIsExitTwo() throws {
        XCTAssertEqual(try cli(["not-an-address"]).status, 2)
        XCTAssertEqual(try cli(["a@example.test", "--dns-server", "not a server"]).status, 2)
        XCTAssertEqual(try cli(["a@example.test", "--probe-ports", "465:bogus"]).status, 2)
    }
}
