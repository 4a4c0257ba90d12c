import Foundation

/// The test OAuth 2.0 authorization server (Tests/Fixtures/oauth/auth_server.py, on
/// Debian's python3-authlib) over HTTPS on 127.0.0.1, with one user and one
/// confidential client allowed every grant, certificates from the suite's test CA.
///
/// ```swift
/// let server = try OAuthTestServer(flavor: .microsoft, redirectURIs: ["https://127.0.0.1/cb"])
/// // point the client at server.baseURL (baseOverride), trust server.caFile
/// let token = try server.post(server.tokenURL, form: [("grant_type", "client_credentials"), …])
/// try server.revokeAll()
/// XCTAssertEqual(try server.stats().tokenRequests["client_credentials"], 1)
/// ```
public final class OAuthTestServer: Sendable {
    /// Whose paths and error format the server imitates.
    public enum Flavor: String, Sendable { case microsoft, google, generic }

    /// A registered client.
    public struct Client: Sendable {
        public var id: String
        /// nil: a public client (authenticates with client_id only).
        public var secret: String?
        public var redirectURIs: [String]
        /// Grants it may use: authorization_code, client_credentials, refresh_token, device_code.
        public var grants: [String]
        /// false: every token request answers "consent missing" (AADSTS65001).
        public var consent: Bool

        public init(id: String, secret: String?, redirectURIs: [String] = [],
                    grants: [String] = ["authorization_code", "client_credentials", "refresh_token", "device_code"],
                    consent: Bool = true) {
            self.id = id; self.secret = secret; self.redirectURIs = redirectURIs; self.grants = grants; self.consent = consent
        }
    }

    /// The user who signs in on the consent and device pages.
    public struct User: Sendable {
        public var username: String
        public var email: String
        public var password: String
        public init(username: String, email: String, password: String) {
            self.username = username; self.email = email; self.password = password
        }
    }

    /// What `GET /_test/stats` counts.
    public struct Stats: Sendable {
        /// Token requests by grant (client_credentials, refresh_token, authorization_code, device_code), failed ones included.
        public var tokenRequests: [String: Int]
        /// Token requests answered with a token, by grant.
        public var tokensIssued: [String: Int]
        /// Revocation requests answered 200.
        public var revocations: Int
        public var introspections: Int
        public var deviceAuthorizations: Int
    }

    /// One HTTP answer as curl received it.
    public struct Response: Sendable {
        public var status: Int
        /// Header names in lower case.
        public var headers: [String: String]
        public var body: String
        /// The body as a JSON object, or nil.
        public var json: [String: Any]? {
            try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        }
        /// The query parameters of the `Location` of a redirect.
        public var redirectParameters: [String: String] {
            guard let location = headers["location"], let items = URLComponents(string: location)?.queryItems else { return [:] }
            return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
        }
    }

    public let flavor: Flavor
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// `https://127.0.0.1:PORT`, what the product's `baseOverride` takes.
    public let baseURL: String
    /// The test CA that signed the server's certificate.
    public let caFile: String
    /// The Microsoft tenant in its paths (other tenants answer AADSTS90002).
    public let tenant: String
    /// The confidential client (all grants).
    public let client: Client
    /// The one user.
    public let user: User
    public var clientID: String { client.id }
    public var clientSecret: String { client.secret ?? "" }

    private let process: ManagedProcess
    private let directory: TemporaryDirectory

