/// The record types mail set-up asks for: addresses, mail exchangers, services
/// (RFC 6186 submission), text (SPF, DKIM, DMARC) and aliases.
public enum DNSRecordType: Sendable, CaseIterable, CustomStringConvertible {
    case a, aaaa, mx, srv, txt, cname

    /// The type's name as DNS tools and people write it ("MX", "TXT").
    public var description: String {
        switch self {
        case .a: "A"
        case .aaaa: "AAAA"
        case .mx: "MX"
        case .srv: "SRV"
        case .txt: "TXT"
        case .cname: "CNAME"
        }
    }

    /// The type's number on the wire (RFC 1035, RFC 2782, RFC 3596).
    var code: Int32 {
        switch self {
        case .a: 1
        case .aaaa: 28
        case .mx: 15
        case .srv: 33
        case .txt: 16
        case .cname: 5
        }
    }
}

/// One question for ``DNSResolver/queryAll(_:)``: a name and the type wanted.
///
/// ```swift
/// let questions = [DNSQuestion(name: "_submissions._tcp.example.org", type: .srv),
///                  DNSQuestion(name: "example.org", type: .mx)]
/// ```
public struct DNSQuestion: Sendable, Hashable {
    /// The name asked about, as typed (internationalized labels are mapped to A-labels
    /// when asked; see ``DNSResolver``).
    public var name: String
    /// The record type wanted.
    public var type: DNSRecordType

    /// A question for `type` records of `name`.
    public init(name: String, type: DNSRecordType) {
        self.name = name
        self.type = type
    }
}

/// One record of an answer, in the form callers read it.
public enum DNSRecord: Sendable, Equatable {
    /// An IPv4 address, dotted quad ("192.0.2.1").
    case a(String)
    /// An IPv6 address, RFC 5952 text ("2001:db8::1").
    case aaaa(String)
    /// A mail exchanger; `exchange` has no trailing dot.
    case mx(preference: Int, exchange: String)
    /// A service location (RFC 2782); `target` has no trailing dot, "." (no service) is "".
    case srv(priority: Int, weight: Int, port: Int, target: String)
    /// A text record: its character-strings joined without separator, as SPF
    /// (RFC 7208 3.3), DKIM and DMARC read them.
    case txt(String)
    /// An alias: the canonical name, without trailing dot.
    case cname(String)
}
