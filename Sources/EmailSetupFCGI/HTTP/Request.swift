/// One HTTP request as the web server handed it over (FastCGI params or CGI
/// environment plus the body), as a plain value: the handler never sees a socket.
struct Request: Sendable {
    /// Upper-case method, e.g. "GET".
    var method: String
    /// The path without the query, still percent-encoded, e.g. "/api/setup/email_test/a%40b.example".
    var path: String
    /// The raw query string without "?", or "".
    var query: String
    /// Request headers with lower-case names ("x-requested-with", "if-match", "origin", "host").
    var headers: [String: String]
    /// The body as read, at most `bodyLimit + 1` bytes (the adapter stops reading there).
    var body: [UInt8]
    /// Bodies larger than this are not read past it and get 413.
    static let bodyLimit = 64 * 1024

    /// CONTENT_LENGTH as the web server declared it.
    var declaredContentLength: Int
    /// The user the web server authenticated (REMOTE_USER), if any.
    var remoteUser: String?
    /// The client's address (REMOTE_ADDR), if known.
    var remoteAddress: String?
    /// "https" or "http" as the web server says (HTTPS / REQUEST_SCHEME).
    var scheme: String
    /// The port the web server received the request on (SERVER_PORT), if known.
    var serverPort: Int?

    init(method: String, path: String, query: String = "", headers: [String: String] = [:], body: [UInt8] = [],
         declaredContentLength: Int? = nil, remoteUser: String? = nil, remoteAddress: String? = nil, scheme: String = "http") {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.declaredContentLength = declaredContentLength ?? body.count
        self.remoteUser = remoteUser
        self.remoteAddress = remoteAddress
        self.scheme = scheme
    }

    /// The meta-variables from libfcgi's `envp` entries ("NAME=VALUE"); an entry
    /// without "=" is ignored, a repeated name keeps its last value.
    static func environment(fastCGIParams entries: some Sequence<String>) -> [String: String] {
        var env: [String: String] = [:]
        for pair in entries {
            // Split on bytes: a Character-wise search showed in request profiles.
            let bytes = pair.utf8
            if let eq = bytes.firstIndex(of: UInt8(ascii: "=")) {
                env[String(decoding: bytes[..<eq], as: UTF8.self)] = String(decoding: bytes[bytes.index(after: eq)...], as: UTF8.self)
            }
        }
        return env
    }

    /// How many body bytes the adapters read: CONTENT_LENGTH, but at most one byte
    /// past the limit (enough for the handler to answer 413) and never negative.
    static func bodyBytesToRead(_ env: [String: String]) -> Int {
        let declared = Int(env["CONTENT_LENGTH"] ?? "") ?? 0
        return min(max(declared, 0), bodyLimit + 1)
    }

    /// "X_REQUESTED_WITH" → "x-requested-with", on bytes: Foundation's
    /// `replacingOccurrences` was 7 % of the responder's CPU per GET. A name with
    /// non-ASCII bytes (never a valid header name, but a client can send one) is
    /// lower-cased as Unicode, so header names are always lower case.
    static func headerName(cgiName: Substring.UTF8View) -> String {
        guard cgiName.allSatisfy({ $0 < 0x80 }) else {
            return String(String(Substring(cgiName)).lowercased().map { $0 == "_" ? "-" : $0 })
        }
        return String(decoding: cgiName.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "_"): return UInt8(ascii: "-")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte + 32
            default: return byte
            }
        }, as: UTF8.self)
    }

    /// Builds a request from CGI/FastCGI meta-variables (RFC 3875) and the body.
    ///
    /// `REQUEST_URI` (nginx, Apache) is preferred because it keeps the original
    /// percent-encoding; `SCRIPT_NAME` + `PATH_INFO` is the CGI fallback.
    init(cgiEnvironment env: [String: String], body: [UInt8]) {
        method = (env["REQUEST_METHOD"] ?? "GET").uppercased()
        let uri = env["REQUEST_URI"] ?? ((env["SCRIPT_NAME"] ?? "") + (env["PATH_INFO"] ?? "")
            + (env["QUERY_STRING"].map { $0.isEmpty ? "" : "?" + $0 } ?? ""))
        if let q = uri.firstIndex(of: "?") {
            path = String(uri[..<q])
            query = String(uri[uri.index(after: q)...])
        } else {
            path = uri
            query = env["QUERY_STRING"] ?? ""
        }
        var headers: [String: String] = [:]
        for (key, value) in env where key.hasPrefix("HTTP_") {
            headers[Self.headerName(cgiName: key.utf8.dropFirst(5))] = value
        }
        if let type = env["CONTENT_TYPE"] { headers["content-type"] = type }
        self.headers = headers
        self.body = body
        declaredContentLength = Int(env["CONTENT_LENGTH"] ?? "") ?? body.count
        let user = env["REMOTE_USER"] ?? ""
        remoteUser = user.isEmpty ? nil : user
        remoteAddress = env["REMOTE_ADDR"]
        let https = (env["HTTPS"] ?? "").lowercased()
        scheme = env["REQUEST_SCHEME"] ?? ((https == "on" || https == "1") ? "https" : "http")
        serverPort = env["SERVER_PORT"].flatMap { Int($0) }
    }
}

/// One HTTP response: status, headers and body. Rendered by the FastCGI/CGI adapters.
struct Response: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    /// Set when the answer comes from an SMTP session still to run (see `SmtpWork`):
    /// the adapter runs it on the SMTP work pool and sends what it returns instead.
    var work: SmtpWork?

    init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response with the security headers every API answer carries.
    static func json(_ status: Int, _ value: JSONValue, headers: [(String, String)] = []) -> Response {
        Response(status: status,
                 headers: [("Content-Type", "application/json; charset=utf-8"),
                           ("Cache-Control", "no-store"),
                           ("X-Content-Type-Options", "nosniff")] + headers,
                 body: value.serialized())
    }

    /// `{"status":"success","data":…}`.
    static func success(_ data: JSONValue, status: Int = 200, headers: [(String, String)] = []) -> Response {
        .json(status, .object([("status", "success"), ("data", data)]), headers: headers)
    }

    /// The first value of a header (case-insensitive name), if present.
    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The CGI/FastCGI wire form: `Status:` line, headers, blank line, body.
    func cgiBytes() -> [UInt8] {
        var head = "Status: \(status) \(Response.reasonPhrase(status))\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 303: return "See Other"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 412: return "Precondition Failed"
        case 413: return "Payload Too Large"
        case 415: return "Unsupported Media Type"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
