@testable import EmailSetupFCGI
import Foundation
import Logging
import Storage
import XCTest

/// `db_ssl_ca`, `db_ssl_cert`, `db_ssl_key`, `db_ssl_verify`: parsing, their one-line
/// refusals, the start-up warning when verification is off, and the 503 that names
/// the setting to fix.
final class DatabaseTLSConfigTests: XCTestCase {
    private func file(_ text: String, suffix: String = ".conf") throws -> String {
        let path = NSTemporaryDirectory() + "emailsetup-tls-test-\(UUID().uuidString)\(suffix)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func load(_ lines: String, _ environment: [String: String] = [:]) throws -> ResponderConfig {
        try ResponderConfig.load(path: try file(lines), environment: environment)
    }

    private func assertProblem(_ lines: String, naming key: String, saying words: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertThrowsError(try load(lines), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("config: \(key) = "), text, file: file, line: line)
            XCTAssertTrue(text.contains(words), text, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), file: file, line: line)
        }
    }

    func testNoTLSSettingsMeanNoTLS() throws {
        XCTAssertNil(try load("db_host = db1.example.com\n").database.tls)
        XCTAssertNil(try load("db_socket = /run/mysqld/mysqld.sock\n").databaseTLSWarning)
    }

    func testACAFileTurnsTLSOnWithVerification() throws {
        let ca = try file("-----BEGIN CERTIFICATE-----\n", suffix: ".pem")
        let config = try load("db_host = db1.example.com\ndb_ssl_ca = \(ca)\n")
        XCTAssertEqual(config.database.tls, DatabaseConfiguration.TLS(caFile: ca, verifyServer: true))
        XCTAssertNil(config.databaseTLSWarning)
        // The environment overrides as for every setting.
        let off = try load("db_host = db1.example.com\ndb_ssl_ca = \(ca)\n", ["EMAILSETUP_DB_SSL_VERIFY": "no"])
        XCTAssertEqual(off.database.tls?.verifyServer, false)
        let warning = try XCTUnwrap(off.databaseTLSWarning)
        XCTAssertTrue(warning.hasPrefix("db_ssl_verify = no: database TLS verification is off for the host name"), warning)
    }

    func testClientCertificateAndKeyGoTogether() throws {
        let ca = try file("ca", suffix: ".pem"), cert = try file("cert", suffix: ".pem"), key = try file("key", suffix: ".key")
        let config = try load("db_host = db1\ndb_ssl_ca = \(ca)\ndb_ssl_cert = \(cert)\ndb_ssl_key = \(key)\n")
        XCTAssertEqual(config.database.tls, DatabaseConfiguration.TLS(caFile: ca, certificateFile: cert, keyFile: key))
        try assertProblem("db_host = db1\ndb_ssl_cert = \(cert)\n", naming: "db_ssl_cert", saying: "set db_ssl_key too")
        try assertProblem("db_host = db1\ndb_ssl_key = \(key)\n", naming: "db_ssl_key", saying: "set db_ssl_cert too")
    }

    func testVerifyAloneEncryptsWithoutVerifyingAndSaysSo() throws {
        let config = try load("db_host = db1\ndb_ssl_verify = no\n")
        XCTAssertEqual(config.database.tls, DatabaseConfiguration.TLS(verifyServer: false))
        let warning = try XCTUnwrap(config.databaseTLSWarning)
        XCTAssertTrue(warning.contains("verification is off") && warning.contains("set db_ssl_ca"), warning)
        XCTAssertEqual(try load("db_host = db1\ndb_ssl_verify = yes\n").database.tls, DatabaseConfiguration.TLS())
    }

    func testBadTLSSettingsStopStartUpWithOneLine() throws {
        try assertProblem("db_host = db1\ndb_ssl_ca = /nonexistent/ca.pem\n", naming: "db_ssl_ca", saying: "cannot read this file")
        try assertProblem("db_host = db1\ndb_ssl_verify = maybe\n", naming: "db_ssl_verify", saying: "must be yes or no")
        let ca = try file("ca", suffix: ".pem")
        try assertProblem("db_socket = /run/mysqld/mysqld.sock\ndb_ssl_ca = \(ca)\n", naming: "db_ssl_ca", saying: "TLS needs db_host")
    }

    func testAStorageRefusalNamingASettingIsA503WithItsLine() throws {
        let line = "database TLS: the certificate of db1:3306 is not trusted by db_ssl_ca = /etc/ca.pem (self-signed certificate): set db_ssl_ca to the CA certificate that signed the server's"
        let response = ErrorResponses.response(for: StorageError(.unavailable, line, mariadbErrno: 2026, setting: "db_ssl_ca"),
                                               logger: Logger(label: "test"))
        let plain = ErrorResponses.response(for: StorageError(.unavailable, "mysql_real_connect: gone", mariadbErrno: 2002),
                                            logger: Logger(label: "test"))
        XCTAssertEqual(ErrorResponses.apiError(StorageError(.unavailable, line, setting: "db_ssl_ca")),
                       APIError(503, "database", "The settings database cannot be reached: \(line)."))
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(plain.status, 503)
        XCTAssertEqual(ErrorResponses.apiError(StorageError(.unavailable, line, setting: "db_ssl_ca")).headers.first?.0, "Retry-After")
        XCTAssertEqual(ErrorResponses.apiError(StorageError(.unavailable, "mysql_real_connect: gone", mariadbErrno: 2002)), .databaseUnavailable)
    }
}
