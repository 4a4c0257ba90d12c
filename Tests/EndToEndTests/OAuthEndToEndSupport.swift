import Foundation
import TestSupport
import XCTest
import Synchronization

/// The OAuth 2.0 servers that `scripts/test` starts before the responder (issue 13):
/// the test authorization server (Microsoft flavour) and the Exchange-like SMTP server
/// that checks tokens at it, as the `EMAILSETUP_TEST_OAUTH_*` variables describe them.
/// Test controls and the consent page are driven with curl, like a browser would.
struct SuiteOAuth {
    var baseURL: String
    var caFile: String
    var clientID: String
    var clientSecret: String
    var tenant: String
    var user: String
    var password: String
    var smtpPort: Int
    var spool: String

    static let variables = ["URL", "CA", "CLIENT_ID", "CLIENT_SECRET", "TENANT", "USER", "PASSWORD", "SMTP_PORT", "SPOOL"]

    /// The servers, or a failure naming the missing variables.
    static func require(file: StaticString = #filePath, line: UInt = #line) throws -> SuiteOAuth {
        let env = ProcessInfo.processInfo.environment
        func value(_ name: String) -> String { env["EMAILSETUP_TEST_OAUTH_" + name] ?? "" }
        let missing = variables.filter { value($0).isEmpty }
        guard missing.isEmpty, let port = Int(value("SMTP_PORT")) else {
            let message = "OAuth end-to-end test NOT RUN: EMAILSETUP_TEST_OAUTH_{\(missing.joined(separator: ","))} unset — run it with scripts/test"
            XCTFail(message, file: file, line: line)
            throw XCTSkip(message)
        }
        return SuiteOAuth(baseURL: value("URL"), caFile: value("CA"), clientID: value("CLIENT_ID"), clientSecret: value("CLIENT_SECRET"),
                          tenant: value("TENANT"), user: value("USER"), password: value("PASSWORD"), smtpPort: port, spool: value("SPOOL"))
    }

    /// The CA certificate as PEM text (for `smtp_tls_ca_pem`).
    func caPEM() throws -> String { try String(contentsOfFile: caFile, encoding: .utf8) }

    // MARK: Test controls (Tests/Fixtures/oauth/README.md)

    func reset() throws { try control("/_test/reset") }
    func expireSecret() throws { try control("/_test/secret_expired") }
    func revokeAll() throws { try control("/_test/revoke_all") }
    func setTokenLifetime(_ seconds: Int) throws { try control("/_test/token_lifetime", [("seconds", String(seconds))]) }
    func approveDevice(userCode: String) throws { try control("/_test/approve_device", [("user_code", userCode)]) }

    /// `token_requests` of `/_test/stats`, by grant.
    func tokenRequests() throws -> [String: Int] {
        let answer = try curl(baseURL + "/_test/stats", [])
        return try XCTUnwrap(answer.json?["token_requests"] as? [String: Int], answer.body)
    }

    /// Every access and refresh token issued since the last reset.
    func issuedTokens() throws -> (access: [String], refresh: [String]) {
        let answer = try curl(baseURL + "/_test/issued_tokens", [])
        let access = try XCTUnwrap(answer.json?["access_tokens"] as? [String], answer.body)
        let refresh = try XCTUnwrap(answer.json?["refresh_tokens"] as? [String], answer.body)
        return (access, refresh)
    }

    /// Signs in on the consent page at `authorizationURL` as the suite's user and
    /// presses Accept: the answer is the provider's redirect back to the responder.
    func consent(at authorizationURL: String) throws -> OAuthTestServer.Response {
        try curl(authorizationURL, ["--data-urlencode", "username=\(user)", "--data-urlencode", "password=\(password)",
                                    "--data-urlencode", "action=approve"])
    }

    private func control(_ path: String, _ form: [(String, String)] = []) throws {
        var arguments = form.flatMap { ["--data-urlencode", "\($0.0)=\($0.1)"] }
        if form.isEmpty { arguments = ["-X", "POST"] }
        let answer = try curl(baseURL + path, arguments)
        guard answer.status == 200 else { throw ScriptRunner.Failed(description: "\(path) answered \(answer.status): \(answer.body)") }
    }

    private func curl(_ url: String, _ arguments: [String]) throws -> OAuthTestServer.Response {
        let output = try ScriptRunner.run("/usr/bin/curl", ["-sS", "-i", "--cacert", caFile, "--max-time", "15", url] + arguments, timeout: 30)
        return try OAuthTestServer.parse(output)
    }
}

