import Foundation
import OAuth
import HTTPS
import TestSupport
import XCTest

/// The grants against the real authorization server of Tests/Fixtures/oauth (authlib),
/// in its Microsoft and Google flavours: tokens, PKCE, rotation, device flow, revocation,
/// and the provider error codes with their hints.
final class AuthlibServerTests: XCTestCase {
    private static let redirectURI = "https://admin.example.test/api/setup/oauth/callback"
    private static let secret = "Test-Secret+1/="

    /// One authorization server process (a private launcher: Tests/TestSupport's
    /// OAuthFixtures belongs to the fixture's own branch).
    private final class AuthServer: Sendable {
        let port: Int
        let caFile: String
        private let process: ManagedProcess
        private let directory: TemporaryDirectory

        init(flavor: String) throws {
            let certificates = try SmtpTestCertificates.shared()
            directory = try TemporaryDirectory(prefix: "oauth-server")
            caFile = certificates.certificate("ca")
            let config: [String: Any] = [
                "tenant": "contoso-test-tenant",
                "clients": [["id": "emailsetup-test", "secret": AuthlibServerTests.secret, "redirect_uris": [AuthlibServerTests.redirectURI]]],
                "users": [["username": "user@example.test", "email": "user@example.test", "password": "Pa55-word!"]],
            ]
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory.path + "/config.json"))
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/oauth/auth_server.py").path
            process = try ManagedProcess(executable: SmtpFixtures.python, arguments: [
                script, "--flavor", flavor, "--config", directory.path + "/config.json", "--port", "0",
                "--cert", certificates.certificate("good"), "--key", certificates.key("good"),
                "--device-interval", "1", "--exit-with-stdin"])
            let line = try process.waitForLine(prefix: "READY ", timeout: 30)
            port = Int(line.dropFirst("READY ".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }

        var base: String { "https://127.0.0.1:\(port)" }

        func control(_ path: String, _ fields: [(String, String)] = []) throws {
            let answer = try HTTPSClient(caFile: caFile, connectTimeout: 5, deadline: 10).postForm(base + path, fields: fields)
            XCTAssertEqual(answer.status, 200, path)
        }
    }

    private static let microsoft = Result { try AuthServer(flavor: "microsoft") }
    private static let google = Result { try AuthServer(flavor: "google") }

    private func client(_ server: AuthServer, _ provider: OAuthProvider, grant: OAuthGrant = .authorizationCode,
                        clientID: String = "emailsetup-test", secret: String = AuthlibServerTests.secret) throws -> OAuthClient {
        let endpoints = try OAuthEndpoints.derived(provider: provider, tenant: "contoso-test-tenant", baseOverride: server.base)
        return OAuthClient(OAuthClientConfig(provider: provider, endpoints: endpoints, clientID: clientID, clientSecret: secret,
                                             grant: grant, caFile: server.caFile, connectTimeout: 5, deadline: 15))
    }

    private func oauthError(_ body: () throws -> Any) -> OAuthError? {
        do { _ = try body(); XCTFail("expected an OAuthError"); return nil } catch { return error as? OAuthError }
    }

