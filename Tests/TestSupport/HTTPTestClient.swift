import Foundation

/// A deliberately small HTTP/1.1 client for the end-to-end tests: one request
/// per connection, exact control over every header (Origin, If-Match, missing
/// X-Requested-With) and no caching, cookies or redirects to get in the way.
///
/// ```swift
/// let client = HTTPTestClient(port: 8080, user: "admin", password: "secret")
/// let r = try client.request("GET", "/api/setup/email_smtp")
/// ```
public struct HTTPTestClient: Sendable {
    public var host = "127.0.0.1"
    public var port: Int
    /// Basic-auth credentials, or nil to send none.
    public var credentials: (user: String, password: String)?
    /// Seconds before a request is given up.
    public var timeout: Double = 30

    public init(port: Int, user: String? = nil, password: String? = nil) {
        self.port = port
        if let user, let password { credentials = (user, password) }
    }

    /// A response as received.
    public struct Response: Sendable {
        public var status: Int
        /// Header names in lower case.
        public var headers: [String: String]
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        /// The body parsed as JSON (Foundation objects), or nil.
        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }
        /// `data` of a success envelope.
        public var data: [String: Any]? { json?["data"] as? [String: Any] }
        /// `errors` of an error envelope.
        public var errors: [String: String]? { json?["errors"] as? [String: String] }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Sends one request; `headers` are added after Host, Authorization and Content-Length.
    public func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> Response {
        try Self.parse(exchange(method, path, headers: headers, body: body))
    }

    /// Sends one request and returns the raw answer; `onRead` is told the number of
    /// bytes received so far after each read (for timing streamed answers).
    func exchange(_ method: String, _ path: String, headers: [String: String], body: [UInt8],
                  onRead: ((Int) -> Void)? = nil) throws -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        if let credentials {
            head += "Authorization: Basic \(Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString())\r\n"
        }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to \(host):\(port) failed: \(String(cString: strerror(errno)))") }
        let out = Array(head.utf8) + body
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break } // the server may answer (413) and close before taking the whole body
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n < 0, received.isEmpty { throw Failure(description: "no answer from \(host):\(port) within \(timeout) s") }
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
            onRead?(received.count)
        }
        return received
    }

    /// A JSON POST with the CSRF header the API requires.
    public func post(_ path: String, json: String, headers: [String: String] = [:]) throws -> Response {
        var h = ["X-Requested-With": "EmailSetup", "Content-Type": "application/json"]
        h.merge(headers) { $1 }
        return try request("POST", path, headers: h, body: Array(json.utf8))
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        guard let split = bytes.indices.dropLast(3).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }) else {
            throw Failure(description: "malformed HTTP response: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        let head = String(decoding: bytes[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure(description: "bad status line \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(split + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while i < bytes.count {
            guard let lineEnd = bytes[i...].indices.dropLast().first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else { break }
            let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            out.append(contentsOf: bytes[start..<min(start + size, bytes.count)])
            i = start + size + 2
        }
        return out
    }
}
