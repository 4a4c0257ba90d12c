@testable import EmailSetupFCGI
import Foundation
import XCTest

/// `dns_servers` in the responder's configuration and `--dns-server` on the command line.
final class DNSServersConfigTests: XCTestCase {
    private func load(_ text: String, environment: [String: String] = [:]) throws -> ResponderConfig {
        let path = NSTemporaryDirectory() + "emailsetup-dns-\(UUID().uuidString).conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ResponderConfig.load(path: path, environment: environment)
    }

    func testDefaultIsTheSystemResolver() throws {
        XCTAssertEqual(try load("db_socket = /run/db.sock\n").dnsServers, [])
    }

    func testServersFromFileAndEnvironment() throws {
        let config = try load("db_socket = /run/db.sock\ndns_servers = 127.0.0.1:5353, [::1], 192.0.2.53\n")
        XCTAssertEqual(config.dnsServers.map(\.description), ["127.0.0.1:5353", "[::1]:53", "192.0.2.53:53"])
        XCTAssertEqual(try config.dnsResolver().servers.count, 3)
        let overridden = try load("db_socket = /run/db.sock\ndns_servers = 192.0.2.53\n",
                                  environment: ["EMAILSETUP_DNS_SERVERS": ""])
        XCTAssertEqual(overridden.dnsServers, [])
    }

    func testBadServerIsOneLineNamingTheSetting() throws {
        XCTAssertThrowsError(try load("db_socket = /run/db.sock\ndns_servers = 127.0.0.1, ns1.example.com\n")) { error in
            let line = "\(error)"
            XCTAssertTrue(line.hasPrefix("config: dns_servers = \"127.0.0.1, ns1.example.com\""), line)
            XCTAssertTrue(line.contains("line 2"), line)
            XCTAssertTrue(line.contains("\"ns1.example.com\" is not an IP address"), line)
            XCTAssertFalse(line.contains("\n"), line)
        }
    }

    func testCommandLineOptionWinsOverTheConfiguration() throws {
        let configured = try load("db_socket = /run/db.sock\ndns_servers = 192.0.2.53\n").dnsServers
        let options = try DNSServerOptions.parse(["--dns-server", "127.0.0.1:5353", "--dns-server", "[::1]:53"])
        XCTAssertEqual(options.servers(configured: configured), ["127.0.0.1:5353", "[::1]:53"])
        XCTAssertEqual(try DNSServerOptions.parse([]).servers(configured: configured), ["192.0.2.53:53"])
        XCTAssertThrowsError(try DNSServerOptions.parse(["--dns-server", "dns.example.com"])) { error in
            XCTAssertTrue(DNSServerOptions.message(for: error).contains("is not a DNS server address"), DNSServerOptions.message(for: error))
        }
    }
}
