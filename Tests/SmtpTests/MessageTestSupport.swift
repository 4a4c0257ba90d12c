import Foundation
@testable import Smtp

/// Decoders written independently of the builder, so tests check the encodings
/// against the RFCs rather than against the encoder itself.
enum Decode {
    /// RFC 2047: decodes every encoded-word of an unfolded header value, dropping the
    /// whitespace between adjacent encoded-words.
    static func encodedWords(_ value: String) -> String {
        let tokens = value.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        var result = ""
        var previousWasEncoded = false
        for (index, token) in tokens.enumerated() {
            if let decoded = word(token) {
                if index > 0 && !previousWasEncoded { result += " " }
                result += decoded
                previousWasEncoded = true
            } else {
                if index > 0 { result += " " }
                result += token
                previousWasEncoded = false
            }
        }
        return result
    }

    static func word(_ token: String) -> String? {
        guard token.hasPrefix("=?"), token.hasSuffix("?="), token.count >= 8 else { return nil }
        let parts = token.dropFirst(2).dropLast(2).split(separator: "?", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].lowercased() == "utf-8" else { return nil }
        let payload = String(parts[2])
        var bytes: [UInt8] = []
        switch parts[1].uppercased() {
        case "B":
            guard let data = Data(base64Encoded: payload) else { return nil }
            bytes = Array(data)
        case "Q":
            var iterator = Array(payload.utf8).makeIterator()
            while let byte = iterator.next() {
                if byte == UInt8(ascii: "_") {
                    bytes.append(0x20)
                } else if byte == UInt8(ascii: "=") {
                    guard let h = iterator.next(), let l = iterator.next(),
                          let value = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else { return nil }
                    bytes.append(value)
                } else {
                    bytes.append(byte)
                }
            }
        default:
            return nil
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// RFC 2045 quoted-printable, CRLF line ends; returns the octets with LF hard breaks.
    static func quotedPrintable(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let lines = text.components(separatedBy: "\r\n")
        for (index, line) in lines.enumerated() {
            var bytes = Array(line.utf8)
            var soft = false
            if bytes.last == UInt8(ascii: "=") { soft = true; bytes.removeLast() }
            var i = 0
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "="), i + 2 < bytes.count {
                    let hex = String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self)
                    out.append(UInt8(hex, radix: 16)!)
                    i += 3
                } else {
                    out.append(bytes[i])
                    i += 1
                }
            }
            if !soft && index < lines.count - 1 { out.append(0x0A) }
        }
        return out
    }
}

/// A rendered message split into unfolded headers and body.
struct Rendered {
    let raw: [UInt8]
    let text: String
    let headerLines: [String]
    /// Unfolded headers, in order: (name, value).
    let headers: [(name: String, value: String)]
    let body: String

    init(_ raw: [UInt8]) {
        self.raw = raw
        text = String(decoding: raw, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0]
        body = parts.dropFirst().joined(separator: "\r\n\r\n")
        headerLines = head.components(separatedBy: "\r\n")
        let unfolded = head.replacingOccurrences(of: "\r\n ", with: " ").replacingOccurrences(of: "\r\n\t", with: "\t")
        headers = unfolded.components(separatedBy: "\r\n").map { line in
            let colon = line.firstIndex(of: ":")!
            var value = line[line.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
            return (String(line[..<colon]), String(value))
        }
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every line (octets between CRLFs); the check that no bare CR or LF exists is separate.
    var lines: [[UInt8]] {
        var result: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < raw.count {
            if raw[i] == 0x0D, i + 1 < raw.count, raw[i + 1] == 0x0A {
                result.append(current)
                current = []
                i += 2
            } else {
                current.append(raw[i])
                i += 1
            }
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    /// True when every CR is followed by LF and every LF preceded by CR, and the message ends in CRLF.
    var hasOnlyCRLF: Bool {
        for (i, byte) in raw.enumerated() {
            if byte == 0x0D && (i + 1 >= raw.count || raw[i + 1] != 0x0A) { return false }
            if byte == 0x0A && (i == 0 || raw[i - 1] != 0x0D) { return false }
        }
        return raw.suffix(2) == [0x0D, 0x0A]
    }
}

enum Fixture {
    static let date = Date(timeIntervalSince1970: 1_057_049_557)  // Tue, 01 Jul 2003 08:52:37 UTC
    static let berlin = TimeZone(identifier: "Europe/Berlin")!

    static func address(_ text: String) -> EmailAddress {
        try! EmailAddress(text)
    }

    static func message(
        subject: String = "Hello",
        text: String = "Hi there.\n",
        to: [Mailbox] = [Mailbox(address("to@example.com"))],
        cc: [Mailbox] = [],
        bcc: [Mailbox] = [],
        from: Mailbox = Mailbox(address("from@example.com")),
        extraHeaders: [Message.Header] = []
    ) -> Message {
        Message(from: from, to: to, cc: cc, bcc: bcc, subject: subject, text: text,
                date: date, timeZone: berlin, messageID: "fixed.1@example.com", extraHeaders: extraHeaders)
    }
}