    /// Starts the server and waits (bounded) until it answers over TLS.
    ///
    /// `deviceInterval` is the RFC 8628 polling interval it announces and enforces
    /// (slow_down); `additionalClients` are registered next to the main one.
    public init(flavor: Flavor, redirectURIs: [String] = ["https://127.0.0.1/oauth/callback"],
                clientID: String = "3f1c2a9e-emailsetup-test", clientSecret: String? = nil,
                user: User = User(username: "user@example.test", email: "user@example.test", password: "Pa55-word!"),
                tenant: String = "contoso-test-tenant", deviceInterval: Int = 1, deviceLifetime: Int = 900,
                additionalClients: [Client] = []) throws {
        self.flavor = flavor
        self.user = user
        self.tenant = tenant
        client = Client(id: clientID, secret: clientSecret ?? "secret~" + UUID().uuidString, redirectURIs: redirectURIs)
        directory = try TemporaryDirectory(prefix: "oauth-server")
        let certificates = try SmtpTestCertificates.shared()
        caFile = certificates.certificate("ca")

        let config: [String: Any] = [
            "tenant": tenant,
            "clients": ([client] + additionalClients).map { c -> [String: Any] in
                var entry: [String: Any] = ["id": c.id, "redirect_uris": c.redirectURIs, "grants": c.grants, "consent": c.consent]
                if let secret = c.secret { entry["secret"] = secret } else { entry["public"] = true }
                return entry
            },
            "users": [["username": user.username, "email": user.email, "password": user.password]],
        ]
        let configPath = directory.path + "/config.json"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let portFile = directory.path + "/port"
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: [
            OAuthTestServer.script, "--flavor", flavor.rawValue, "--config", configPath,
            "--cert", certificates.certificate("good"), "--key", certificates.key("good"),
            "--port", "0", "--port-file", portFile, "--device-interval", String(deviceInterval),
            "--device-lifetime", String(deviceLifetime), "--exit-with-stdin",
        ])
        // Imports and TLS setup take seconds on a busy machine.
        _ = try process.waitForLine(prefix: "READY ", timeout: 60)
        let written = try String(contentsOfFile: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let chosen = Int(written), chosen > 0 else {
            throw ManagedProcess.Failure(message: "bad port file \"\(written)\"", stderr: process.stderrText)
        }
        port = chosen
        baseURL = "https://127.0.0.1:\(chosen)"
        try waitUntilAnswering(timeout: 20)
    }

    deinit { stop() }

    /// Stops the server (also done on deinit); its files go with the object.
    public func stop() { process.stop() }

    /// Everything the server logged so far (one line per request).
    public var log: String { process.stderrText }