    /// Signs in on the consent page (as a browser would POST it) and returns the redirect's query.
    private func signIn(at url: String, caFile: String) throws -> [String: String] {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sS", "--max-time", "10", "--cacert", caFile, "-o", "/dev/null", "-w", "%{redirect_url}",
                          "--data-urlencode", "username=user@example.test", "--data-urlencode", "password=Pa55-word!",
                          "-d", "action=approve", url]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        curl.waitUntilExit()
        let location = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(location.hasPrefix(Self.redirectURI), "redirected to \(location)")
        var query: [String: String] = [:]
        for item in URLComponents(string: location)?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        return query
    }

    func testMicrosoftClientCredentialsAndItsSecretErrors() throws {
        let server = try Self.microsoft.get()
        try server.control("/_test/reset")
        let tokens = try client(server, .microsoft, grant: .clientCredentials).clientCredentials()
        XCTAssertFalse(tokens.accessToken.isEmpty)
        XCTAssertGreaterThan(tokens.expiresIn, 0)
        XCTAssertNil(tokens.refreshToken)

        let wrong = oauthError { try self.client(server, .microsoft, grant: .clientCredentials, secret: "wrong").clientCredentials() }
        XCTAssertEqual(wrong?.code, "AADSTS7000215")
        XCTAssertEqual(wrong?.kind, .authRejected)
        XCTAssertTrue(wrong?.hint.contains("Certificates & secrets") ?? false, wrong?.hint ?? "")

        let unknown = oauthError { try self.client(server, .microsoft, grant: .clientCredentials, clientID: "no-such-app").clientCredentials() }
        XCTAssertEqual(unknown?.code, "AADSTS700016")
        XCTAssertTrue(unknown?.hint.contains("Application (client) ID") ?? false, unknown?.hint ?? "")

        try server.control("/_test/secret_expired")
        let expired = oauthError { try self.client(server, .microsoft, grant: .clientCredentials).clientCredentials() }
        XCTAssertEqual(expired?.code, "AADSTS7000222")
        XCTAssertTrue(expired?.hint.contains("add a new client secret") ?? false, expired?.hint ?? "")
        XCTAssertFalse(expired?.description.contains(Self.secret) ?? true)
        try server.control("/_test/reset")
    }

    func testMicrosoftAuthorizationCodeWithPKCEThenRefreshRotation() throws {
        let server = try Self.microsoft.get()
        let client = try client(server, .microsoft)
        let pkce = try PKCE.generate(), state = try OAuthState.random()
        let query = try signIn(at: try client.authorizationURL(state: state, codeChallenge: pkce.challenge, redirectURI: Self.redirectURI),
                               caFile: server.caFile)
        XCTAssertEqual(query["state"], state)
        let code = try XCTUnwrap(query["code"])

        // A wrong verifier is refused (PKCE works), and the right one still succeeds after it.
        let wrongVerifier = oauthError { try client.exchangeCode(code, verifier: try PKCE.generate().verifier, redirectURI: Self.redirectURI) }
        XCTAssertEqual(wrongVerifier?.oauthError, "invalid_grant")
        let tokens: TokenSet
        do {
            tokens = try client.exchangeCode(code, verifier: pkce.verifier, redirectURI: Self.redirectURI)
        } catch let error as OAuthError where error.oauthError == "invalid_grant" {
            // The server may burn a code on a failed attempt, as real ones do: sign in again.
            let again = try signIn(at: try client.authorizationURL(state: state, codeChallenge: pkce.challenge, redirectURI: Self.redirectURI),
                                   caFile: server.caFile)
            tokens = try client.exchangeCode(try XCTUnwrap(again["code"]), verifier: pkce.verifier, redirectURI: Self.redirectURI)
        }
        XCTAssertEqual(tokens.account, "user@example.test")
        let first = try XCTUnwrap(tokens.refreshToken)

        let renewed = try client.refresh(refreshToken: first)
        let second = try XCTUnwrap(renewed.refreshToken)
        XCTAssertNotEqual(second, first, "the server rotates refresh tokens")
        let reused = oauthError { try client.refresh(refreshToken: first) }
        XCTAssertEqual(reused?.kind, .authRejected)
        XCTAssertTrue(reused?.hint.contains("sign in again") ?? false, reused?.hint ?? "")
        XCTAssertEqual(try client.revoke(token: second), .unsupported, "Microsoft has no revocation endpoint")
    }

    func testGoogleDeviceFlowThenRevocation() throws {
        let server = try Self.google.get()
        let client = try client(server, .google)
        let device = try client.startDeviceAuthorization()
        XCTAssertTrue(device.verificationURI.hasPrefix("https://"), device.verificationURI)
        XCTAssertEqual(try client.pollDeviceAuthorization(deviceCode: device.deviceCode), .pending)
        try server.control("/_test/approve_device", [("user_code", device.userCode)])

        var granted: TokenSet?
        for _ in 0..<10 where granted == nil {
            Thread.sleep(forTimeInterval: Double(device.interval) + 0.2)
            if case .granted(let tokens) = try client.pollDeviceAuthorization(deviceCode: device.deviceCode) { granted = tokens }
        }
        let tokens = try XCTUnwrap(granted, "the device sign-in was never granted")
        let refreshToken = try XCTUnwrap(tokens.refreshToken)
        XCTAssertEqual(tokens.account, "user@example.test")

        XCTAssertEqual(try client.revoke(token: refreshToken), .revoked)
        let revoked = oauthError { try client.refresh(refreshToken: refreshToken) }
        XCTAssertEqual(revoked?.code, "invalid_grant")
        XCTAssertTrue(revoked?.hint.contains("sign in with Google again") ?? false, revoked?.hint ?? "")
        XCTAssertEqual(try client.revoke(token: refreshToken), .alreadyInvalid)
    }
}
