#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns message bytes into what follows DATA (RFC 5321 4.5.2): CRLF line endings,
/// a leading "." doubled, and the terminating "CRLF.CRLF". Pure and tested alone.
enum DataEncoding {
    /// The prepared DATA payload and what MAIL FROM needs to know about it.
    struct Prepared {
        /// Normalised, dot-stuffed, terminated.
        var payload: [UInt8]
        /// Size of the normalised message (before dot-stuffing), for SIZE=.
        var messageSize: Int
        /// True when a byte ≥ 0x80 occurs (BODY=8BITMIME).
        var hasEightBit: Bool
    }

    enum Failure: Error, Equatable {
        case nul(offset: Int)
        case lineTooLong(line: Int, length: Int)
    }

    /// RFC 5321 4.5.3.1.6: 1000 octets including CRLF.
    static let maximumLineLength = 998

    /// Normalises bare LF and bare CR to CRLF, dot-stuffs, appends ".\r\n" (after a CRLF
    /// if the message does not end with one). Refuses NUL and lines over 998 octets.
    static func prepare(_ message: [UInt8]) throws -> Prepared {
        // Worst case: every byte a bare CR or LF (2 bytes each) plus the terminator.
        var result = Scan()
        let payload = [UInt8](unsafeUninitializedCapacity: message.count * 2 + 5) { out, written in
            result = message.withUnsafeBufferPointer { scan($0, into: out.baseAddress!) }
            written = result.written
        }
        if let failure = result.failure { throw failure }
        return Prepared(payload: payload, messageSize: result.size, hasEightBit: result.eightBit)
    }

    private struct Scan {
        var written = 0
        var size = 0
        var eightBit = false
        var failure: Failure?
    }

    /// The hot loop: per line, memchr finds the line end (and any NUL), one vectorisable
    /// pass ORs the bytes for 8-bit detection, memcpy copies the run.
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt8>) -> Scan {
        var o = 0
        var size = 0
        var highBits: UInt8 = 0
        var lineNumber = 1
        var atLineStart = true
        let count = bytes.count
        guard let base = bytes.baseAddress, count > 0 else {
            out[0] = UInt8(ascii: "."); out[1] = 0x0D; out[2] = 0x0A
            return Scan(written: 3, size: 0, eightBit: false, failure: nil)
        }
        var position = 0
        while position < count {
            let start = base + position
            let remaining = count - position
            var run = remaining
            if let lf = memchr(start, 0x0A, remaining) { run = UnsafeRawPointer(lf) - UnsafeRawPointer(start) }
            if run > 0, let cr = memchr(start, 0x0D, run) { run = UnsafeRawPointer(cr) - UnsafeRawPointer(start) }
            if run > 0 {
                if let nul = memchr(start, 0, run) {
                    return Scan(written: 0, size: size, eightBit: false,
                                failure: .nul(offset: position + (UnsafeRawPointer(nul) - UnsafeRawPointer(start))))
                }
                if run > maximumLineLength {
                    return Scan(written: 0, size: size, eightBit: false, failure: .lineTooLong(line: lineNumber, length: maximumLineLength + 1))
                }
                if start[0] == UInt8(ascii: ".") { out[o] = UInt8(ascii: "."); o += 1 }
                var bits: UInt8 = 0
                for index in 0..<run { bits |= start[index] }
                highBits |= bits
                (out + o).update(from: start, count: run)
                o += run
                size += run
                position += run
                atLineStart = false
                if position >= count { break }
            }
            // A line ending at `position`: CRLF, bare CR or bare LF all become CRLF.
            if base[position] == 0x0D, position + 1 < count, base[position + 1] == 0x0A { position += 2 } else { position += 1 }
            out[o] = 0x0D; out[o + 1] = 0x0A
            o += 2
            size += 2
            lineNumber += 1
            atLineStart = true
        }
        if !atLineStart {
            out[o] = 0x0D; out[o + 1] = 0x0A
            o += 2
            size += 2
        }
        out[o] = UInt8(ascii: "."); out[o + 1] = 0x0D; out[o + 2] = 0x0A
        return Scan(written: o + 3, size: size, eightBit: highBits >= 0x80, failure: nil)
    }
}

/// The client side of the AUTH mechanisms, as pure functions.
enum AuthEncoding {
    /// AUTH PLAIN initial response (RFC 4616): base64("" NUL user NUL password).
    static func plain(username: String, password: String) -> String {
        base64([0] + Array(username.utf8) + [0] + Array(password.utf8))
    }

    /// AUTH LOGIN answers: base64 of the user, then of the password.
    static func login(_ text: String) -> String { base64(Array(text.utf8)) }

    /// CRAM-MD5 response (RFC 2195): base64(user SP hex(HMAC-MD5(password, challenge))).
    /// `challenge` is the server's 334 text, still base64.
    static func cramMD5(username: String, password: String, challengeBase64: String) -> String? {
        guard let challenge = decodeBase64(challengeBase64) else { return nil }
        let digest = hmacMD5(key: Array(password.utf8), data: challenge)
        guard digest.count == 16 else { return nil }
        return base64(Array(username.utf8) + [UInt8(ascii: " ")] + Array(hexString(digest).utf8))
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeBase64(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - 97 + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - 48 + 52)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="), UInt8(ascii: " "), 0x0D, 0x0A: continue
            default: return nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i + 1 < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            let a = UInt32(chunk[chunk.startIndex]), b = UInt32(chunk[chunk.startIndex + 1])
            out.append(UInt8((a << 2 | b >> 4) & 0xff))
            if chunk.count > 2 {
                let c = UInt32(chunk[chunk.startIndex + 2])
                out.append(UInt8((b << 4 | c >> 2) & 0xff))
                if chunk.count > 3 {
                    let d = UInt32(chunk[chunk.startIndex + 3])
                    out.append(UInt8((c << 6 | d) & 0xff))
                }
            }
            i += 4
        }
        if values.count % 4 == 1 { return nil }
        return out
    }
}
