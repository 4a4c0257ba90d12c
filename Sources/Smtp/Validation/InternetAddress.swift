#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Textual IPv4/IPv6 parsing with the C library's `inet_pton`, which is strict:
/// IPv4 is exactly a dotted quad of decimal numbers 0…255 (no octal, hex, leading
/// zeros or short forms like "127.1"); IPv6 is RFC 4291 text without a zone id.
/// The only file of the validators that calls C.
enum InternetAddress {
    /// The canonical text of an IPv4 dotted quad, or nil.
    static func canonicalIPv4(_ text: String) -> String? {
        var address = in_addr()
        guard text.utf8.count <= 15, inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return format(AF_INET, &address, count: Int(INET_ADDRSTRLEN))
    }

    /// The canonical (RFC 5952, lower-case, compressed) text of an IPv6 address, or nil.
    static func canonicalIPv6(_ text: String) -> String? {
        var address = in6_addr()
        guard text.utf8.count <= 45, inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return format(AF_INET6, &address, count: Int(INET6_ADDRSTRLEN))
    }

    /// The four or sixteen bytes of an IPv4 dotted quad or IPv6 text (no zone), or nil.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if text.utf8.count <= 15, inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if text.utf8.count <= 45, inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The canonical text of four (IPv4) or sixteen (IPv6) address bytes.
    static func text(_ bytes: [UInt8]) -> String? {
        if bytes.count == 4 {
            var v4 = in_addr()
            withUnsafeMutableBytes(of: &v4) { $0.copyBytes(from: bytes) }
            return format(AF_INET, &v4, count: Int(INET_ADDRSTRLEN))
        }
        guard bytes.count == 16 else { return nil }
        var v6 = in6_addr()
        withUnsafeMutableBytes(of: &v6) { $0.copyBytes(from: bytes) }
        return format(AF_INET6, &v6, count: Int(INET6_ADDRSTRLEN))
    }

    /// The dotted quad that the C library's `inet_aton` (which `getaddrinfo`, `ping`
    /// and many other programs use for names) reads from a legacy spelling — hex
    /// ("0x7f000001"), octal ("0177.0.0.1") or short ("127.1") — or nil when `inet_aton`
    /// does not take `text` as an address. Only ASCII digits, letters x and dots can
    /// be such a spelling; anything else is never given to `inet_aton`.
    static func legacyIPv4(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.count <= 64,
              text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) || $0 == 0x2E || $0 == 0x78 || $0 == 0x58 })
        else { return nil }
        var address = in_addr()
        guard inet_aton(text, &address) != 0 else { return nil }
        return format(AF_INET, &address, count: Int(INET_ADDRSTRLEN))
    }

    private static func format<T>(_ family: Int32, _ address: inout T, count: Int) -> String? {
        var buffer = [CChar](repeating: 0, count: count)
        let ok = buffer.withUnsafeMutableBufferPointer { out in
            withUnsafePointer(to: &address) { inet_ntop(family, $0, out.baseAddress, socklen_t(count)) != nil }
        }
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
