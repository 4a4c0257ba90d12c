#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One SMTP reply: a three-digit code and one or more lines of text (RFC 5321 4.2).
public struct SmtpReply: Sendable, Equatable {
    /// The reply code, 200…599.
    public var code: Int
    /// The RFC 3463 enhanced status code ("2.0.0"), when ENHANCEDSTATUSCODES is in force.
    public var enhancedCode: String?
    /// The text of each line, after the code and separator (and enhanced code).
    public var lines: [String]

    /// Makes a reply.
    public init(code: Int, enhancedCode: String? = nil, lines: [String]) {
        self.code = code
        self.enhancedCode = enhancedCode
        self.lines = lines
    }

    /// All lines joined by "\n".
    public var text: String { lines.joined(separator: "\n") }
    /// 2xx.
    public var isPositive: Bool { (200..<300).contains(code) }
    /// 3xx.
    public var isIntermediate: Bool { (300..<400).contains(code) }
    /// 4xx.
    public var isTransientNegative: Bool { (400..<500).contains(code) }
    /// 5xx.
    public var isPermanentNegative: Bool { (500..<600).contains(code) }
}

/// Why a reply could not be parsed.
enum ReplyParseFailure: Error, Equatable, CustomStringConvertible {
    case lineTooLong(limit: Int)
    case malformed(String)
    case tooLong(limit: Int)

    var description: String {
        switch self {
        case .lineTooLong(let limit): return "reply line longer than \(limit) bytes"
        case .malformed(let line): return "malformed reply line: \(line)"
        case .tooLong(let limit): return "reply longer than \(limit) bytes"
        }
    }
}

/// Parses reply lines: "250-first", "250 last", "250" alone. Pure, tested without a socket.
enum ReplyParser {
    /// Splits one line (without CRLF) into code, whether more lines follow, and text.
    static func parseLine(_ bytes: ArraySlice<UInt8>) throws -> (code: Int, more: Bool, text: String) {
        let (code, more, text) = try parseLineBytes(bytes)
        return (code, more, String(decoding: text, as: UTF8.self))
    }

    /// Like `parseLine`, without decoding the text.
    static func parseLineBytes(_ bytes: ArraySlice<UInt8>) throws -> (code: Int, more: Bool, text: ArraySlice<UInt8>) {
        // Not SMTP: the peer may be any service, so only an excerpt is kept (it reaches hints and --json).
        func malformed() -> ReplyParseFailure { .malformed(excerpt(String(decoding: bytes, as: UTF8.self))) }
        guard bytes.count >= 3 else { throw malformed() }
        let start = bytes.startIndex
        var code = 0
        for index in start..<start + 3 {
            let byte = bytes[index]
            guard byte >= 0x30, byte <= 0x39 else { throw malformed() }
            code = code * 10 + Int(byte - 0x30)
        }
        guard (200...599).contains(code) else { throw malformed() }
        if bytes.count == 3 { return (code, false, bytes[bytes.endIndex...]) }
        let separator = bytes[start + 3]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { throw malformed() }
        return (code, separator == UInt8(ascii: "-"), bytes[(start + 4)...])
    }

    /// The length of a leading RFC 3463 code ("5.7.8") whose class matches the reply's
    /// first digit, or nil. Each of subject and detail has 1–3 digits.
    static func enhancedCodeLength(_ text: ArraySlice<UInt8>, replyCode: Int) -> Int? {
        var index = text.startIndex
        guard index < text.endIndex, Int(text[index]) - 0x30 == replyCode / 100, [2, 4, 5].contains(replyCode / 100) else { return nil }
        index += 1
        for _ in 0..<2 {
            guard index < text.endIndex, text[index] == UInt8(ascii: ".") else { return nil }
            index += 1
            var digits = 0
            while index < text.endIndex, text[index] >= 0x30, text[index] <= 0x39 { digits += 1; index += 1 }
            guard (1...3).contains(digits) else { return nil }
        }
        guard index == text.endIndex || text[index] == UInt8(ascii: " ") else { return nil }
        return index - text.startIndex
    }

    /// Splits "5.7.8 text" into the enhanced code and the rest when the code's class
    /// matches the reply's first digit (RFC 3463: class.subject.detail).
    static func splitEnhancedCode(_ text: String, replyCode: Int) -> (String?, String) {
        let bytes = ArraySlice(text.utf8)
        guard let length = enhancedCodeLength(bytes, replyCode: replyCode) else { return (nil, text) }
        let rest = bytes.index(bytes.startIndex, offsetBy: min(length + 1, bytes.count))
        return (String(decoding: bytes.prefix(length), as: UTF8.self), String(decoding: bytes[rest...], as: UTF8.self))
    }

