import Foundation
import Storage
import TestSupport
import XCTest

/// The database over TLS (issue 17) against a real MariaDB that accepts nothing but
/// TLS (`TLSDatabaseServer`: a test CA, `require_secure_transport=ON`, accounts with
/// `REQUIRE SSL` and `REQUIRE X509`), plus the test server of the run, which has no
/// TLS at all, for the "never in clear" rule.
final class DatabaseTLSTests: XCTestCase {
    private static let server = Result { try TLSDatabaseServer.start() }

    override class func tearDown() {
        (try? server.get())?.stop()
        super.tearDown()
    }

    private func configuration(host: String = "127.0.0.1", user: String = TLSDatabaseServer.tlsUser,
                               tls: DatabaseConfiguration.TLS?) throws -> DatabaseConfiguration {
        let server = try Self.server.get()
        return DatabaseConfiguration(endpoint: .tcp(host: host, port: server.port), user: user, password: server.password,
                                     database: TLSDatabaseServer.databaseName, connectTimeout: 5, readTimeout: 5, writeTimeout: 5,
                                     tls: tls)
    }

    /// The TLS version of the connection's session, as the server sees it ("" in clear).
    private func sessionTLSVersion(_ connection: MariaDBConnection) throws -> String {
        let rows = try connection.query("SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'")
        return rows.first?["v"]?.textValue ?? ""
    }

    /// The connect must fail with `code`; returns the error.
    private func refused(_ configuration: DatabaseConfiguration, _ code: StorageError.Code,
                         file: StaticString = #filePath, line: UInt = #line) -> StorageError? {
        let connection = MariaDBConnection(configuration: configuration)
        defer { connection.close() }
        do {
            try connection.connect()
            XCTFail("connected, but should have been refused: \(configuration)", file: file, line: line)
            return nil
        } catch let error as StorageError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "one line: \(error.message)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected a StorageError, got \(error)", file: file, line: line)
            return nil
        }
    }

    func testConnectsWithTheTestCAAndTheSessionIsEncrypted() throws {
        let server = try Self.server.get()
        let connection = MariaDBConnection(configuration: try configuration(tls: .init(caFile: server.caFile)))
        defer { connection.close() }
        XCTAssertTrue(try sessionTLSVersion(connection).hasPrefix("TLSv1."), "the server sees a TLS session")
        // The project's own tables, over TLS.
        try SchemaMigrations.migrate(connection)
        XCTAssertEqual(try connection.query("SELECT COUNT(*) AS n FROM schema_migrations").first?["n"]?.intValue.map { $0 > 0 }, true)
    }

    func testPlaintextIsRefusedByTheServerWithAHintToSetTheCA() throws {
        let error = try XCTUnwrap(refused(try configuration(tls: nil), .configuration))
        XCTAssertEqual(error.mariadbErrno, 1045, "\(error)")
        XCTAssertTrue(error.message.contains("set db_ssl_ca"), error.message)
    }

    func testACertificateFromAnotherCAIsRefusedNamingDbSslCa() throws {
        let server = try Self.server.get()
        let error = try XCTUnwrap(refused(try configuration(tls: .init(caFile: server.otherCAFile)), .unavailable))
        XCTAssertEqual(error.setting, "db_ssl_ca")
        XCTAssertTrue(error.message.hasPrefix("database TLS: the certificate of 127.0.0.1:\(server.port) is not trusted"), error.message)
        XCTAssertTrue(error.message.contains("db_ssl_ca = \(server.otherCAFile)"), error.message)
        // Connector/C 3.3 checks the chain whenever a CA file is given: turning the
        // host-name check off does not let an untrusted server in.
        let unverified = try XCTUnwrap(refused(try configuration(tls: .init(caFile: server.otherCAFile, verifyServer: false)), .unavailable))
        XCTAssertEqual(unverified.setting, "db_ssl_ca", unverified.message)
        // Without a CA file the system's trust store is asked, which knows no test CA.
        let system = try XCTUnwrap(refused(try configuration(tls: .init()), .unavailable))
        XCTAssertEqual(system.setting, "db_ssl_ca", system.message)
        XCTAssertTrue(system.message.contains("the system's trust store"), system.message)
    }

    func testAHostNameMismatchIsRefusedUnlessVerificationIsOff() throws {
        let server = try Self.server.get()
        // The certificate names 127.0.0.1 and db.emailsetup.test; "localhost" is the same
        // server under a name the certificate does not hold.
        let error = try XCTUnwrap(refused(try configuration(host: "localhost", tls: .init(caFile: server.caFile)), .unavailable))
        XCTAssertEqual(error.setting, "db_host")
        XCTAssertEqual(error.message, "database TLS: the certificate of localhost:\(server.port) is not issued for \"localhost\": "
                       + "set db_host to a name the certificate holds, or db_ssl_verify = no to skip the host-name check")

        let off = try configuration(host: "localhost", tls: .init(caFile: server.caFile, verifyServer: false))
        XCTAssertTrue(off.description.hasSuffix("(TLS, host name not checked)"), off.description)
        let connection = MariaDBConnection(configuration: off)
        defer { connection.close() }
        XCTAssertTrue(try sessionTLSVersion(connection).hasPrefix("TLSv1."))
    }

    func testAClientCertificateOpensAnAccountThatRequiresX509() throws {
        let server = try Self.server.get()
        let withoutCertificate = try XCTUnwrap(refused(try configuration(user: TLSDatabaseServer.x509User, tls: .init(caFile: server.caFile)),
                                                       .configuration))
        XCTAssertEqual(withoutCertificate.mariadbErrno, 1045)
        XCTAssertTrue(withoutCertificate.message.contains("set db_ssl_cert and db_ssl_key"), withoutCertificate.message)

        let tls = DatabaseConfiguration.TLS(caFile: server.caFile, certificateFile: server.clientCertificateFile, keyFile: server.clientKeyFile)
        let connection = MariaDBConnection(configuration: try configuration(user: TLSDatabaseServer.x509User, tls: tls))
        defer { connection.close() }
        XCTAssertTrue(try sessionTLSVersion(connection).hasPrefix("TLSv1."))
        XCTAssertEqual(try connection.query("SELECT CURRENT_USER() AS u").first?["u"]?.textValue, "x509@%")
    }

    /// Connector/C 3.3 carries on in clear when the server offers no TLS and the host
    /// name is not checked; the connection refuses that itself. The run's own test
    /// server has no TLS (unix socket).
    func testAServerWithoutTLSIsNeverUsedInClear() throws {
        let plain = try DatabaseTestEnvironment.fromEnvironment()
        func tlsTo(verify: Bool) -> DatabaseConfiguration {
            DatabaseConfiguration(endpoint: .unixSocket(path: plain.socketPath), user: plain.user, password: plain.password,
                                  database: plain.databaseName, tls: .init(verifyServer: verify))
        }
        for verify in [false, true] {
            let error = try XCTUnwrap(refused(tlsTo(verify: verify), .unavailable))
            XCTAssertEqual(error.setting, "db_ssl_ca", error.message)
            XCTAssertTrue(error.message.contains("does not offer TLS"), error.message)
        }
        // The same server without TLS settings: the control.
        let control = MariaDBConnection(configuration: DatabaseConfiguration(
            endpoint: .unixSocket(path: plain.socketPath), user: plain.user, password: plain.password, database: plain.databaseName))
        defer { control.close() }
        XCTAssertEqual(try sessionTLSVersion(control), "")
    }
}