    /// Tests/Fixtures/oauth/auth_server.py of this checkout.
    public static let script: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/oauth/auth_server.py").path
    }()

    // MARK: Endpoints of the flavour

    private var prefix: String { flavor == .microsoft ? "\(baseURL)/\(tenant)/oauth2/v2.0" : baseURL }
    /// The authorization endpoint (the consent page).
    public var authorizationURL: String {
        switch flavor {
        case .microsoft: return prefix + "/authorize"
        case .google: return baseURL + "/o/oauth2/v2/auth"
        case .generic: return baseURL + "/authorize"
        }
    }
    public var tokenURL: String { prefix + "/token" }
    /// The device authorization endpoint (RFC 8628 §3.1).
    public var deviceURL: String {
        switch flavor {
        case .microsoft: return prefix + "/devicecode"
        case .google: return baseURL + "/device/code"
        case .generic: return baseURL + "/device"
        }
    }
    /// RFC 7009 revocation; nil for Microsoft, which has none.
    public var revocationURL: String? { flavor == .microsoft ? nil : baseURL + "/revoke" }
    /// RFC 7662 introspection (no client authentication).
    public var introspectionURL: String { baseURL + "/introspect" }
    /// The page where the user enters a device's user code.
    public var deviceVerificationURL: String { baseURL + "/device/verify" }

    // MARK: Test controls

    /// The client's secret now answers "expired" (AADSTS7000222); nil: every client's.
    public func expireSecret(clientID: String? = nil) throws {
        try control("/_test/secret_expired", clientID.map { [("client_id", $0)] } ?? [])
    }

    /// Revokes every access and refresh token issued so far.
    public func revokeAll() throws { try control("/_test/revoke_all") }

    /// `expires_in` of access tokens issued from now on; `refreshSeconds` (0: never) of refresh tokens.
    public func setTokenLifetime(seconds: Int, refreshSeconds: Int? = nil) throws {
        var form = [("seconds", String(seconds))]
        if let refreshSeconds { form.append(("refresh_seconds", String(refreshSeconds))) }
        try control("/_test/token_lifetime", form)
    }

    /// Approves (or denies) a pending device authorization as the user would on the verification page.
    public func approveDevice(userCode: String, deny: Bool = false) throws {
        try control("/_test/approve_device", [("user_code", userCode), ("deny", deny ? "1" : "0")])
    }

    /// Lets a device authorization (nil: all) expire now.
    public func expireDevice(userCode: String? = nil) throws {
        try control("/_test/expire_device", userCode.map { [("user_code", $0)] } ?? [])
    }

    /// Forgets every code, token and device authorization, zeroes the statistics and
    /// undoes `expireSecret` and `setTokenLifetime`.
    public func reset() throws { try control("/_test/reset") }

    /// The server's counters.
    public func stats() throws -> Stats {
        let answer = try get(baseURL + "/_test/stats")
        guard answer.status == 200, let json = answer.json else { throw failure("stats answered \(answer.status): \(answer.body)") }
        return Stats(tokenRequests: json["token_requests"] as? [String: Int] ?? [:],
                     tokensIssued: json["tokens_issued"] as? [String: Int] ?? [:],
                     revocations: json["revocations"] as? Int ?? 0,
                     introspections: json["introspections"] as? Int ?? 0,
                     deviceAuthorizations: json["device_authorizations"] as? Int ?? 0)
    }

    // MARK: Acting as a client or a user (curl --cacert)

    /// POSTs a form (application/x-www-form-urlencoded) to `url`, optionally with HTTP Basic client authentication.
    public func post(_ url: String, form: [(String, String)], basicAuth: (user: String, password: String)? = nil) throws -> Response {
        var arguments: [String] = []
        if let basicAuth { arguments += ["--user", "\(basicAuth.user):\(basicAuth.password)"] }
        for (name, value) in form { arguments += ["--data-urlencode", "\(name)=\(value)"] }
        if form.isEmpty { arguments += ["-X", "POST"] }
        return try curl(url, arguments)
    }

    /// GETs `url` (redirects are not followed).
    public func get(_ url: String) throws -> Response { try curl(url, []) }

    /// Signs in on the consent page at `authorizationURL` (a full authorize URL with its
    /// query, as a client built it) and presses Accept or Cancel; the answer is the
    /// 302 back to the client (or the page again, after a wrong password).
    public func consent(at authorizationURL: String, approve: Bool = true, password: String? = nil) throws -> Response {
        try post(authorizationURL, form: [("username", user.username), ("password", password ?? user.password),
                                          ("action", approve ? "approve" : "deny")])
    }

    /// An RFC 7636 S256 challenge for `verifier`.
    public static func pkceChallenge(for verifier: String) throws -> String {
        let script = "printf %s \"$1\" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '='"
        return try ScriptRunner.run("/bin/sh", ["-c", script, "sh", verifier]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func curl(_ url: String, _ arguments: [String]) throws -> Response {
        let result = try ScriptRunner.runWithStatus("/usr/bin/curl", ["-sS", "-i", "--cacert", caFile, "--max-time", "15", url] + arguments,
                                                    timeout: 30)
        guard result.status == 0 else { throw failure("curl \(url) exited \(result.status): \(result.output)") }
        return try Self.parse(result.output)
    }

    /// Splits curl -i output into status, headers and body (skipping interim 1xx answers).
    public static func parse(_ output: String) throws -> Response {
        var rest = Substring(output)
        while true {
            guard let end = rest.range(of: "\r\n\r\n") else {
                throw ScriptRunner.Failed(description: "no HTTP header in curl output: \(output.prefix(500))")
            }
            let lines = rest[..<end.lowerBound].components(separatedBy: "\r\n")
            let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
            rest = rest[end.upperBound...]
            if (100..<200).contains(status) { continue }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return Response(status: status, headers: headers, body: String(rest))
        }
    }

    private func control(_ path: String, _ form: [(String, String)] = []) throws {
        let answer = try post(baseURL + path, form: form)
        guard answer.status == 200 else { throw failure("\(path) answered \(answer.status): \(answer.body)") }
    }

    private func waitUntilAnswering(timeout: Double) throws {
        let end = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < end {
            if let answer = try? get(baseURL + "/_test/stats"), answer.status == 200 { return }
            last = "no answer"
            usleep(100_000)
        }
        throw failure("the authorization server did not answer within \(timeout) s (\(last))")
    }

    private func failure(_ message: String) -> ManagedProcess.Failure {
        ManagedProcess.Failure(message: message, stderr: process.stderrText)
    }
}
