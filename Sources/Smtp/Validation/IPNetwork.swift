/// A block of IP addresses in CIDR notation ("169.254.0.0/16", "fe80::/10"), for
/// refusing destinations the SMTP client must never connect to (``SmtpSettings/deniedNetworks``).
///
/// An IPv4-mapped IPv6 address ("::ffff:169.254.169.254") is the IPv4 address it
/// carries, both as an address tested with ``contains(_:)`` and as a network
/// ("::ffff:169.254.0.0/112" is 169.254.0.0/16), so neither spelling slips past the other.
///
/// ```swift
/// let denied = try IPNetwork.list("169.254.0.0/16, fe80::/10")
/// denied.first { $0.contains("169.254.169.254") }   // 169.254.0.0/16
/// ```
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// The network address: 4 bytes (IPv4) or 16 (IPv6), bits after the prefix zero.
    let bytes: [UInt8]
    /// How many leading bits are fixed: 0–32 for IPv4, 0–128 for IPv6.
    public let prefixLength: Int

    /// The responder's default `smtp_denied_networks`: the link-local blocks, where
    /// cloud metadata services answer (169.254.169.254). A cloud's own IPv6 metadata
    /// address outside them (AWS: fd00:ec2::254) must be added by the operator.
    public static let defaultDeniedText = "169.254.0.0/16, fe80::/10"

    /// True for an IPv4 network.
    public var isIPv4: Bool { bytes.count == 4 }

    /// "169.254.0.0/16", "fe80::/10": the canonical text.
    public var description: String {
        "\(InternetAddress.text(bytes) ?? "?")/\(prefixLength)"
    }

    /// Parses "ADDRESS/PREFIX", or a single address ("192.0.2.7" is 192.0.2.7/32).
    ///
    /// ```swift
    /// let network = try IPNetwork("fe80::/10")
    /// ```
    /// - Parameter text: the network; spaces around it are not allowed.
    /// - Throws: `ValidationError` saying what is wrong, e.g. host bits set after the prefix.
    public init(_ text: String) throws(ValidationError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        guard var address = InternetAddress.bytes(addressText) else {
            throw ValidationError(.invalidSyntax, "“\(DomainName.shorten(text))” is not an IP network (an IPv4 dotted quad or IPv6 address, then / and the prefix length, e.g. 169.254.0.0/16)")
        }
        let maxPrefix = address.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let value = Int(parts[1]), String(value) == parts[1], (0...maxPrefix).contains(value) else {
                throw ValidationError(.outOfRange, "the prefix length of “\(DomainName.shorten(text))” must be a whole number from 0 to \(maxPrefix)")
            }
            prefix = value
        }
        if let v4 = Self.mappedIPv4(address), prefix >= 96 {
            address = v4
            prefix -= 96
        }
        let masked = Self.mask(address, prefix: prefix)
        guard masked == address else {
            throw ValidationError(.invalidSyntax, "“\(DomainName.shorten(text))” has bits set after its prefix; write the network as \(InternetAddress.text(masked) ?? "?")/\(prefix)")
        }
        bytes = masked
        prefixLength = prefix
    }

    /// Parses a comma-separated list ("169.254.0.0/16, fe80::/10"); "" is the empty list.
    ///
    /// - Throws: `ValidationError` for the first entry that is not a network.
    public static func list(_ text: String) throws(ValidationError) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for entry in text.split(separator: ",") {
            let trimmed = entry.trimmingSpaces()
            if trimmed.isEmpty { continue }
            networks.append(try IPNetwork(trimmed))
        }
        return networks
    }

    /// Whether `address` (IPv4 or IPv6 text; brackets and a "%zone" are ignored) lies
    /// in this network. An IPv4-mapped IPv6 address is tested as IPv4; text that is no
    /// IP address is in no network.
    public func contains(_ address: String) -> Bool {
        var bare = Substring(address)
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = bare.dropFirst().dropLast() }
        if let percent = bare.firstIndex(of: "%") { bare = bare[..<percent] }
        guard var candidate = InternetAddress.bytes(String(bare)) else { return false }
        if let v4 = Self.mappedIPv4(candidate) { candidate = v4 }
        guard candidate.count == bytes.count else { return false }
        return Self.mask(candidate, prefix: prefixLength) == bytes
    }

    /// The first network of `networks` holding `address`, if any.
    public static func firstContaining(_ address: String, in networks: [IPNetwork]) -> IPNetwork? {
        networks.first { $0.contains(address) }
    }

    /// What the SMTP client says when it refuses a destination, and what a settings
    /// form says for the same host: one sentence, naming the setting.
    ///
    /// - Parameters:
    ///   - address: the refused address.
    ///   - network: the denied network holding it.
    ///   - host: the name that resolved to `address`, when the host was a name.
    public static func refusal(address: String, network: IPNetwork, host: String? = nil) -> String {
        let subject = host.map { "\($0) resolves to \(address), which" } ?? address
        return "\(subject) is in smtp_denied_networks (\(network)) of the responder's configuration; this destination is refused"
    }

    private static func mappedIPv4(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return Array(bytes[12..<16])
    }

    private static func mask(_ bytes: [UInt8], prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(8, max(0, prefix - index * 8))
            return bits == 8 ? byte : byte & ~(UInt8(0xFF) >> bits)
        }
    }
}

private extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
