#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as bytes, for SPF's `ip4`/`ip6` CIDR matches and the
/// `%{i}` macro. The only file of DomainCheck that calls C (`inet_pton`).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6).
    public let bytes: [UInt8]
    /// The text it was made from.
    public let description: String

    /// Parses a dotted quad or IPv6 text (brackets and a "%zone" are dropped). An
    /// IPv4-mapped IPv6 address is the IPv4 address (RFC 7208 5: it is evaluated as IPv4).
    public init?(_ text: String) {
        var bare = Substring(text)
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = bare.dropFirst().dropLast() }
        if let percent = bare.firstIndex(of: "%") { bare = bare[..<percent] }
        let s = String(bare)
        var v4 = in_addr()
        if s.utf8.count <= 15, inet_pton(AF_INET, s, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            description = s
            return
        }
        var v6 = in6_addr()
        guard s.utf8.count <= 45, inet_pton(AF_INET6, s, &v6) == 1 else { return nil }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF {
            bytes = Array(b[12..<16])
            description = bytes.map(String.init).joined(separator: ".")
        } else {
            bytes = b
            description = s
        }
    }

    /// True for IPv4.
    public var isIPv4: Bool { bytes.count == 4 }

    /// Whether `other` lies within the first `prefix` bits of this address (host
    /// bits after the prefix are ignored, as SPF's `ip4:192.0.2.1/24` means 192.0.2.0/24).
    public func matches(_ other: IPAddress, prefix: Int) -> Bool {
        guard other.bytes.count == bytes.count else { return false }
        var remaining = prefix
        for (a, b) in zip(bytes, other.bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The `%{i}` form (RFC 7208 7.3): a dotted quad, or 32 dot-separated nibbles for IPv6.
    public var macroForm: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        return bytes.flatMap { [String($0 >> 4, radix: 16), String($0 & 0xF, radix: 16)] }.joined(separator: ".")
    }

    /// Loopback, private (RFC 1918, unique local), link-local, CGNAT or documentation
    /// ranges: an address recipients never see as a sender.
    public var isPrivate: Bool {
        let ranges: [(String, Int)] = isIPv4
            ? [("10.0.0.0", 8), ("172.16.0.0", 12), ("192.168.0.0", 16), ("127.0.0.0", 8), ("169.254.0.0", 16), ("100.64.0.0", 10)]
            : [("::1", 128), ("fc00::", 7), ("fe80::", 10)]
        return ranges.contains { IPAddress($0.0)!.matches(self, prefix: $0.1) }
    }
}
