import Foundation
import TestSupport
import XCTest

/// Issue 12, through nginx against the real stack: user names are compared byte for
/// byte, hosts are saved in the form the client connects to, denied networks are
/// refused with a 400 naming `smtp_denied_networks`, and a non-SMTP peer is shown
/// only as a short excerpt.
final class HostsAndProbingEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    private func save(_ fields: [String: String], through client: HTTPTestClient? = nil) throws -> HTTPTestClient.Response {
        let data = EndToEndEnvironment.baselineSettings.merging(fields) { $1 }
        let body = try JSONSerialization.data(withJSONObject: ["data": data], options: [.sortedKeys])
        return try (client ?? env.admin).post(EndToEndEnvironment.settingsPath, json: String(decoding: body, as: UTF8.self))
    }

    /// The allow-list says "Kate" and NFC "José"; nginx authenticates each of these
    /// users with its own password and passes the name on as it is.
    func testAllowListMatchesUserNamesByteForByte() throws {
        let kelvin = "\u{212A}ate", nfc = "Jos\u{E9}", nfd = "Jose\u{301}"
        let users = [("Kate", "pw-kate"), (kelvin, "pw-kelvin"), ("kate", "pw-lower"), ("KATE", "pw-upper"), (nfc, "pw-nfc"), (nfd, "pw-nfd")]
        let stack = try PrivateWebStack(env, config: "admins = Kate, \(nfc)\nworkers = 2", users: users)
        defer { stack.stop() }
        var statuses: [String: Int] = [:]
        for (user, password) in users {
            statuses[user.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " ")] =
                try stack.client(user: user, password: password).request("GET", EndToEndEnvironment.settingsPath).status
        }
        func status(_ user: String) -> Int? { statuses[user.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " ")] }
        XCTAssertEqual(status("Kate"), 200, "\(statuses)")
        XCTAssertEqual(status(nfc), 200, "\(statuses)")
        XCTAssertEqual(status(kelvin), 403, "KELVIN SIGN + ate admitted as Kate: \(statuses)")
        XCTAssertEqual(status(nfd), 403, "NFD José admitted as NFC José: \(statuses)")
        XCTAssertEqual(status("kate"), 403, "\(statuses)")
        XCTAssertEqual(status("KATE"), 403, "\(statuses)")
        let refused = try stack.client(user: kelvin, password: "pw-kelvin").request("GET", EndToEndEnvironment.settingsPath)
        XCTAssertEqual(refused.errors?["auth"]?.contains("is not an email settings administrator"), true, refused.text)
    }

    func testHostsAreSavedAsTheClientUsesThem() throws {
        for (typed, stored, shown) in [("localhost.", "localhost", "localhost"), ("ａｂｃ.example", "abc.example", "abc.example"),
                                       ("Bücher.Example", "xn--bcher-kva.example", "bücher.example"), ("[::FFFF:127.0.0.1]", "::ffff:127.0.0.1", "::ffff:127.0.0.1")] {
            let r = try save(["smtp_host": typed])
            XCTAssertEqual(r.status, 200, "\(typed): \(r.text)")
            let got = try env.admin.request("GET", EndToEndEnvironment.settingsPath)
            XCTAssertEqual(got.data?["smtp_host"] as? String, stored, typed)
            XCTAssertEqual(got.data?["smtp_host_unicode"] as? String, shown, typed)
        }
        for typed in ["0x7f000001", "127.1", "0177.0.0.1"] {
            let r = try save(["smtp_host": typed])
            XCTAssertEqual(r.status, 400, "\(typed) saved: \(r.text)")
            let message = r.errors?["smtp_host"] ?? ""
            XCTAssertTrue(message.contains("dotted quad") && message.contains("127.0.0.1"), "\(typed): \(message)")
        }
    }

    func testSaveOfALinkLocalAddressIs400NamingTheSetting() throws {
        for (host, network) in [("169.254.169.254", "169.254.0.0/16"), ("fe80::a9fe:a9fe", "fe80::/10"), ("::ffff:169.254.169.254", "169.254.0.0/16")] {
            let r = try save(["smtp_host": host])
            XCTAssertEqual(r.status, 400, "\(host) saved: \(r.text)")
            XCTAssertEqual(r.errors?["smtp_host"],
                           "\(host) is in smtp_denied_networks (\(network)) of the responder's configuration; this destination is refused.")
        }
    }

    /// A name is checked after resolution: "localhost" resolves into the networks this
    /// responder denies, so the check is a 400 before any byte reaches the server,
    /// while the suite's responder (default networks) reaches the same server.
    func testCheckOfANameResolvingIntoADeniedNetworkIs400() throws {
        let server = try HostileSmtpServer(mode: "normal")
        defer { server.stop() }
        let stack = try PrivateWebStack(env, config: "smtp_denied_networks = 127.0.0.0/8, ::1/128\nworkers = 2",
                                        users: [(env.adminUser, env.adminPassword)])
        defer { stack.stop() }
        let client = stack.client(user: env.adminUser, password: env.adminPassword)
        XCTAssertEqual(try save(["smtp_host": "localhost", "smtp_port": String(server.port)], through: client).status, 200,
                       "a name is not refused at save time")
        XCTAssertEqual(try save(["smtp_host": "127.0.0.1", "smtp_port": String(server.port)], through: client).errors?["smtp_host"],
                       "127.0.0.1 is in smtp_denied_networks (127.0.0.0/8) of the responder's configuration; this destination is refused.")

        let refused = try client.post("/api/setup/email_check", json: "")
        let diagnosis = try SmtpDiagnosis(refused)
        diagnosis.expect(status: 400, stage: "connect", kind: "invalid_input", hintContains: ["localhost resolves to", "smtp_denied_networks"])
        XCTAssertTrue(server.received.isEmpty, "bytes reached a denied destination")

        let allowed = try env.checkConnection()
        XCTAssertEqual(allowed.status, 200, "the suite's responder must reach the same server: \(allowed.text)")
    }

    /// `emailsetup check --stored` reads `smtp_denied_networks` from the responder's
    /// configuration (here its environment override) like `serve`.
    func testCommandLineCheckHonoursDeniedNetworks() throws {
        let server = try HostileSmtpServer(mode: "normal")
        defer { server.stop() }
        XCTAssertEqual(try save(["smtp_host": "127.0.0.1", "smtp_port": String(server.port)]).status, 200)
        let config = env.stateDirectory + "/emailsetup.conf"
        let allowed = try ScriptRunner.runWithStatus(env.binary, ["check", "--stored", "--config", config, "--json"], timeout: 30)
        XCTAssertEqual(allowed.status, 0, allowed.output)
        let denied = try ScriptRunner.runWithStatus(env.binary, ["check", "--stored", "--config", config, "--json"],
                                                    environment: ["EMAILSETUP_SMTP_DENIED_NETWORKS": "127.0.0.0/8"], timeout: 30)
        XCTAssertEqual(denied.status, 2, "refused input is exit 2: \(denied.output)")
        XCTAssertTrue(denied.output.contains("127.0.0.1 is in smtp_denied_networks (127.0.0.0/8)"), denied.output)
        XCTAssertTrue(denied.output.contains("\"invalid_input\""), denied.output)
    }

    /// An SSH server on the saved port: the answer shows at most 80 printable
    /// characters of its 300-byte banner, in the hint, reply text and transcript.
    func testSSHBannerIsShownOnlyAsAShortExcerpt() throws {
        let server = try HostileSmtpServer(mode: "ssh_banner")
        defer { server.stop() }
        XCTAssertEqual(try save(["smtp_port": String(server.port)]).status, 200)
        let r = try env.checkConnection()
        let diagnosis = try SmtpDiagnosis(r)
        diagnosis.expect(status: 502, stage: "greeting", kind: "protocol", hintContains: ["does not speak SMTP", "SSH-2.0-OpenSSH_9.2p1"])
        XCTAssertFalse(r.text.contains("secret-build-id"), "more than 80 characters of the banner in the answer: \(r.text)")
        XCTAssertFalse(r.text.contains("\\u001b") || r.text.contains("\\u0000") || r.text.contains("\u{202E}"), r.text)
        for line in diagnosis.transcript where line.contains(" S: ") {
            let said = line.components(separatedBy: " S: ").dropFirst().joined(separator: " S: ")
            XCTAssertLessThanOrEqual(said.unicodeScalars.count, 81, line)
        }
    }
}
