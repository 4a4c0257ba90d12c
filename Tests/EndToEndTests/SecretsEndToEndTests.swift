import Foundation
import TestSupport
import XCTest

/// The SMTP password through the whole system: encrypted by `openssl pkeyutl` as a
/// curl user would, sealed at rest, used to authenticate, rotated, and never seen
/// in clear in any response, log line or database row.
final class SecretsEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    let path = "/api/setup/email_smtp"

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }

    // MARK: - Helpers

    func publicKeyPEM() throws -> String {
        let r = try env.admin.request("GET", "/api/setup/email_public_key")
        XCTAssertEqual(r.status, 200, r.text)
        return try XCTUnwrap(r.data?["public_key"] as? String)
    }

    /// RSA-OAEP-SHA-256 with the openssl command line, base64 — what the README tells curl users.
    func encrypt(_ password: String, keyPEM: String) throws -> String {
        try PasswordEncryption.encrypt(password, publicKeyPEM: keyPEM)
    }

    func databaseSocket() throws -> String {
        let lines = try env.script("scripts/lib/mariadb.sh", ["env", env.stateDirectory])
        let line = try XCTUnwrap(lines.split(separator: "\n").first { $0.contains("EMAILSETUP_DB_SOCKET=") })
        return String(line.split(separator: "=", maxSplits: 1)[1]).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
    }

    /// Every row of every table of the application database, as text.
    func databaseDump() throws -> String {
        try ScriptRunner.run("/usr/bin/mariadb-dump", ["--no-defaults", "--socket", try databaseSocket(), "-uroot",
                                                       "--skip-extended-insert", "--hex-blob", "emailsetup"])
    }

    func sql(_ statement: String) throws -> String {
        try ScriptRunner.run("/usr/bin/mariadb", ["--no-defaults", "--socket", try databaseSocket(), "-uroot", "-N", "-B", "emailsetup", "-e", statement])
    }

    func currentVersion() throws -> String {
        try XCTUnwrap(env.admin.request("GET", path).headers["etag"])
    }

    // MARK: - Tests

    func testFullCycleUsesThePasswordAndNeverRevealsIt() throws {
        let password = "Cl3ar-ünique-\(UUID().uuidString.prefix(8))"
        let server = try SmtpTestServer(mode: .plain, user: "mailer", password: password, authRequireTLS: false)
        defer { server.stop() }
        var bodies: [String] = []
        func record(_ r: HTTPTestClient.Response) -> HTTPTestClient.Response { bodies.append(r.text); return r }

        let cipher = try encrypt(password, keyPEM: try publicKeyPEM())
        let saved = record(try env.admin.post(path, json: """
            {"data":{"from_address":"app@example.com","smtp_host":"127.0.0.1","smtp_port":"\(server.port)",
            "smtp_connection_type":"None","smtp_authentication_type":"Plain","smtp_username":"mailer",
            "smtp_password":"\(cipher)","smtp_connect_timeout":"3","smtp_command_timeout":"5"}}
            """))
        XCTAssertEqual(saved.status, 200, saved.text)
        XCTAssertEqual(saved.data?["smtp_password_set"] as? Bool, true)
        let stored = try sql("SELECT value FROM information WHERE label = 'smtp_password'")
        XCTAssertTrue(stored.hasPrefix("v1:"), stored)

        let got = record(try env.admin.request("GET", path))
        XCTAssertEqual(got.data?["smtp_password_set"] as? Bool, true)
        XCTAssertNil(got.data?["smtp_password"])

        // The password works: the server saw the login, and again after each of three rotations.
        for round in 0...3 {
            if round > 0 {
                let rotated = try ScriptRunner.runWithStatus(env.binary, ["rotate-key", "--config", config])
                XCTAssertEqual(rotated.status, 0, rotated.output)
                XCTAssertTrue(rotated.output.contains("re-sealed"), rotated.output)
                XCTAssertNotEqual(try sql("SELECT value FROM information WHERE label = 'smtp_password'"), stored)
            }
            let sent = record(try env.admin.post("/api/setup/email_test/ops%40example.com", json: "{}"))
            XCTAssertEqual(sent.status, 200, "round \(round): \(sent.text)")
        }
        let messages = try server.waitForMessages(count: 4)
        XCTAssertEqual(messages.map(\.login), Array(repeating: "mailer", count: 4))

        _ = record(try env.admin.request("GET", "/api/setup/email_history"))
        _ = record(try env.admin.request("GET", "/api/setup/email_audit"))
        _ = record(try env.admin.post("/api/setup/email_check", json: "{}"))

        let plainB64 = Data("\u{0}mailer\u{0}\(password)".utf8).base64EncodedString()
        let passwordB64 = Data(password.utf8).base64EncodedString()
        let log = (try? String(contentsOfFile: env.stateDirectory + "/responder.log", encoding: .utf8)) ?? ""
        XCTAssertFalse(log.isEmpty)
        let dump = try databaseDump()
        XCTAssertTrue(dump.contains("smtp_password"), "the dump should include the information table")
        for (place, text) in [("responses", bodies.joined(separator: "\n")), ("responder log", log), ("database", dump)] {
            for needle in [password, plainB64, passwordB64] {
                XCTAssertFalse(text.contains(needle), "the clear password (or its base64) appears in the \(place)")
            }
        }
    }

    func testUndecryptableCiphertextsAreFieldErrorsAndNothingIsStored() throws {
        let before = try currentVersion()
        let good = try encrypt("secret", keyPEM: try publicKeyPEM())
        var raw = try XCTUnwrap(Data(base64Encoded: good))
        raw[raw.count / 2] ^= 0x01
        let tampered = raw.base64EncodedString()
        let otherKey = try ScriptRunner.run("/bin/sh", ["-c", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout"])
        let smallKey = try ScriptRunner.run("/bin/sh", ["-c", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout"])
        let cases: [(String, String)] = [
            ("tampered", tampered),
            ("another key", try encrypt("secret", keyPEM: otherKey)),
            ("a key of the wrong size", try encrypt("secret", keyPEM: smallKey)),
            ("truncated base64", String(good.prefix(good.count / 2))),
            ("not base64", "this is not base64 at all!"),
        ]
        for (name, value) in cases {
            let r = try env.admin.post(path, json: #"{"data":{"from_address":"a@example.com","smtp_host":"h.example.com","smtp_password":"\#(value)"}}"#)
            XCTAssertEqual(r.status, 400, "\(name): \(r.text)")
            let message = r.errors?["smtp_password"] ?? ""
            XCTAssertFalse(message.isEmpty, "\(name): \(r.text)")
            XCTAssertTrue(message.contains("RSA-OAEP"), "\(name) should say how to encrypt: \(message)")
        }
        XCTAssertEqual(try currentVersion(), before, "nothing was saved")
    }

    func testRefusesToStartWhenAKeyFileIsReadableByOthers() throws {
        let keys = try TemporaryDirectory(prefix: "keys")
        let dir = keys.path + "/k"
        let overrides = ["EMAILSETUP_KEY_DIR": dir]
        let first = try ScriptRunner.runWithStatus(env.binary, ["migrate", "--config", config], environment: overrides)
        XCTAssertEqual(first.status, 0, first.output)
        let privateKey = dir + "/transport-private.pem"
        XCTAssertTrue(FileManager.default.fileExists(atPath: privateKey))
        chmod(privateKey, 0o644)
        let refused = try ScriptRunner.runWithStatus(env.binary, ["serve", "--config", config, "--socket", keys.path + "/s.sock"], environment: overrides, timeout: 10)
        XCTAssertEqual(refused.status, 2, refused.output)
        let lines = refused.output.split(separator: "\n").filter { $0.hasPrefix("emailsetup:") }
        XCTAssertEqual(lines.count, 1, refused.output)
        XCTAssertTrue(lines.first?.contains("transport-private.pem") ?? false, refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: keys.path + "/s.sock"), "it must not start serving")
    }

    func testLegacyValueOpensAndIsResealedOnTheNextSave() throws {
        let password = "legacy-\(UUID().uuidString.prefix(6))"
        let server = try SmtpTestServer(mode: .plain, user: "old", password: password, authRequireTLS: false)
        defer { server.stop() }
        let dir = try TemporaryDirectory(prefix: "legacy")
        let keyFile = dir.path + "/legacy.key"
        try "original system passphrase\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile, 0o600)
        let legacy = try ScriptRunner.run("/bin/sh", ["-c", "openssl enc -aes256 -md sha1 -a -salt -pass file:'\(keyFile)' 2>/dev/null | tr -d '\\n'"],
                                          input: Array(password.utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(legacy.hasPrefix("U2FsdGVkX1"), legacy)

        let saved = try env.admin.post(path, json: """
            {"data":{"from_address":"app@example.com","smtp_host":"127.0.0.1","smtp_port":"\(server.port)",
            "smtp_connection_type":"None","smtp_authentication_type":"Login","smtp_username":"old",
            "smtp_connect_timeout":"3","smtp_command_timeout":"5"}}
            """)
        XCTAssertEqual(saved.status, 200, saved.text)
        // As an existing installation's table would hold it (the row may not exist yet
        // when this test runs alone: the save above set no password).
        _ = try sql("INSERT INTO information (label, value) VALUES ('smtp_password', '\(legacy)') ON DUPLICATE KEY UPDATE value = VALUES(value)")

        // The ordinary responder has no legacy key: a save keeps the value but says
        // the password cannot be used, instead of saving as if all were well.
        let unopened = try env.admin.post(path, json: #"{"data":{"smtp_connect_timeout":"4"}}"#)
        XCTAssertEqual(unopened.status, 200, unopened.text)
        let warning = (unopened.data?["warnings"] as? [String: String])?["smtp_password"] ?? ""
        XCTAssertTrue(warning.contains("legacy_key_file") && warning.contains("AUTH"), unopened.text)
        XCTAssertEqual(try sql("SELECT value FROM information WHERE label = 'smtp_password'").trimmingCharacters(in: .whitespacesAndNewlines), legacy)

        // A responder configured with the legacy key file (CGI: one process, same database).
        func cgi(_ method: String, _ uri: String, body: String = "") throws -> String {
            try ScriptRunner.runWithStatus(env.binary, [], environment: [
                "REQUEST_METHOD": method, "REQUEST_URI": uri, "REMOTE_USER": "admin", "GATEWAY_INTERFACE": "CGI/1.1",
                "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": String(body.utf8.count),
                "EMAILSETUP_CONFIG": config, "EMAILSETUP_LEGACY_KEY_FILE": keyFile,
            ], input: Array(body.utf8)).output
        }
        let sent = try cgi("POST", "/api/setup/email_test/ops%40example.com")
        XCTAssertTrue(sent.contains("Status: 200"), sent)
        XCTAssertEqual(try server.waitForMessages(count: 1).first?.login, "old")

        let resave = try cgi("POST", path, body: #"{"data":{"smtp_command_timeout":"6"}}"#)
        XCTAssertTrue(resave.contains("Status: 200"), resave)
        XCTAssertTrue(try sql("SELECT value FROM information WHERE label = 'smtp_password'").hasPrefix("v1:"))
        // And the ordinary responder (no legacy key) can use it now.
        XCTAssertEqual(try env.admin.post("/api/setup/email_test/ops%40example.com", json: "{}").status, 200)
    }
}
