import Foundation
import TestSupport
import XCTest

/// The `emailsetup` binary with `db_ssl_*` settings against the TLS-only MariaDB
/// (`TLSDatabaseServer`): a plain CGI request and `emailsetup migrate`, configured
/// through the environment overrides on top of the run's configuration file.
final class DatabaseTLSEndToEndTests: XCTestCase {
    private static let server = Result { try TLSDatabaseServer.start() }
    var env: EndToEndEnvironment!

    override class func tearDown() {
        (try? server.get())?.stop()
        super.tearDown()
    }

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    /// The run's configuration, pointed at the TLS server over TCP with `settings`.
    private func database(host: String = "127.0.0.1", _ settings: [String: String]) throws -> [String: String] {
        let server = try Self.server.get()
        return [
            "EMAILSETUP_CONFIG": env.stateDirectory + "/emailsetup.conf", "EMAILSETUP_DB_SOCKET": "",
            "EMAILSETUP_DB_HOST": host, "EMAILSETUP_DB_PORT": String(server.port), "EMAILSETUP_DB_USER": TLSDatabaseServer.tlsUser,
            "EMAILSETUP_DB_PASSWORD_FILE": server.stateDirectory + "/db-password", "EMAILSETUP_DB_NAME": TLSDatabaseServer.databaseName,
        ].merging(settings) { $1 }
    }

    /// One plain CGI GET of the settings; output is the answer and the log (stderr).
    private func cgiGet(_ environment: [String: String]) throws -> String {
        try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/setup/email_smtp", "REMOTE_USER": "admin", "GATEWAY_INTERFACE": "CGI/1.1",
        ].merging(environment) { $1 }).output
    }

    func testTheResponderReadsSettingsOverTLS() throws {
        let server = try Self.server.get()
        let output = try cgiGet(try database(["EMAILSETUP_DB_SSL_CA": server.caFile]))
        XCTAssertTrue(output.contains("Status: 200 OK"), output)
        XCTAssertFalse(output.contains("verification is off"), output)
    }

    func testAHostNameMismatchIsA503NamingTheSettingAndVerifyNoIsLogged() throws {
        let server = try Self.server.get()
        let refused = try cgiGet(try database(host: "localhost", ["EMAILSETUP_DB_SSL_CA": server.caFile]))
        XCTAssertTrue(refused.contains("Status: 503"), refused)
        XCTAssertTrue(refused.contains("Retry-After: 5"), refused)
        // The body's one line (the log has it too, as metadata of the outage line).
        XCTAssertTrue(refused.contains(#""database":"The settings database cannot be reached: database TLS: the certificate of localhost:"#
                                       + "\(server.port)" + #" is not issued for \"localhost\": set db_host to a name the certificate holds, or db_ssl_verify = no"#),
                      refused)

        let accepted = try cgiGet(try database(host: "localhost", ["EMAILSETUP_DB_SSL_CA": server.caFile, "EMAILSETUP_DB_SSL_VERIFY": "no"]))
        XCTAssertTrue(accepted.contains("Status: 200 OK"), accepted)
        XCTAssertTrue(accepted.contains("db_ssl_verify = no: database TLS verification is off"), accepted)
    }

    func testMigrateStopsWithOneLineNamingDbSslCa() throws {
        let server = try Self.server.get()
        let result = try ScriptRunner.runWithStatus(env.binary, ["migrate"], environment: try database(["EMAILSETUP_DB_SSL_CA": server.otherCAFile]))
        XCTAssertEqual(result.status, 2, result.output)
        let lines = result.output.split(separator: "\n").filter { $0.contains("database TLS") }
        XCTAssertEqual(lines.count, 1, result.output)
        XCTAssertTrue(lines.first?.contains("is not trusted by db_ssl_ca = \(server.otherCAFile)") == true, result.output)
        XCTAssertTrue(lines.first?.contains("set db_ssl_ca to the CA certificate that signed the server's") == true, result.output)
    }

    /// `serve` tries the database at start (migrations): a refused certificate is one
    /// error line, the refusal itself, not the generic "unreachable" warning.
    func testServeLogsTheRefusalAsOneLineAtStart() throws {
        let server = try Self.server.get()
        let serve = try ManagedProcess(executable: env.binary, arguments: ["serve", "--listen", "127.0.0.1:\(smtpUnusedLoopbackPort())", "--threads", "1"],
                                       environment: try database(host: "localhost", ["EMAILSETUP_DB_SSL_CA": server.caFile]))
        defer { serve.stop() }
        var lines: [Substring] = []
        for _ in 0..<100 {
            lines = serve.stderrText.split(separator: "\n").filter { $0.contains("database TLS") }
            if !lines.isEmpty { break }
            usleep(100_000)
        }
        XCTAssertEqual(lines.count, 1, serve.stderrText)
        XCTAssertTrue(lines.first?.contains(#""level":"error""#) == true, serve.stderrText)
        XCTAssertTrue(lines.first?.contains(#""msg":"database TLS: the certificate of localhost:\#(server.port) is not issued for \"localhost\""#) == true,
                      serve.stderrText)
        XCTAssertFalse(serve.stderrText.contains("database unreachable at start"), serve.stderrText)
    }
}
