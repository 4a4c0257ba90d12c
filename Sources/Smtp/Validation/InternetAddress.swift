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

    private static func format<T>(_ family: Int32, _ address: inout T, count: Int) -> String? {
        var buffer = [CChar](repeating: 0, count: count)
        let ok = buffer.withUnsafeMutableBufferPointer { out in
            withUnsafePointer(to: &address) { inet_ntop(family, $0, out.baseAddress, socklen_t(count)) != nil }
        }
        guard ok else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
