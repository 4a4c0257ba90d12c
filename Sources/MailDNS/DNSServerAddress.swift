#if canImport(Glibc)
import Glibc
#endif

/// The address of a DNS server to ask: an IP address and a port (53 unless given).
/// Written "127.0.0.1:5353", "192.0.2.1", "[::1]:53", "[2001:db8::1]" or a bare
/// IPv6 address ("::1", port 53). A name is refused: the resolver must not need a
/// resolver to find itself.
///
/// ```swift
/// let server = try DNSServerAddress("[::1]:5353")   // server.host "::1", server.port 5353
/// let list = try DNSServerAddress.list("127.0.0.1:5353, 192.0.2.53")
/// ```
public struct DNSServerAddress: Sendable, Hashable, CustomStringConvertible {
    /// The IP address, canonical text without brackets.
    public let host: String
    /// The UDP and TCP port.
    public let port: Int
    /// Whether `host` is an IPv6 address.
    public let isIPv6: Bool

    /// Parses one server address; throws a `DNSError` of kind `.other` naming the text.
    public init(_ text: String) throws(DNSError) {
        let trimmed = text.trimmingSpaces
        func refuse(_ why: String) -> DNSError {
            DNSError(kind: .other, name: text, type: .a,
                     hint: "\"\(text)\" is not a DNS server address: \(why) (write an IP address with an optional port, such as 127.0.0.1:5353 or [::1]:53)")
        }
        var hostText = trimmed
        var portText: Substring?
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { throw refuse("the \"[\" has no \"]\"") }
            hostText = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw refuse("expected \":PORT\" after \"]\"") }
                portText = rest.dropFirst()
            }
        } else if trimmed.filter({ $0 == ":" }).count == 1, let colon = trimmed.firstIndex(of: ":") {
            hostText = String(trimmed[..<colon])
            portText = trimmed[trimmed.index(after: colon)...]
        }
        var port = 53
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw refuse("the port must be a number from 1 to 65535")
            }
            port = number
        }
        if hostText.isEmpty { throw refuse("the address is empty") }
        if let canonical = Self.canonical(hostText, family: AF_INET) {
            guard !trimmed.hasPrefix("[") else { throw refuse("brackets are for IPv6 addresses") }
            self.host = canonical
            self.isIPv6 = false
        } else if let canonical = Self.canonical(hostText, family: AF_INET6) {
            self.host = canonical
            self.isIPv6 = true
        } else {
            throw refuse("\"\(hostText)\" is not an IP address")
        }
        self.port = port
    }

    /// Parses a comma-separated list ("127.0.0.1:5353, [::1]:53"); empty text is an
    /// empty list (the system's resolver).
    public static func list(_ text: String) throws(DNSError) -> [DNSServerAddress] {
        var servers: [DNSServerAddress] = []
        for part in text.split(separator: ",") where !String(part).trimmingSpaces.isEmpty {
            servers.append(try DNSServerAddress(String(part)))
        }
        return servers
    }

    /// "127.0.0.1:5353", "[::1]:53": the form c-ares reads and people are shown.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `text` as `inet_ntop` writes it, if `inet_pton` reads it in `family`.
    private static func canonical(_ text: String, family: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, text, &buffer) == 1 else { return nil }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, buffer, &out, socklen_t(out.count)) != nil else { return nil }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (no Foundation needed).
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
