import Foundation

/// The canned HTTPS server (Tests/Fixtures/https/canned_https_server.py) on 127.0.0.1,
/// with the Smtp suite's test certificates: answers what the URL asks for and logs
/// every request, for the OAuth module's HTTPS and grant tests.
///
/// ```swift
/// let server = try CannedHTTPSServer()
/// let url = server.answerURL(status: 400, body: #"{"error":"invalid_grant"}"#)
/// // … POST to url with caFile: server.caFile …
/// let request = try server.requests().last
/// ```
public final class CannedHTTPSServer: Sendable {
    /// One request as the server received it.
    public struct Request {
        /// "POST".
        public var method: String
        /// Path and query.
        public var path: String
        /// Header names in lower case.
        public var headers: [String: String]
        /// The body as text.
        public var body: String
        /// The body as a form (application/x-www-form-urlencoded), names to values.
        public var form: [String: String] {
            var fields: [String: String] = [:]
            for pair in body.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                fields[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            return fields
        }
    }

    /// The port it listens on.
    public let port: Int
    /// The CA that issued its certificate (pass as the CA file).
    public let caFile: String
    private let process: ManagedProcess
    private let logDirectory: TemporaryDirectory

    /// Starts the server with one of SmtpTestCertificates' certificates (`good`: localhost,
    /// 127.0.0.1, ::1; `wronghost`: mail.example.org; `expired`…) and waits until it listens.
    public init(certificate: String = "good") throws {
        let certificates = try SmtpTestCertificates.shared()
        logDirectory = try TemporaryDirectory(prefix: "canned-https")
        caFile = certificates.certificate("ca")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/https/canned_https_server.py").path
        process = try ManagedProcess(executable: SmtpFixtures.python, arguments: [
            script, "--cert", certificates.certificate(certificate), "--key", certificates.key(certificate),
            "--log", logDirectory.path + "/requests.jsonl"])
        port = try process.waitForReadyPort()
    }

    /// Stops the server (also done on deinit).
    public func stop() { process.stop() }

    /// https://127.0.0.1:port
    public var baseURL: String { "https://127.0.0.1:\(port)" }

    /// A URL that answers `status` with `body` (JSON unless `contentType` says otherwise).
    public func answerURL(status: Int, body: String, contentType: String? = nil) -> String {
        var query = "status=\(status)&body=\(Self.escape(body))"
        if let contentType { query += "&type=\(Self.escape(contentType))" }
        return baseURL + "/answer?" + query
    }

    /// A URL whose i-th request (per `key`) gets the i-th `(status, body)`; the last repeats.
    public func sequenceURL(key: String, steps: [(Int, String)]) -> String {
        baseURL + "/seq?key=\(Self.escape(key))" + steps.map { "&step=\($0.0):\(Self.escape($0.1))" }.joined()
    }

    /// Every request so far, oldest first.
    public func requests() throws -> [Request] {
        let path = logDirectory.path + "/requests.jsonl"
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            return Request(method: object["method"] as? String ?? "", path: object["path"] as? String ?? "",
                           headers: object["headers"] as? [String: String] ?? [:], body: object["body"] as? String ?? "")
        }
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? ""
    }
}
