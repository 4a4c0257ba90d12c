import Foundation
import TestSupport
import XCTest

/// `emailsetup send --stored` and `check --stored` against the real database of this
/// run: settings (with a password, sealed by the responder) are saved through the HTTP
/// API, then the CLI reads them with the responder's configuration and key directory
/// and delivers to the aiosmtpd fixture over STARTTLS with AUTH.
final class CLIStoredSettingsTests: XCTestCase {
    var env: EndToEndEnvironment!
    let path = "/api/setup/email_smtp"

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }

    /// The password encrypted for the responder as the browser does (framed with a fresh nonce, RSA-OAEP, SHA-256, base64).
    func transportCiphertext(_ password: String, directory: TemporaryDirectory) throws -> String {
        let key = try env.admin.request("GET", "/api/setup/email_public_key")
        XCTAssertEqual(key.status, 200, key.text)
        let pem = try XCTUnwrap(key.data?["public_key"] as? String)
        let nonce = try XCTUnwrap(key.data?["nonce"] as? String)
        let keyFile = directory.path + "/transport.pem"
        try pem.write(toFile: keyFile, atomically: true, encoding: .utf8)
        let script = "openssl pkeyutl -encrypt -pubin -inkey \"$1\" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 | base64 -w0"
        return try ScriptRunner.run("/bin/sh", ["-c", script, "sh", keyFile],
                                    input: Array(try PasswordEncryption.framed(password, nonce: nonce).utf8))
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Saves `data` (settings labels → values) through the API.
    func save(_ data: [String: String]) throws {
        let current = try env.admin.request("GET", path)
        XCTAssertEqual(current.status, 200, current.text)
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["data": data]), as: UTF8.self)
        let saved = try env.admin.post(path, json: body, headers: ["If-Match": current.headers["etag"] ?? "*"])
        XCTAssertEqual(saved.status, 200, saved.text)
    }

    func testSendAndCheckWithStoredSettings() throws {
        let server = try SmtpTestServer(mode: .starttls, user: "alice", password: "s3cret")
        let certificates = try SmtpTestCertificates.shared()
        let directory = try TemporaryDirectory(prefix: "cli-stored")
        try save([
            "from_address": "cli-stored@example.com", "smtp_host": "localhost", "smtp_port": String(server.port),
            "smtp_connection_type": "STARTTLS", "smtp_authentication_type": "Plain", "smtp_username": "alice",
            "smtp_password": try transportCiphertext("s3cret", directory: directory),
            "smtp_tls_verify": "Full", "smtp_tls_ca_pem": try certificates.pem("ca"),
            "smtp_connect_timeout": "5", "smtp_command_timeout": "10",
        ])
        // Leave no password behind for the tests that follow (they expect none is set).
        addTeardownBlock { [self] in
            try? save(["smtp_password": "", "smtp_authentication_type": "None", "smtp_host": "localhost", "smtp_port": "25",
                       "smtp_connection_type": "None", "smtp_tls_ca_pem": ""])
        }

        let subject = "Gespeicherte Einstellungen – Prüfung"
        let send = try ScriptRunner.runWithStatus(env.binary, ["send", "--stored", "--config", config, "--to", "ops@example.com",
                                                               "--to", "desk@example.com", "--subject", subject, "--json"], timeout: 60)
        XCTAssertEqual(send.status, 0, send.output)
        XCTAssertFalse(send.output.contains("s3cret"), send.output)
        let received = try XCTUnwrap(server.waitForMessages(count: 1).first)
        XCTAssertEqual(received.mailFrom, "cli-stored@example.com")
        XCTAssertEqual(received.recipients, ["ops@example.com", "desk@example.com"])
        XCTAssertEqual(received.login, "alice", "the sealed password was opened with the responder's keys")
        XCTAssertTrue(received.tls)
        XCTAssertTrue(received.text.contains("\r\nSubject: =?utf-8?"), received.text)
        XCTAssertTrue(received.text.contains("\r\nFrom: cli-stored@example.com\r\n"), received.text)

        let check = try ScriptRunner.runWithStatus(env.binary, ["check", "--stored", "--config", config, "--helo", "cli.example.org"], timeout: 60)
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("check passed: localhost:\(server.port)"), check.output)
        XCTAssertTrue(check.output.contains("auth: PLAIN"), check.output)
        XCTAssertTrue(check.output.contains("EHLO cli.example.org"), check.output)

        // Saved settings and typed-in ones are not mixed.
        let mixed = try ScriptRunner.runWithStatus(env.binary, ["check", "--stored", "--config", config, "--host", "elsewhere.example"])
        XCTAssertEqual(mixed.status, 2, mixed.output)
        XCTAssertTrue(mixed.output.contains("leave out --host"), mixed.output)
    }

    func testStoredWithAnUnreachableDatabaseIsExitTwo() throws {
        let directory = try TemporaryDirectory(prefix: "cli-stored-db")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let broken = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("db_socket") ? "db_socket = \(directory.path)/no-such-mariadb.sock" : String($0) }
            .joined(separator: "\n")
        let brokenConfig = directory.path + "/emailsetup.conf"
        try broken.write(toFile: brokenConfig, atomically: true, encoding: .utf8)
        let result = try ScriptRunner.runWithStatus(env.binary, ["check", "--stored", "--config", brokenConfig], timeout: 60)
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("emailsetup check: --stored: cannot reach the database configured in \(brokenConfig)"), result.output)
    }
}
