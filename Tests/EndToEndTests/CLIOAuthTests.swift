import Foundation
import TestSupport
import XCTest

/// `emailsetup oauth login|status|sign-out --stored` against the suite's authorization
/// server (Microsoft flavour) and its Exchange-like SMTP server: a server with no
/// browser signs in with the device flow, then `check --stored` signs in to SMTP with
/// XOAUTH2 using the stored refresh token.
final class CLIOAuthTests: XCTestCase {
    var env: EndToEndEnvironment!
    var oauth: [String: String] = [:]

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        let all = ProcessInfo.processInfo.environment
        for name in ["URL", "CA", "CLIENT_ID", "CLIENT_SECRET", "TENANT", "USER", "SMTP_PORT"] {
            guard let value = all["EMAILSETUP_TEST_OAUTH_" + name], !value.isEmpty else {
                XCTFail("EMAILSETUP_TEST_OAUTH_\(name) unset: run the suite with scripts/test, which starts the OAuth servers")
                throw XCTSkip("OAuth servers not started")
            }
            oauth[name] = value
        }
        _ = try control("/_test/reset")
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }

    /// POSTs a test control of the authorization server.
    @discardableResult
    func control(_ path: String, _ form: [String] = []) throws -> String {
        try ScriptRunner.run("/usr/bin/curl", ["-sS", "--fail", "--cacert", oauth["CA"]!, "-X", "POST"]
                             + form.flatMap { ["--data-urlencode", $0] } + [oauth["URL"]! + path])
    }

    func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try ScriptRunner.runWithStatus(env.binary, arguments + ["--config", config], timeout: 60)
        return (result.status, result.output)
    }

    func testDeviceLoginThenCheckWithTheStoredTokenThenSignOut() throws {
        let fields: [String: String] = [
            "from_address": oauth["USER"]!, "smtp_host": "127.0.0.1", "smtp_port": oauth["SMTP_PORT"]!,
            "smtp_connection_type": "STARTTLS", "smtp_tls_verify": "Full",
            "smtp_tls_ca_pem": try String(contentsOfFile: oauth["CA"]!, encoding: .utf8),
            "smtp_authentication_type": "XOAUTH2", "smtp_username": oauth["USER"]!,
            "oauth_provider": "Microsoft", "oauth_grant": "authorization_code", "oauth_tenant": oauth["TENANT"]!,
            "oauth_client_id": oauth["CLIENT_ID"]!, "smtp_connect_timeout": "5", "smtp_command_timeout": "10",
        ]
        try env.saveSettings(fields.merging(["oauth_client_secret": try env.admin.encryptedPassword(oauth["CLIENT_SECRET"]!)]) { $1 })
        addTeardownBlock { [self] in
            _ = try? env.saveSettings(["smtp_authentication_type": "None"])
        }

        let notYet = try cli(["check", "--stored"])
        XCTAssertEqual(notYet.status, 3, notYet.output)
        XCTAssertTrue(notYet.output.contains("oauth login"), "the hint says how to sign in: \(notYet.output)")

        let login = try ManagedProcess(executable: env.binary, arguments: ["oauth", "login", "--stored", "--config", config])
        let prompt = try login.waitForLine(prefix: "To sign in", timeout: 30)
        let code = try XCTUnwrap(prompt.components(separatedBy: "enter the code ").last?.trimmingCharacters(in: .whitespaces))
        XCTAssertFalse(code.isEmpty, prompt)
        try control("/_test/approve_device", ["user_code=\(code)"])
        let done = try login.waitForLine(prefix: "Signed in as", timeout: 30)
        XCTAssertTrue(done.contains(oauth["USER"]!), done)
        XCTAssertEqual(try login.waitForExit(timeout: 10).status, 0)

        let status = try cli(["oauth", "status", "--stored"])
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("signed in as \(oauth["USER"]!)"), status.output)
        XCTAssertEqual(try env.admin.request("GET", "/api/setup/email_smtp").data?["oauth_account"] as? String, oauth["USER"])

        let check = try cli(["check", "--stored"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("auth: XOAUTH2"), check.output)
        XCTAssertFalse(check.output.contains(oauth["CLIENT_SECRET"]!))
        let cached = try cli(["oauth", "status", "--stored"])
        XCTAssertTrue(cached.output.contains("access token: valid for"), cached.output)

        let out = try cli(["oauth", "sign-out", "--stored"])
        XCTAssertEqual(out.status, 0, out.output)
        XCTAssertTrue(try cli(["oauth", "status", "--stored"]).output.contains("not signed in"))
        XCTAssertEqual(try env.admin.request("GET", "/api/setup/email_smtp").data?["oauth_account"] as? String, "")
    }

    func testLoginRefusesSettingsThatAreNotOAuthAndNeedsStored() throws {
        try env.saveSettings(["smtp_authentication_type": "None"])
        let refused = try cli(["oauth", "login", "--stored"])
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.output.contains("not OAuth 2.0"), refused.output)
        let usage = try ScriptRunner.runWithStatus(env.binary, ["oauth", "status"], timeout: 30)
        XCTAssertEqual(usage.status, 2, usage.output)
        XCTAssertTrue(usage.output.contains("--stored is required"), usage.output)
    }
}
