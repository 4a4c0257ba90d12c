/// The DNS questions the domain check asks, as a protocol so that the checks are
/// pure logic over answers: MailDNS's `DNSResolver` conforms to it in production
/// (DNSResolver+DomainCheck.swift), and unit tests answer from a dictionary.
///
/// ```swift
/// let answer = dns.lookup("example.org", .txt)
/// if case .records(let records) = answer { … }
/// ```
public protocol DomainCheckDNS: Sendable {
    /// One question; CNAMEs the server followed come first in the records.
    func lookup(_ name: String, _ type: DomainCheckDNSType) -> DomainCheckDNSAnswer
    /// Several questions at once (a resolver may ask them in parallel), answers in order.
    func lookupAll(_ questions: [(name: String, type: DomainCheckDNSType)]) -> [DomainCheckDNSAnswer]
}

extension DomainCheckDNS {
    /// One after the other, for resolvers that cannot do better.
    public func lookupAll(_ questions: [(name: String, type: DomainCheckDNSType)]) -> [DomainCheckDNSAnswer] {
        questions.map { lookup($0.name, $0.type) }
    }
}

/// The record types the checks ask for.
public enum DomainCheckDNSType: String, Sendable, Hashable {
    case a = "A", aaaa = "AAAA", mx = "MX", txt = "TXT", cname = "CNAME"
}

/// One answer record.
public enum DomainCheckDNSRecord: Sendable, Equatable {
    /// An IPv4 or IPv6 address as text.
    case address(String)
    /// A mail exchanger, without the trailing dot.
    case mx(preference: Int, exchange: String)
    /// A TXT record's character-strings joined, as SPF, DKIM and DMARC read them.
    case txt(String)
    /// An alias the server followed on the way to the answer.
    case cname(String)
}

/// What a question got: records, one of the two kinds of "nothing" (RFC 7208 4.6.4
/// counts both as void lookups), or a failure that says nothing about the domain.
public enum DomainCheckDNSAnswer: Sendable, Equatable {
    case records([DomainCheckDNSRecord])
    /// NXDOMAIN: the name does not exist.
    case noSuchName
    /// NODATA: the name exists but has no record of this type.
    case noRecords
    /// Timeout, SERVFAIL, refused, malformed: `hint` is one line a person can act on;
    /// `unreachable` when no server answered at all (the whole check then stops).
    case failed(hint: String, unreachable: Bool)

    /// The records, or none for every other answer.
    public var records: [DomainCheckDNSRecord] {
        if case .records(let r) = self { return r }
        return []
    }

    /// TXT strings of the answer.
    public var texts: [String] {
        records.compactMap { if case .txt(let t) = $0 { return t } else { return nil } }
    }

    /// Addresses of the answer.
    public var addresses: [String] {
        records.compactMap { if case .address(let a) = $0 { return a } else { return nil } }
    }

    /// The last alias followed, if any (where a DKIM CNAME points).
    public var cnameTarget: String? {
        records.reversed().lazy.compactMap { if case .cname(let c) = $0 { return c } else { return nil } }.first
    }

    /// NXDOMAIN or NODATA, or records none of which is of the asked type (a CNAME only).
    var isVoid: Bool {
        switch self {
        case .noSuchName, .noRecords: return true
        case .records(let r): return r.allSatisfy { if case .cname = $0 { return true } else { return false } }
        case .failed: return false
        }
    }
}