    /// How much of what a peer sent is shown while it has not shown that it speaks
    /// SMTP (an SSH banner, a database handshake, garbage): a check must not become a
    /// way to read the first line of any internal service.
    static let unprovenPeerLimit = 80

    /// At most `limit` printable characters of `text`, then "…" when there was more.
    /// Control and format characters (C0, DEL, C1, bidi and zero-width controls, line
    /// separators) become "?"; invalid UTF-8 was already decoded to U+FFFD.
    static func excerpt(_ text: String, limit: Int = unprovenPeerLimit) -> String {
        var shown = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if shown.count == limit { return String(shown) + "…" }
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                shown.append("?")
            default:
                shown.append(scalar)
            }
        }
        return String(shown)
    }

    /// Replaces control characters so a hostile line cannot forge transcript lines.
    static func printable(_ text: String) -> String {
        if text.utf8.count <= 200 && text.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7f }) { return text }
        return String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) }.prefix(200))
    }
}

/// Reads CRLF-terminated lines from a stream through a fixed buffer, refusing lines
/// longer than `lineLimit` (a server sending 1 MiB without CRLF is a protocol error,
/// not a memory problem).
final class LineReader {
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    let lineLimit: Int

    init(lineLimit: Int = 4096, chunk: Int = 16384) {
        self.lineLimit = lineLimit
        buffer = [UInt8](repeating: 0, count: max(chunk, lineLimit + 2))
    }

    /// Bytes received but not yet consumed.
    var bufferedCount: Int { end - start }

    /// Drops everything buffered (after STARTTLS: plaintext must not reach the TLS session).
    func discardBuffered() -> Int {
        let count = bufferedCount
        start = 0
        end = 0
        return count
    }

    /// Returns the next line without its line ending (CRLF, or a bare LF).
    func readLine(from stream: ByteStream, deadline: Deadline) throws -> ArraySlice<UInt8> {
        var scanFrom = start
        while true {
            if let newline = buffer[scanFrom..<end].firstIndex(of: 0x0A) {
                var lineEnd = newline
                if lineEnd > start, buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                guard lineEnd - start <= lineLimit else { throw ReplyParseFailure.lineTooLong(limit: lineLimit) }
                let line = buffer[start..<lineEnd]
                start = newline + 1
                return line
            }
            guard end - start <= lineLimit + 1 else { throw ReplyParseFailure.lineTooLong(limit: lineLimit) }
            // Move the partial line to the front when the free space runs short.
            if start == end {
                start = 0
                end = 0
            } else if buffer.count - end < 1024, start > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    let base = raw.baseAddress!
                    memmove(base, base + start, end - start)
                }
                end -= start
                start = 0
            }
            scanFrom = end
            let received = try buffer.withUnsafeMutableBytes { raw in
                try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end...]), deadline: deadline)
            }
            if received == 0 { throw StreamFailure.closed("end of stream") }
            end += received
        }
    }

    /// Reads one complete (possibly multiline) reply. RFC 5321 sets no limit on its
    /// lines (an EHLO may list hundreds of extensions), so it is bounded by bytes
    /// (`maxBytes`, 64 KiB) and by the deadline, not by a line count.
    func readReply(from stream: ByteStream, deadline: Deadline, enhancedCodes: Bool, maxBytes: Int = 65536,
                   onLine: (ArraySlice<UInt8>) -> Void) throws -> SmtpReply {
        var lines: [String] = []
        var code: Int?
        var enhancedCode: String?
        var bytes = 0
        while true {
            let raw = try readLine(from: stream, deadline: deadline)
            onLine(raw)
            bytes += raw.count + 2
            guard bytes <= maxBytes else { throw ReplyParseFailure.tooLong(limit: maxBytes) }
            let (lineCode, more, text) = try ReplyParser.parseLineBytes(raw)
            if let code, code != lineCode {
                throw ReplyParseFailure.malformed("reply code changed from \(code) to \(lineCode) within one reply")
            }
            var body = text
            // RFC 3463 codes, when negotiated: taken from the first line, stripped from every line that has one.
            if enhancedCodes, code == nil || enhancedCode != nil, let length = ReplyParser.enhancedCodeLength(text, replyCode: lineCode) {
                if code == nil { enhancedCode = String(decoding: text.prefix(length), as: UTF8.self) }
                body = text.dropFirst(min(length + 1, text.count))
            }
            code = lineCode
            lines.append(String(decoding: body, as: UTF8.self))
            if !more { break }
        }
        let reply = SmtpReply(code: code!, enhancedCode: enhancedCode, lines: lines)
        return reply
    }
}
