// Fuzzes the message builder. The input is fields separated by 0xFF (never valid
// UTF-8): from (parsed by Mailbox(_:)), to, cc, the from display name, the subject,
// the body, an extra header's name and value, the message id. The display name,
// subject, header and message id are set directly, unchecked, so `rendered()` is
// the only guard. Checks on every rendering that succeeds: each line ends in CRLF
// and has at most 998 octets, no bare CR or LF; every header line starts with a
// header the builder writes (or the extra one) or is a folded continuation; a CR
// or LF in a header value never got through; headers are ASCII unless SMTPUTF8 is
// needed; the body decodes back to the text; DATA stuffing leaves one terminator.
#if DEBUG
@testable import FuzzSupport
@testable import Smtp
import Foundation

private let fallback = Mailbox(try! EmailAddress("fuzz@example.com"))
private let utc = TimeZone(identifier: "UTC")!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var fields = fuzzFields(UnsafeBufferPointer(start: data, count: size))
    while fields.count < 9 { fields.append("") }

    func mailbox(_ text: String) -> Mailbox? {
        guard !text.isEmpty else { return nil }
        do {
            let parsed = try Mailbox(text)
            fuzzCheck(!text.contains { $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } },
                      "Mailbox accepted a control character: \(text.debugDescription)")
            return parsed
        } catch { return nil }
    }
    var message = Message(from: mailbox(fields[0]) ?? fallback, to: [mailbox(fields[1]) ?? fallback],
                          cc: mailbox(fields[2]).map { [$0] } ?? [], subject: fields[4], text: fields[5],
                          date: Date(timeIntervalSince1970: 1_700_000_000), timeZone: utc, messageID: "fixed@example.com")
    if !fields[3].isEmpty { message.from.displayName = fields[3] }
    if !fields[6].isEmpty || !fields[7].isEmpty { message.extraHeaders = [Message.Header(fields[6], fields[7])] }
    if !fields[8].isEmpty { message.messageID = fields[8] }

    let rendered: [UInt8]
    do { rendered = try message.rendered() } catch { return 0 }

    let oneLine = [message.from.displayName ?? "", message.subject, message.messageID]
        + message.extraHeaders.flatMap { [$0.name, $0.value] }
    for value in oneLine {
        fuzzCheck(!value.utf8.contains(0x0D) && !value.utf8.contains(0x0A), "rendered a header value with a line break: \(value.debugDescription)")
    }

    // Lines: CRLF-terminated, ≤ 998 octets, no bare CR or LF.
    fuzzCheck(rendered.count >= 2 && rendered.suffix(2) == [0x0D, 0x0A], "the message does not end in CRLF")
    var lines: [ArraySlice<UInt8>] = []
    var start = 0
    var index = 0
    while index < rendered.count {
        let byte = rendered[index]
        if byte == 0x0D {
            fuzzCheck(index + 1 < rendered.count && rendered[index + 1] == 0x0A, "bare CR at octet \(index)")
            lines.append(rendered[start..<index])
            index += 2
            start = index
            continue
        }
        fuzzCheck(byte != 0x0A, "bare LF at octet \(index)")
        index += 1
    }
    for line in lines { fuzzCheck(line.count <= 998, "a line of \(line.count) octets") }

    // Headers: only the builder's own and the extra one; folded lines start with white space.
    guard let blank = lines.firstIndex(where: \.isEmpty) else { fuzzCheck(false, "no blank line after the headers"); return 0 }
    let allowed = Message.ownedHeaders.union(message.extraHeaders.map { $0.name.lowercased() }).union(["mime-version"])
    for line in lines[..<blank] {
        if line.first == 0x20 || line.first == 0x09 { continue }
        let name = line.prefix { $0 != UInt8(ascii: ":") }
        fuzzCheck(name.count < line.count && allowed.contains(String(decoding: name, as: UTF8.self).lowercased()),
                  "unexpected header line: \(String(decoding: line.prefix(100), as: UTF8.self).debugDescription)")
        if !message.requiresSMTPUTF8 {
            fuzzCheck(line.allSatisfy { $0 < 0x80 }, "8-bit header without SMTPUTF8: \(String(decoding: line, as: UTF8.self))")
        }
    }

    // Body: the encoding named in the headers, and it gives the text back.
    let headers = lines[..<blank].map { String(decoding: $0, as: UTF8.self) }
    let body = lines[(blank + 1)...]
    let expected = BodyEncoding.lines(of: message.text)
    if headers.contains("Content-Transfer-Encoding: quoted-printable") {
        fuzzCheck(body.allSatisfy { $0.count <= 76 && $0.allSatisfy { $0 < 0x80 } }, "quoted-printable line over 76 octets or 8-bit")
        fuzzCheck(decodeQuotedPrintable(Array(body)) == expected, "quoted-printable body does not decode to the text")
    } else {
        fuzzCheck(body.map(Array.init) == expected, "7bit body differs from the text")
    }

    // The transport's stuffing: exactly one end-of-data marker, at the end.
    if let prepared = try? DataEncoding.prepare(rendered) {
        let marker: [UInt8] = [0x0D, 0x0A, 0x2E, 0x0D, 0x0A]
        let payload = [0x0D, 0x0A] + prepared.payload
        let hits = (0...(payload.count - 5)).filter { payload[$0] == 0x0D && Array(payload[$0..<$0 + 5]) == marker }
        fuzzCheck(hits == [payload.count - 5], "end-of-data marker inside the message")
    } else {
        fuzzCheck(false, "a rendered message the transport refuses")
    }
    return 0
}

/// RFC 2045 6.7 decoding of encoded lines (without line ends) back to hard lines.
private func decodeQuotedPrintable(_ lines: [ArraySlice<UInt8>]) -> [[UInt8]] {
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
    var out: [[UInt8]] = []
    var current: [UInt8] = []
    for line in lines {
        var i = line.startIndex
        var soft = false
        while i < line.endIndex {
            if line[i] == 0x3D {
                if i + 1 == line.endIndex { soft = true; break }
                guard i + 2 < line.endIndex, let h = hex(line[i + 1]), let l = hex(line[i + 2]) else { return [] }
                current.append(h << 4 | l)
                i += 3
            } else {
                current.append(line[i])
                i += 1
            }
        }
        if !soft { out.append(current); current = [] }
    }
    if !current.isEmpty { out.append(current) }
    return out
}

@main enum Main { static func main() { fuzzMain(corpus: corpusDirectory(#filePath), fuzzOneInput) } }
#else
@main enum Main { static func main() { print("fuzz harnesses need a debug build (swift build -c debug)") } }
#endif
