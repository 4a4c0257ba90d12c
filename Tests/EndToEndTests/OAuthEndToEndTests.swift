import Foundation
import TestSupport
import XCTest

/// Issue 13 end to end, through nginx, against the real servers `scripts/test` starts:
/// the authorization server (authlib, Microsoft flavour, HTTPS with a test CA) and the
/// Exchange-like SMTP server that checks every token there. App-only sending with a
/// cached token, browser sign-in with a single-use `state` bound to the administrator,
/// the device flow, one renewal at a time across processes, and no secret or token in
/// any answer, log, transcript, history or audit row or database row.
final class OAuthEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!
    var oauth: SuiteOAuth!
    /// Every answer body of the running test (for the leak check).
    var bodies: [String] = []

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
        oauth = try SuiteOAuth.require()
        try oauth.reset()
        try env.forgetOAuthState()
    }

    override func tearDownWithError() throws {
        try oauth?.reset()
        try env?.forgetOAuthState()
    }

    // MARK: - Steps

    @discardableResult
    func record(_ response: HTTPTestClient.Response) -> HTTPTestClient.Response {
        bodies.append(response.text)
        return response
    }

    func sendTestEmail() throws -> HTTPTestClient.Response { record(try env.sendTestEmail(to: "ops@example.com")) }

    func settings() throws -> [String: Any] {
        let r = record(try env.admin.request("GET", EndToEndEnvironment.settingsPath))
        XCTAssertEqual(r.status, 200, r.text)
        return try XCTUnwrap(r.data, r.text)
    }

    /// The meta files of the messages the OAuth SMTP server accepted, oldest first.
    func spooled() throws -> [[String: Any]] {
        let folder = oauth.spool + "/meta"
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted().map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0))) as? [String: Any])
        }
    }

    /// POST oauth/start, the consent page approved: the provider's redirect to the callback.
    func startAndConsent(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let started = record(try env.admin.post("/api/setup/oauth/start", json: ""))
        XCTAssertEqual(started.status, 200, started.text, file: file, line: line)
        let url = try XCTUnwrap(started.data?["authorization_url"] as? String, started.text, file: file, line: line)
        XCTAssertTrue(url.hasPrefix("\(oauth.baseURL)/\(oauth.tenant)/oauth2/v2.0/authorize?"), url, file: file, line: line)
        let query = Dictionary((URLComponents(string: url)?.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { a, _ in a }
        XCTAssertEqual(query["code_challenge_method"], "S256", url, file: file, line: line)
        XCTAssertEqual(query["redirect_uri"], "http://127.0.0.1:\(env.port)/api/setup/oauth/callback", url, file: file, line: line)
        let consent = try oauth.consent(at: url)
        XCTAssertEqual(consent.status, 302, consent.body, file: file, line: line)
        let location = try XCTUnwrap(consent.headers["location"], file: file, line: line)
        let prefix = "http://127.0.0.1:\(env.port)"
        XCTAssertTrue(location.hasPrefix(prefix + "/api/setup/oauth/callback?code="), location, file: file, line: line)
        return String(location.dropFirst(prefix.count))
    }

    /// The callback through nginx as the administrator: the 303's Location.
    func callback(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = record(try env.admin.request("GET", path))
        XCTAssertEqual(r.status, 303, r.text, file: file, line: line)
        return r.headers["location"] ?? ""
    }

    var signedInLocation: String { "http://127.0.0.1:\(env.port)/?oauth=signed_in" }

    /// Saves authorization-code settings and signs in through the browser flow.
    func signInWithBrowser(mechanism: String = "XOAUTH2", file: StaticString = #filePath, line: UInt = #line) throws {
        record(try env.saveOAuthSettings(oauth, grant: "authorization_code", mechanism: mechanism, clientSecret: oauth.clientSecret,
                                         file: file, line: line))
        XCTAssertEqual(try callback(try startAndConsent(file: file, line: line), file: file, line: line), signedInLocation, file: file, line: line)
    }

    // MARK: - 1. App-only (client credentials)

    func testAppOnlySendsWithOneCachedTokenAndNamesAnExpiredSecret() throws {
        record(try env.saveOAuthSettings(oauth, grant: "client_credentials", clientSecret: oauth.clientSecret))
        let before = try spooled().count

        let first = try sendTestEmail()
        XCTAssertEqual(first.status, 200, first.text)
        let messages = try spooled()
        XCTAssertEqual(messages.count, before + 1)
        XCTAssertEqual(messages.last?["user"] as? String, oauth.user)
        XCTAssertEqual(messages.last?["mechanism"] as? String, "XOAUTH2")
        XCTAssertEqual(messages.last?["tls"] as? Bool, true)
        XCTAssertEqual(try oauth.tokenRequests()["client_credentials"], 1)

        // The cached token serves the next ones: no further token request.
        for round in 1...3 {
            let again = try sendTestEmail()
            XCTAssertEqual(again.status, 200, "round \(round): \(again.text)")
        }
        XCTAssertEqual(try spooled().count, before + 4)
        XCTAssertEqual(try oauth.tokenRequests()["client_credentials"], 1, "the cached token must be reused")

        // The secret expires at the provider; once the cached token has run out, the
        // test email names the provider's code and the fix.
        try oauth.expireSecret()
        try env.expireCachedAccessTokens()
        let failed = try sendTestEmail()
        let diagnosis = try SmtpDiagnosis(failed)
        XCTAssertEqual(failed.status, 502, failed.text)
        XCTAssertEqual(diagnosis.stage, "oauth", failed.text)
        XCTAssertEqual(diagnosis.object["code"] as? String, "AADSTS7000222", failed.text)
        for fact in ["expired", "Certificates & secrets", "new client secret"] {
            XCTAssertTrue(diagnosis.hint.contains(fact), "hint \"\(diagnosis.hint)\" does not mention \(fact)")
        }
        XCTAssertEqual(failed.errors?["smtp"], diagnosis.hint)
        XCTAssertEqual(try oauth.tokenRequests()["client_credentials"], 2)
        XCTAssertEqual(try spooled().count, before + 4, "nothing may be sent without a token")
    }

    // MARK: - 2. Authorization code (browser sign-in)

    func testBrowserSignInSendsStateIsSingleUseAndBoundAndRevocationAsksToSignInAgain() throws {
        try oauth.setTokenLifetime(60)
        record(try env.saveOAuthSettings(oauth, grant: "authorization_code", mechanism: "OAUTHBEARER", clientSecret: oauth.clientSecret))
        let path = try startAndConsent()

        // Another administrator cannot finish a sign-in this one started (and does not use it up).
        let other = try env.cgi("GET", path, user: "other-admin")
        XCTAssertEqual(other.status, 303, other.output)
        XCTAssertTrue(other.location?.hasPrefix("http://127.0.0.1:\(env.port)/?oauth=error&message=") == true, other.output)
        XCTAssertEqual(try settings()["oauth_account"] as? String, "")

        XCTAssertEqual(try callback(path), signedInLocation)
        let signedIn = try settings()
        XCTAssertEqual(signedIn["oauth_account"] as? String, oauth.user)
        XCTAssertFalse((signedIn["oauth_signed_in_at"] as? String ?? "").isEmpty, "\(signedIn)")
        XCTAssertNil(signedIn["oauth_refresh_token"])

        // The state works once.
        let replayed = try callback(path)
        XCTAssertTrue(replayed.hasPrefix("http://127.0.0.1:\(env.port)/?oauth=error&message="), replayed)
        XCTAssertEqual(try settings()["oauth_account"] as? String, oauth.user)

        let sent = try sendTestEmail()
        XCTAssertEqual(sent.status, 200, sent.text)
        XCTAssertEqual(try spooled().last?["mechanism"] as? String, "OAUTHBEARER")
        XCTAssertEqual(try spooled().last?["user"] as? String, oauth.user)

        // Revoked at the provider, and the cached access token has run out: sign in again.
        try oauth.revokeAll()
        try env.expireCachedAccessTokens()
        let failed = try sendTestEmail()
        let diagnosis = try SmtpDiagnosis(failed)
        XCTAssertEqual(failed.status, 502, failed.text)
        XCTAssertEqual(diagnosis.stage, "oauth", failed.text)
        let code = diagnosis.object["code"] as? String ?? ""
        XCTAssertTrue(code == "invalid_grant" || code.hasPrefix("AADSTS"), failed.text)
        XCTAssertTrue(diagnosis.hint.lowercased().contains("sign in again"), diagnosis.hint)
        XCTAssertEqual(failed.errors?["smtp"], diagnosis.hint)

        let signOut = record(try env.admin.post("/api/setup/oauth/sign_out", json: ""))
        XCTAssertEqual(signOut.status, 200, signOut.text)
        XCTAssertEqual(signOut.data?["signed_out"] as? Bool, true, signOut.text)
        let after = try settings()
        XCTAssertEqual(after["oauth_account"] as? String, "")
        XCTAssertEqual(after["oauth_signed_in_at"] as? String, "")
        XCTAssertEqual(try env.sql("SELECT COUNT(*) FROM information WHERE label = 'oauth_refresh_token' AND value <> ''")
            .trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }

    // MARK: - 3. Device flow

    func testDeviceSignInSignsInOnceApproved() throws {
        record(try env.saveOAuthSettings(oauth, grant: "authorization_code", clientSecret: oauth.clientSecret))
        let started = record(try env.admin.post("/api/setup/oauth/device", json: ""))
        XCTAssertEqual(started.status, 200, started.text)
        let handle = try XCTUnwrap(started.data?["handle"] as? String, started.text)
        let userCode = try XCTUnwrap(started.data?["user_code"] as? String, started.text)
        XCTAssertTrue((started.data?["verification_uri"] as? String ?? "").hasPrefix(oauth.baseURL), started.text)
        let interval = max(1, started.data?["interval"] as? Int ?? 1)

        let body = try String(decoding: JSONSerialization.data(withJSONObject: ["handle": handle]), as: UTF8.self)
        let pending = record(try env.admin.post("/api/setup/oauth/device/poll", json: body))
        XCTAssertEqual(pending.status, 200, pending.text)
        XCTAssertEqual(pending.data?["status"] as? String, "pending", pending.text)

        try oauth.approveDevice(userCode: userCode)
        var account: String?
        for _ in 0..<15 where account == nil {
            sleep(UInt32(interval) + 1)
            let poll = record(try env.admin.post("/api/setup/oauth/device/poll", json: body))
            XCTAssertEqual(poll.status, 200, poll.text)
            if poll.data?["status"] as? String == "signed_in" { account = poll.data?["account"] as? String }
        }
        XCTAssertEqual(account, oauth.user, "the device sign-in did not finish within 15 polls")
        XCTAssertEqual(try settings()["oauth_account"] as? String, oauth.user)
        let sent = try sendTestEmail()
        XCTAssertEqual(sent.status, 200, sent.text)

        // The handle is used up.
        let again = record(try env.admin.post("/api/setup/oauth/device/poll", json: body))
        XCTAssertNotEqual(again.status, 200, again.text)
    }

    // MARK: - 4. Renewal under concurrency

    func testConcurrentSessionsRenewAnExpiredTokenOnceAcrossProcesses() throws {
        // Tokens live 60 s, less than the renewal margin (120 s).
        try oauth.setTokenLifetime(60)
        try signInWithBrowser()
        let env = self.env!

        for wave in 1...2 {
            try env.expireCachedAccessTokens()
            let before = try oauth.tokenRequests()["refresh_token"] ?? 0
            let answers = concurrently(6) { _ in try env.sendTestEmail(to: "ops@example.com") }
            let responses = try answers.map { try $0.get() }
            responses.forEach { record($0) }
            let statuses = responses.map(\.status)
            let failures = responses.filter { $0.status != 200 }.map { "\($0.status) \($0.json?["diagnosis"].map { "\($0)" } ?? $0.text)" }
            XCTAssertTrue(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "wave \(wave): \(statuses) \(failures)")
            XCTAssertGreaterThanOrEqual(statuses.filter { $0 == 200 }.count, 2, "wave \(wave): \(statuses)")
            let after = try oauth.tokenRequests()["refresh_token"] ?? 0
            XCTAssertEqual(after - before, 1, "wave \(wave): \(statuses.filter { $0 == 200 }.count) sessions made \(after - before) refresh requests")
        }

        // Two responders: three requests through nginx (FastCGI) and three CGI processes.
        try env.expireCachedAccessTokens()
        let before = try oauth.tokenRequests()["refresh_token"] ?? 0
        let answers = concurrently(6) { index -> (status: Int, output: String) in
            if index % 2 == 0 {
                let r = try env.sendTestEmail(to: "ops@example.com")
                return (r.status, r.text)
            }
            let answer = try env.cgi("POST", "/api/setup/email_test/ops%40example.com", user: "admin")
            let diagnosis = answer.json["diagnosis"] as? [String: Any]
            return (answer.status, "\(diagnosis?["stage"] ?? "-") \(diagnosis?["code"] ?? "-") \(diagnosis?["hint"] ?? answer.output.suffix(300))")
        }
        let results = try answers.map { try $0.get() }
        results.forEach { bodies.append($0.output) }
        let statuses = results.map(\.status)
        let failures = results.filter { $0.status != 200 }.map { "\($0.status) \($0.output.suffix(600))" }
        XCTAssertTrue(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(statuses): \(failures)")
        XCTAssertEqual(statuses.enumerated().filter { $0.offset % 2 == 1 }.map(\.element), [200, 200, 200], "CGI: \(failures)")
        XCTAssertEqual((try oauth.tokenRequests()["refresh_token"] ?? 0) - before, 1, "\(statuses)")
    }

    // MARK: - 5. Secrets never leak

    func testNoClientSecretRefreshOrAccessTokenAppearsAnywhere() throws {
        // App-only: a token by client credentials, used twice (once from the cache).
        record(try env.saveOAuthSettings(oauth, grant: "client_credentials", clientSecret: oauth.clientSecret))
        XCTAssertEqual(try sendTestEmail().status, 200, bodies.last ?? "")
        XCTAssertEqual(try sendTestEmail().status, 200, bodies.last ?? "")
        record(try env.checkConnection())
        // A person signed in: code exchange, two refreshes (rotations), a failure after revocation.
        try signInWithBrowser(mechanism: "OAUTHBEARER")
        XCTAssertEqual(try sendTestEmail().status, 200, bodies.last ?? "")
        try env.expireCachedAccessTokens()
        XCTAssertEqual(try sendTestEmail().status, 200, bodies.last ?? "")
        record(try env.checkConnection())
        // The device flow, then a failure with a transcript.
        let device = record(try env.admin.post("/api/setup/oauth/device", json: ""))
        XCTAssertEqual(device.status, 200, device.text)
        try oauth.revokeAll()
        try env.expireCachedAccessTokens()
        XCTAssertEqual(try sendTestEmail().status, 502, bodies.last ?? "")
        record(try env.admin.post("/api/setup/oauth/sign_out", json: ""))
        _ = try settings()
        record(try env.admin.request("GET", "/api/setup/email_history"))
        record(try env.admin.request("GET", "/api/setup/email_audit"))

        let issued = try oauth.issuedTokens()
        XCTAssertGreaterThanOrEqual(issued.access.count, 4, "\(issued.access.count) access tokens")
        XCTAssertGreaterThanOrEqual(issued.refresh.count, 3, "\(issued.refresh.count) refresh tokens")

        func readable(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        let spool = try FileManager.default.subpathsOfDirectory(atPath: oauth.spool).map { readable(oauth.spool + "/" + $0) }
        let dump = try env.databaseDump()
        XCTAssertTrue(dump.contains("oauth_access_tokens"), "the dump should include the token cache")
        let places: [(String, String)] = [
            ("answers", bodies.joined(separator: "\n")), ("responder log", readable(env.stateDirectory + "/responder.log")),
            ("nginx access log", readable(env.stateDirectory + "/nginx-access.log")),
            ("nginx error log", readable(env.stateDirectory + "/nginx-error.log")),
            ("database", dump), ("SMTP spool", spool.joined(separator: "\n")),
        ]
        XCTAssertFalse(places[1].1.isEmpty, "the responder log is empty")

        var needles: [(String, String)] = [("client secret", oauth.clientSecret)]
        needles += issued.access.map { ("access token", $0) } + issued.refresh.map { ("refresh token", $0) }
        for token in issued.access {
            needles.append(("XOAUTH2 response", "user=\(oauth.user)\u{1}auth=Bearer \(token)\u{1}\u{1}"))
            needles.append(("OAUTHBEARER response", "n,a=\(oauth.user),\u{1}auth=Bearer \(token)\u{1}\u{1}"))
        }
        for (what, secret) in needles {
            let base64 = Data(secret.utf8).base64EncodedString()
            let base64URL = base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .trimmingCharacters(in: CharacterSet(charactersIn: "="))
            for (place, text) in places {
                for (form, needle) in [("in clear", secret), ("in base64", base64), ("in base64url", base64URL)] where needle.count >= 8 {
                    XCTAssertFalse(text.contains(needle), "the \(what) appears \(form) in the \(place)")
                }
            }
        }
    }
}
