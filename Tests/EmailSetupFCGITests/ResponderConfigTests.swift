@testable import EmailSetupFCGI
import Foundation
import Storage
import XCTest

final class ResponderConfigTests: XCTestCase {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "emailsetup-test-\(UUID().uuidString).conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testFileAndEnvironmentOverride() throws {
        let path = try write("# comment\ndb_socket = /run/db.sock\nworkers = 3\nadmins = alice, bob\n")
        let c = try ResponderConfig.load(path: path, environment: ["EMAILSETUP_WORKERS": "5"])
        XCTAssertEqual(c.database.socket, "/run/db.sock")
        XCTAssertEqual(c.workers, 5)
        XCTAssertEqual(c.access.admins, ["alice", "bob"])
        XCTAssertEqual(c.access.mode, .remoteUser)
    }

    /// The KEK (issue 17): `kek_file`, else the systemd credential when systemd passed
    /// it, else `<key_dir>/kek`; only the last is a directory the responder may create.
    func testTheKEKFileIsKekFileThenTheSystemdCredentialThenKeyDir() throws {
        let path = try write("db_socket = /run/db.sock\nkey_dir = /srv/keys/\n")
        let byDefault = try ResponderConfig.load(path: path, environment: [:]).kekLocation
        XCTAssertEqual(byDefault, KEKLocation(path: "/srv/keys/kek", origin: .keyDirectory))
        let credentials = NSTemporaryDirectory() + "creds-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: credentials) }
        XCTAssertEqual(try ResponderConfig.load(path: path, environment: ["CREDENTIALS_DIRECTORY": credentials]).kekLocation, byDefault,
                       "a credentials directory without emailsetup-kek changes nothing")
        FileManager.default.createFile(atPath: credentials + "/emailsetup-kek", contents: Data())
        XCTAssertEqual(try ResponderConfig.load(path: path, environment: ["CREDENTIALS_DIRECTORY": credentials]).kekLocation,
                       KEKLocation(path: credentials + "/emailsetup-kek", origin: .systemdCredential))
        XCTAssertEqual(try ResponderConfig.load(path: path, environment: ["CREDENTIALS_DIRECTORY": credentials, "EMAILSETUP_KEK_FILE": "/etc/emailsetup/kek"]).kekLocation,
                       KEKLocation(path: "/etc/emailsetup/kek", origin: .configured))
    }

    func testDeniedNetworksDefaultToLinkLocalAndMayBeEmptied() throws {
        let path = try write("db_socket = /run/db.sock\n")
        XCTAssertEqual(try ResponderConfig.load(path: path, environment: [:]).smtpDeniedNetworks.map(\.description), ["169.254.0.0/16", "fe80::/10"])
        XCTAssertEqual(try ResponderConfig.load(path: path, environment: ["EMAILSETUP_SMTP_DENIED_NETWORKS": ""]).smtpDeniedNetworks, [])
        let custom = try write("db_socket = /run/db.sock\nsmtp_denied_networks = 10.0.0.0/8, fd00:ec2::254\n")
        XCTAssertEqual(try ResponderConfig.load(path: custom, environment: [:]).smtpDeniedNetworks.map(\.description), ["10.0.0.0/8", "fd00:ec2::254/128"])
        let bad = try write("db_socket = /run/db.sock\nsmtp_denied_networks = 169.254.0.0/16, 10.0.0.1/8\n")
        XCTAssertThrowsError(try ResponderConfig.load(path: bad, environment: [:])) { error in
            let line = "\(error)"
            XCTAssertTrue(line.contains("smtp_denied_networks") && line.contains("line 2") && line.contains("10.0.0.0/8"), line)
        }
    }

    func testOneClearLineNamingTheSetting() throws {
        let path = try write("db_socket = /x\ndb_port = abc\n")
        XCTAssertThrowsError(try ResponderConfig.load(path: path, environment: [:])) { error in
            let line = "\(error)"
            XCTAssertTrue(line.contains("db_port"), line)
            XCTAssertTrue(line.contains("line 2"), line)
            XCTAssertFalse(line.contains("\n"))
        }
        let unknown = try write("db_socket = /x\ndb_sokcet = /y\n")
        XCTAssertThrowsError(try ResponderConfig.load(path: unknown, environment: [:])) { XCTAssertTrue("\($0)".contains("db_sokcet")) }
        XCTAssertThrowsError(try ResponderConfig.load(path: "/nonexistent/emailsetup.conf", environment: [:])) {
            XCTAssertTrue("\($0)".contains("/nonexistent/emailsetup.conf"))
        }
        let noDB = try write("workers = 2\n")
        XCTAssertThrowsError(try ResponderConfig.load(path: noDB, environment: [:])) { XCTAssertTrue("\($0)".contains("db_socket")) }
        XCTAssertThrowsError(try ResponderConfig.load(path: noDB, environment: ["EMAILSETUP_DB_HOST": "db", "EMAILSETUP_AUTH": "maybe"])) {
            XCTAssertTrue("\($0)".contains("auth"))
        }
    }

    func testRetentionDefaultsOverridesAndBadValues() throws {
        let path = try write("db_socket = /x\nhistory_keep = 20\n")
        let defaults = try ResponderConfig.load(path: try write("db_socket = /x\n"), environment: [:])
        XCTAssertEqual([defaults.historyKeep, defaults.auditKeepDays], [500, 365])
        let c = try ResponderConfig.load(path: path, environment: ["EMAILSETUP_AUDIT_KEEP_DAYS": "30"])
        XCTAssertEqual([c.historyKeep, c.auditKeepDays], [20, 30])
        for (key, bad) in [("history_keep", "0"), ("history_keep", "many"), ("audit_keep_days", "-1"), ("audit_keep_days", "40000")] {
            XCTAssertThrowsError(try ResponderConfig.load(path: path, environment: ["EMAILSETUP_" + key.uppercased(): bad])) { error in
                let line = "\(error)"
                XCTAssertTrue(line.contains(key) && line.contains("\"\(bad)\"") && line.contains("EMAILSETUP_"), line)
                XCTAssertFalse(line.contains("\n"))
            }
        }
    }

    /// Issue 17: a Galera deployment waits out a node's eviction (DECISIONS "Galera").
    func testDatabaseTimeoutDefaultsToTwoSecondsAndIsBounded() throws {
        let path = try write("db_host = 127.0.0.1\ndb_timeout = 10\n")
        XCTAssertEqual(try ResponderConfig.load(path: try write("db_socket = /x\n"), environment: [:]).database.timeout, 2)
        XCTAssertEqual(try ResponderConfig.load(path: path, environment: [:]).database.timeout, 10)
        for bad in ["1", "61", "soon"] {
            XCTAssertThrowsError(try ResponderConfig.load(path: path, environment: ["EMAILSETUP_DB_TIMEOUT": bad])) {
                XCTAssertTrue("\($0)".contains("db_timeout"), "\($0)")
            }
        }
    }

    func testSmtpPoolAndOAuthSettingsAndTheirOneLineErrors() throws {
        let path = try write("db_socket = /x\n")
        let defaults = try ResponderConfig.load(path: path, environment: [:])
        XCTAssertEqual(defaults.smtpSessions, 4)
        XCTAssertEqual(defaults.smtpSessionLimit, 170)
        XCTAssertNil(defaults.publicURL)
        let set = try ResponderConfig.load(path: path, environment: [
            "EMAILSETUP_SMTP_SESSIONS": "8", "EMAILSETUP_SMTP_SESSION_LIMIT": "50",
            "EMAILSETUP_PUBLIC_URL": "https://admin.example.com/email-setup/",
            "EMAILSETUP_OAUTH_BASE_OVERRIDE": "https://login.microsoftonline.us",
        ])
        XCTAssertEqual(set.smtpSessions, 8)
        XCTAssertEqual(set.smtpSessionLimit, 50)
        XCTAssertEqual(set.publicURL, "https://admin.example.com/email-setup", "no trailing slash: the redirect URI is appended")
        XCTAssertEqual(set.oauthBaseOverride, "https://login.microsoftonline.us")
        for (key, bad) in [("SMTP_SESSIONS", "0"), ("SMTP_SESSION_LIMIT", "2"), ("PUBLIC_URL", "admin.example.com"),
                           ("PUBLIC_URL", "https://a.example/?x=1"), ("OAUTH_BASE_OVERRIDE", "http://idp.example"),
                           ("OAUTH_BASE_OVERRIDE", "https://idp.example/tenant"), ("OAUTH_CA_FILE", "/nonexistent/ca.pem")] {
            XCTAssertThrowsError(try ResponderConfig.load(path: path, environment: ["EMAILSETUP_" + key: bad]), key) { error in
                XCTAssertTrue("\(error)".contains(key.lowercased()), "\(error)")
            }
        }
    }

    func testHostPortParsing() {
        XCTAssertEqual(ServeCommand.parseHostPort("127.0.0.1:9000").map { "\($0.0)|\($0.1)" }, "127.0.0.1|9000")
        XCTAssertEqual(ServeCommand.parseHostPort("[::1]:9000").map { "\($0.0)|\($0.1)" }, "::1|9000")
        XCTAssertNil(ServeCommand.parseHostPort("9000"))
        XCTAssertNil(ServeCommand.parseHostPort("host:70000"))
    }

    func testCGIEnvironmentBecomesRequest() {
        let r = Request(cgiEnvironment: ["REQUEST_METHOD": "post", "REQUEST_URI": "/api/setup/email_test/a%40b.example?x=1",
                                         "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_LENGTH": "2", "REMOTE_USER": "",
                                         "HTTPS": "on"], body: Array("{}".utf8))
        XCTAssertEqual(r.method, "POST")
        XCTAssertEqual(r.path, "/api/setup/email_test/a%40b.example")
        XCTAssertEqual(r.query, "x=1")
        XCTAssertEqual(r.headers["x-requested-with"], "EmailSetup")
        XCTAssertNil(r.remoteUser)
        XCTAssertEqual(r.scheme, "https")
        XCTAssertEqual(r.declaredContentLength, 2)
    }

    /// Found by Fuzz/FastCGIRequest (regress-non-ascii-header-name): the byte-level
    /// header-name mapping left a non-ASCII capital ("Ļ") upper case.
    func testHeaderNamesAreLowerCaseEvenWithNonASCIIBytes() {
        let r = Request(cgiEnvironment: ["HTTP_X_REQUESTĻ_WITH": "x", "HTTP_IF_MATCH": "\"3\""], body: [])
        XCTAssertEqual(Set(r.headers.keys), ["x-requestļ-with", "if-match"])
        XCTAssertTrue(r.headers.keys.allSatisfy { $0 == $0.lowercased() })
    }
}
