#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// What DateFormatter, ISO8601DateFormatter, String(format:), CharacterSet and
// removingPercentEncoding did here, without full Foundation (which brings ICU and
// CoreFoundation into every process start: docs/DECISIONS.md, "CGI start-up").

/// Times in UTC, as the API and the audit write them.
enum UTCTime {
    /// "2026-12-02T16:40:05Z" (RFC 3339; ISO8601DateFormatter's `.withInternetDateTime`).
    static func iso8601(_ date: Date) -> String {
        let t = parts(date)
        return "\(t.date)T\(t.time)Z"
    }

    /// "2026-12-02 16:40:05 UTC", for people.
    static func readable(_ date: Date) -> String {
        let t = parts(date)
        return "\(t.date) \(t.time) UTC"
    }

    private static func parts(_ date: Date) -> (date: String, time: String) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        return (pad(Int(t.tm_year) + 1900, 4) + "-" + pad(Int(t.tm_mon) + 1, 2) + "-" + pad(Int(t.tm_mday), 2),
                pad(Int(t.tm_hour), 2) + ":" + pad(Int(t.tm_min), 2) + ":" + pad(Int(t.tm_sec), 2))
    }

    /// `value` in decimal with at least `width` digits.
    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Double {
    /// Fixed-point text with `decimals` digits after the point, as `String(format: "%.3f")`.
    func fixed(_ decimals: Int) -> String {
        guard isFinite else { return String(self) }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(self) * scale).rounded()
        let whole = Int(scaled / scale), fraction = Int(scaled - Double(whole) * scale)
        let sign = self < 0 && scaled != 0 ? "-" : ""
        return decimals == 0 ? sign + String(whole) : sign + String(whole) + "." + UTCTime.pad(fraction, decimals)
    }
}

extension StringProtocol {
    /// `%XX` sequences decoded as UTF-8; nil for a malformed sequence or bytes that are
    /// not UTF-8 (as Foundation's `removingPercentEncoding`).
    var percentDecoded: String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        func hex(_ c: UInt8?) -> UInt8? {
            switch c {
            case let c? where c >= 0x30 && c <= 0x39: return c - 0x30
            case let c? where c >= 0x41 && c <= 0x46: return c - 0x41 + 10
            case let c? where c >= 0x61 && c <= 0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension StringProtocol {
    /// Every byte but ASCII letters and digits as `%XX` (UTF-8): safe in any URL part.
    var percentEncodedAlphanumerics: String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in utf8 {
            if Unicode.Scalar(byte).isASCIIAlphanumeric && byte < 0x80 {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Unicode.Scalar {
    /// A-Z, a-z or 0-9.
    var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
    }
}
