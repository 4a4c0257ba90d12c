import Foundation
import TestSupport
import XCTest

/// The SMTP password through the whole system: encrypted by `openssl pkeyutl` as a
/// curl user would, sealed at rest, used to authenticate, rotated, and never seen
/// in clear in any response, log line or database row; each ciphertext accepted
/// once; a cleared password gone from history for good.
final class SecretsEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    let path = "/api/setup/email_smtp"

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }

    // MARK: - Helpers

    /// The public key and a fresh nonce.
    func transportKey() throws -> (publicKeyPEM: String, nonce: String) {
        let r = try env.admin.request("GET", "/api/setup/email_public_key")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.data?["nonce_expires_in"] as? Int, 600, r.text)
        return (try XCTUnwrap(r.data?["public_key"] as? String), try XCTUnwrap(r.data?["nonce"] as? String))
    }

    /// `{"nonce":…,"secret":…}`, RSA-OAEP-SHA-256 with the openssl command line,
    /// base64 — what the README tells curl users — with a fresh nonce.
    func encrypt(_ password: String) throws -> String {
        let key = try transportKey()
        return try PasswordEncryption.encrypt(password, nonce: key.nonce, publicKeyPEM: key.publicKeyPEM)
    }

    /// A save that sets only the password.
    func savePassword(_ value: String) throws -> HTTPTestClient.Response {
        try env.admin.post(path, json: #"{"data":{"from_address":"a@example.com","smtp_host":"h.example.com","smtp_password":"\#(value)"}}"#)
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

        let cipher = try encrypt(password)
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
        let good = try encrypt("secret")
        var raw = try XCTUnwrap(Data(base64Encoded: good))
        raw[raw.count / 2] ^= 0x01
        let tampered = raw.base64EncodedString()
        let otherKey = try ScriptRunner.run("/bin/sh", ["-c", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout"])
        let smallKey = try ScriptRunner.run("/bin/sh", ["-c", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout"])
        let cases: [(String, String)] = [
            ("tampered", tampered),
            ("another key", try PasswordEncryption.encrypt("secret", nonce: try transportKey().nonce, publicKeyPEM: otherKey)),
            ("a key of the wrong size", try PasswordEncryption.encrypt("secret", nonce: try transportKey().nonce, publicKeyPEM: smallKey)),
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

    // MARK: - Single-use ciphertexts (issue 12)

    func testTheSameCiphertextIsAcceptedOnce() throws {
        let cipher = try encrypt("once-\(UUID().uuidString.prefix(6))")
        let first = try savePassword(cipher)
        XCTAssertEqual(first.status, 200, first.text)
        let version = try currentVersion()

        let replay = try savePassword(cipher)
        XCTAssertEqual(replay.status, 400, replay.text)
        let message = replay.errors?["smtp_password"] ?? ""
        XCTAssertTrue(message.contains("already used") && message.contains("fresh key and nonce"), replay.text)
        XCTAssertEqual(try currentVersion(), version, "nothing was saved")
    }

    func testAnExpiredNonceIsRefused() throws {
        let key = try transportKey()
        let cipher = try PasswordEncryption.encrypt("late", nonce: key.nonce, publicKeyPEM: key.publicKeyPEM)
        // Ten minutes later, as the database sees it (the nonce is base64url: safe in SQL text).
        _ = try sql("UPDATE transport_nonces SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE nonce = '\(key.nonce)'")
        let version = try currentVersion()
        let r = try savePassword(cipher)
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertTrue(r.errors?["smtp_password"]?.contains("expired") ?? false, r.text)
        XCTAssertEqual(try currentVersion(), version)
    }

    func testAPlaintextWithoutTheNonceFramingIsRefused() throws {
        let key = try transportKey()
        for plaintext in ["bare password", #"{"secret":"no nonce"}"#, try PasswordEncryption.framed("x", nonce: "AAAAAAAAAAAAAAAAAAAAAA")] {
            let cipher = try PasswordEncryption.encryptRaw(Array(plaintext.utf8), publicKeyPEM: key.publicKeyPEM)
            let r = try savePassword(cipher)
            XCTAssertEqual(r.status, 400, "\(plaintext): \(r.text)")
            XCTAssertTrue(r.errors?["smtp_password"]?.contains("GET /api/setup/email_public_key") ?? false, r.text)
        }
    }

    func testClearingRemovesThePasswordFromHistoryAndRestoreKeepsItCleared() throws {
        func historyRowsWithASealedPassword() throws -> Int {
            Int(try sql("SELECT COUNT(*) FROM settings_history WHERE JSON_VALUE(snapshot, '$.smtp_password') <> ''")
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let set = try savePassword(try encrypt("to-be-cleared"))
        XCTAssertEqual(set.status, 200, set.text)
        let withPassword = try XCTUnwrap(Int(try XCTUnwrap(set.data?["smtp_settings_version"] as? String)))
        XCTAssertEqual(try env.admin.post(path, json: #"{"data":{"smtp_port":"2525"}}"#).status, 200)
        XCTAssertGreaterThanOrEqual(try historyRowsWithASealedPassword(), 2)

        let cleared = try savePassword("")
        XCTAssertEqual(cleared.status, 200, cleared.text)
        XCTAssertEqual(try historyRowsWithASealedPassword(), 0, "history keeps no sealed password once it is cleared")
        // (Other secrets, such as an OAuth client secret saved by another test, stay sealed in history.)
        XCTAssertFalse(try sql("SELECT JSON_VALUE(snapshot, '$.smtp_password') FROM settings_history").contains("v1:"))
        XCTAssertEqual(try sql("SELECT JSON_VALUE(snapshot, '$.smtp_port') FROM settings_history WHERE version = \(withPassword + 1)")
            .trimmingCharacters(in: .whitespacesAndNewlines), "2525", "the other values stay")
        let listed = try env.admin.request("GET", "/api/setup/email_history?limit=5")
        let versions = listed.json.flatMap { ($0["data"] as? [String: Any])?["versions"] as? [[String: Any]] } ?? []
        XCTAssertEqual(versions.first { $0["version"] as? Int == withPassword }?["password_removed"] as? Bool, true, listed.text)

        let restored = try env.admin.post("/api/setup/email_history/\(withPassword)/restore", json: "")
        XCTAssertEqual(restored.status, 200, restored.text)
        XCTAssertEqual(restored.data?["smtp_password_set"] as? Bool, false)
        let warning = (restored.data?["warnings"] as? [String: String])?["smtp_password"] ?? ""
        XCTAssertTrue(warning.contains("removed from history") && warning.contains("current password state is kept"), restored.text)
        XCTAssertEqual(try sql("SELECT value FROM information WHERE label = 'smtp_password'").trimmingCharacters(in: .whitespacesAndNewlines), "")
    }

    func testRefusesToStartWhenTheKEKFileIsReadableByOthers() throws {
        let keys = try TemporaryDirectory(prefix: "keys")
        let kek = keys.path + "/kek"
        try FileManager.default.copyItem(atPath: env.stateDirectory + "/keys/kek", toPath: kek)
        chmod(kek, 0o600)
        let overrides = ["EMAILSETUP_KEK_FILE": kek]
        let first = try ScriptRunner.runWithStatus(env.binary, ["migrate", "--config", config], environment: overrides)
        XCTAssertEqual(first.status, 0, first.output)
        chmod(kek, 0o644)
        let refused = try ScriptRunner.runWithStatus(env.binary, ["serve", "--config", config, "--socket", keys.path + "/s.sock"], environment: overrides, timeout: 10)
        XCTAssertEqual(refused.status, 2, refused.output)
        let lines = refused.output.split(separator: "\n").filter { $0.hasPrefix("emailsetup:") }
        XCTAssertEqual(lines.count, 1, refused.output)
        XCTAssertTrue(lines.first?.contains(kek) ?? false, refused.output)
        XCTAssertTrue(lines.first?.contains("0644") ?? false, refused.output)
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
