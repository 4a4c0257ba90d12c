import Foundation

extension HTTPTestClient {
    /// A response and when each piece of its body arrived: for streamed answers
    /// (`application/x-ndjson`), to prove lines come while the request still runs.
    public struct TimedResponse: Sendable {
        public var response: Response
        /// Each body line (without "\n") with the seconds since the request was sent
        /// at which the bytes that completed it arrived.
        public var lines: [(text: String, seconds: Double)]
    }

    /// Sends one request like ``request(_:_:headers:body:)`` and records when each
    /// line of the (de-chunked) body arrived.
    public func timedRequest(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> TimedResponse {
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
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(description: "connect to \(host):\(port) failed") }
        let out = Array(head.utf8) + body
        _ = out.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        let started = Date()
        var received: [UInt8] = []
        var arrivals: [(count: Int, seconds: Double)] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
            arrivals.append((received.count, Date().timeIntervalSince(started)))
        }
        let response = try Self.parse(received)
        // When did the line end? The arrival of the first read whose raw bytes contain
        // its text (chunk framing only adds bytes, so this is never too early).
        var lines: [(String, Double)] = []
        var searchFrom = 0
        for line in response.text.split(separator: "\n", omittingEmptySubsequences: true) {
            let needle = Array(line.utf8)
            var at = arrivals.last?.seconds ?? 0
            if let range = Self.find(needle, in: received, from: searchFrom) {
                searchFrom = range
                at = arrivals.first { $0.count >= range }?.seconds ?? at
            }
            lines.append((String(line), at))
        }
        return TimedResponse(response: response, lines: lines)
    }

    /// The index just past the first occurrence of `needle` at or after `start`.
    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0], Array(haystack[i..<(i + needle.count)]) == needle { return i + needle.count }
            i += 1
        }
        return nil
    }
}
