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
        let started = Date()
        var arrivals: [(count: Int, seconds: Double)] = []
        let received = try exchange(method, path, headers: headers, body: body) { count in
            arrivals.append((count, Date().timeIntervalSince(started)))
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