/// The shared steps of the OAuth end-to-end tests: settings, database access, and the
/// responder run as CGI (another user, a second process beside the FastCGI one).
extension EndToEndEnvironment {
    /// Saves XOAUTH2/OAUTHBEARER settings against the suite's servers; `clientSecret`
    /// is encrypted like a password (nil: none sent, "" would clear).
    @discardableResult
    func saveOAuthSettings(_ oauth: SuiteOAuth, grant: String, mechanism: String = "XOAUTH2", clientSecret: String? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws -> HTTPTestClient.Response {
        var fields = [
            "from_address": oauth.user, "smtp_host": "127.0.0.1", "smtp_port": String(oauth.smtpPort),
            "smtp_connection_type": "STARTTLS", "smtp_tls_verify": "Full", "smtp_tls_ca_pem": try oauth.caPEM(),
            "smtp_authentication_type": mechanism, "smtp_username": oauth.user, "oauth_provider": "Microsoft",
            "oauth_grant": grant, "oauth_tenant": oauth.tenant, "oauth_client_id": oauth.clientID,
            "smtp_connect_timeout": "5", "smtp_command_timeout": "15",
        ]
        if let clientSecret { fields["oauth_client_secret"] = try admin.encryptedPassword(clientSecret) }
        return try saveSettings(fields, file: file, line: line)
    }

    /// The unix socket of the suite's MariaDB.
    func databaseSocket() throws -> String {
        let lines = try script("scripts/lib/mariadb.sh", ["env", stateDirectory])
        let line = try XCTUnwrap(lines.split(separator: "\n").first { $0.contains("EMAILSETUP_DB_SOCKET=") })
        return String(line.split(separator: "=", maxSplits: 1)[1]).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
    }

    /// Runs one statement on the application database; tab-separated rows.
    @discardableResult
    func sql(_ statement: String) throws -> String {
        try ScriptRunner.run("/usr/bin/mariadb", ["--no-defaults", "--socket", try databaseSocket(), "-uroot", "-N", "-B", "emailsetup", "-e", statement])
    }

    /// Every row of every table, as text (blobs in clear, so a token in one is found).
    func databaseDump() throws -> String {
        try ScriptRunner.run("/usr/bin/mariadb-dump", ["--no-defaults", "--socket", try databaseSocket(), "-uroot",
                                                       "--skip-extended-insert", "emailsetup"])
    }

    /// Forgets every OAuth trace in the database (cached tokens, sign-ins under way, the
    /// signed-in refresh token), so a test starts as if nobody ever signed in.
    func forgetOAuthState() throws {
        try sql("""
            DELETE FROM oauth_access_tokens; DELETE FROM oauth_pending;
            DELETE FROM information WHERE label IN ('oauth_refresh_token', 'oauth_account', 'oauth_signed_in_at')
            """)
    }

    /// Lets every cached access token expire now, as if its lifetime had passed.
    func expireCachedAccessTokens() throws {
        try sql("UPDATE oauth_access_tokens SET expires_at = UTC_TIMESTAMP(6) WHERE sealed <> ''")
    }

    /// One request to the responder binary as plain CGI (`auth = remote_user` with the
    /// given user, any user an administrator): status, Location and the JSON body.
    func cgi(_ method: String, _ uri: String, user: String, body: String = "") throws -> (status: Int, location: String?, json: [String: Any], output: String) {
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let result = try ScriptRunner.runWithStatus(binary, [], environment: [
            "REQUEST_METHOD": method, "REQUEST_URI": uri, "QUERY_STRING": query, "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_REQUESTED_WITH": "EmailSetup", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": String(body.utf8.count),
            "GATEWAY_INTERFACE": "CGI/1.1", "EMAILSETUP_CONFIG": stateDirectory + "/emailsetup.conf", "EMAILSETUP_ADMINS": "",
        ], input: Array(body.utf8), timeout: 60)
        let lines = result.output.components(separatedBy: .newlines)
        func header(_ name: String) -> String? {
            lines.first { $0.lowercased().hasPrefix(name.lowercased() + ": ") }.map { String($0.dropFirst(name.count + 2)) }
        }
        let json = lines.last { $0.hasPrefix(#"{"status":"#) }
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        return (Int(header("Status")?.prefix(3) ?? "") ?? 0, header("Location"), json, result.output)
    }
}

/// Fires `count` requests at once and returns the answers in order.
func concurrently<T: Sendable>(_ count: Int, _ request: @escaping @Sendable (Int) throws -> T) -> [Result<T, any Error>] {
    let box = Mutex<[Result<T, any Error>?]>(Array(repeating: nil, count: count))
    let group = DispatchGroup()
    // Threads of their own: concurrentPerform would run only as many at once as there are cores.
    for index in 0..<count {
        group.enter()
        Thread {
            let result = Result { try request(index) }
            box.withLock { $0[index] = result }
            group.leave()
        }.start()
    }
    group.wait()
    return box.withLock { $0.map { $0! } }
}
