/// An SPF record (RFC 7208 4.6, 12) parsed into its terms.
///
/// ```swift
/// let record = try SPFRecord("v=spf1 ip4:192.0.2.0/24 include:_spf.google.com -all")
/// record.directives.count   // 3
/// ```
public struct SPFRecord: Sendable, Equatable {
    /// The record as published.
    public let text: String
    /// The terms in order.
    public let terms: [SPFTerm]

    /// Whether a TXT string is an SPF record at all: "v=spf1" alone or followed by a
    /// space (RFC 7208 4.5; "v=spf10" is not one), case-insensitively.
    public static func isSPF(_ txt: String) -> Bool {
        let lower = txt.lowercased()
        return lower == "v=spf1" || lower.hasPrefix("v=spf1 ")
    }

    /// Parses a record that ``isSPF(_:)`` accepted.
    /// - Throws: `SPFSyntaxError` naming the first term that is not SPF (a permerror).
    public init(_ text: String) throws(SPFSyntaxError) {
        guard Self.isSPF(text) else { throw SPFSyntaxError(term: text, reason: "does not start with v=spf1") }
        self.text = text
        var terms: [SPFTerm] = []
        for raw in text.split(separator: " ").dropFirst() {
            terms.append(try Self.term(String(raw)))
        }
        if terms.filter({ if case .redirect = $0 { return true } else { return false } }).count > 1 {
            throw SPFSyntaxError(term: "redirect=", reason: "appears more than once")
        }
        if terms.filter({ if case .explanation = $0 { return true } else { return false } }).count > 1 {
            throw SPFSyntaxError(term: "exp=", reason: "appears more than once")
        }
        self.terms = terms
    }

    /// The mechanisms with their qualifiers, in order.
    public var directives: [SPFDirective] {
        terms.compactMap { if case .directive(let d) = $0 { return d } else { return nil } }
    }

    /// The `redirect=` domain-spec, if any.
    public var redirect: String? {
        terms.lazy.compactMap { if case .redirect(let r) = $0 { return r } else { return nil } }.first
    }

    /// The `all` directive, if any.
    public var all: SPFDirective? {
        directives.first { $0.mechanism == .all }
    }

    /// Terms that cost a DNS lookup (RFC 7208 4.6.4): include, a, mx, ptr, exists, redirect.
    public var lookupTerms: Int {
        directives.filter(\.mechanism.queriesDNS).count + (redirect == nil ? 0 : 1)
    }

    private static func term(_ raw: String) throws(SPFSyntaxError) -> SPFTerm {
        // A modifier is name=value where name starts with a letter (RFC 7208 12).
        if let eq = raw.firstIndex(of: "="), raw.first?.isLetter == true,
           raw[..<eq].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            let name = raw[..<eq].lowercased(), value = String(raw[raw.index(after: eq)...])
            switch name {
            case "redirect":
                try SPFMacro.validate(value, term: raw)
                guard !value.isEmpty else { throw SPFSyntaxError(term: raw, reason: "needs a domain") }
                return .redirect(value)
            case "exp": return .explanation(value)
            default: return .unknownModifier(name: name, value: value)
            }
        }
        var body = Substring(raw)
        var qualifier = SPFQualifier.pass
        if let first = body.first, let q = SPFQualifier(rawValue: first) {
            qualifier = q
            body = body.dropFirst()
        }
        let nameEnd = body.firstIndex { $0 == ":" || $0 == "/" } ?? body.endIndex
        let name = body[..<nameEnd].lowercased()
        let rest = body[nameEnd...]
        let mechanism: SPFMechanism
        switch name {
        case "all":
            guard rest.isEmpty else { throw SPFSyntaxError(term: raw, reason: "takes no argument") }
            mechanism = .all
        case "include", "exists":
            guard rest.hasPrefix(":"), rest.count > 1 else { throw SPFSyntaxError(term: raw, reason: "needs a domain, as \(name):example.org") }
            let domain = String(rest.dropFirst())
            try SPFMacro.validate(domain, term: raw)
            mechanism = name == "include" ? .include(domain) : .exists(domain)
        case "a", "mx":
            let (domain, v4, v6) = try dualCIDR(rest, term: raw)
            mechanism = name == "a" ? .a(domain: domain, ip4Prefix: v4, ip6Prefix: v6) : .mx(domain: domain, ip4Prefix: v4, ip6Prefix: v6)
        case "ptr":
            if rest.isEmpty { mechanism = .ptr(domain: nil) } else {
                guard rest.hasPrefix(":"), rest.count > 1 else { throw SPFSyntaxError(term: raw, reason: "is ptr or ptr:domain") }
                mechanism = .ptr(domain: String(rest.dropFirst()))
            }
        case "ip4", "ip6":
            guard rest.hasPrefix(":") else { throw SPFSyntaxError(term: raw, reason: "needs an address, as \(name == "ip4" ? "ip4:192.0.2.1" : "ip6:2001:db8::1")") }
            let value = rest.dropFirst()
            let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let max = name == "ip4" ? 32 : 128
            guard let address = IPAddress(String(parts[0])), address.isIPv4 == (name == "ip4"), !parts[0].contains("%"),
                  !parts[0].hasPrefix("[") else {
                throw SPFSyntaxError(term: raw, reason: "has no valid \(name == "ip4" ? "IPv4" : "IPv6") address")
            }
            var prefix = max
            if parts.count == 2 {
                guard let p = Int(parts[1]), String(p) == parts[1], (0...max).contains(p) else {
                    throw SPFSyntaxError(term: raw, reason: "has a prefix length that is not 0–\(max)")
                }
                prefix = p
            }
            mechanism = name == "ip4" ? .ip4(address, prefix: prefix) : .ip6(address, prefix: prefix)
        default:
            throw SPFSyntaxError(term: raw, reason: "is not an SPF mechanism (all, include, a, mx, ptr, ip4, ip6, exists) or modifier")
        }
        return .directive(SPFDirective(qualifier: qualifier, mechanism: mechanism, text: raw))
    }

    /// `[":" domain-spec] ["/" ip4-cidr] ["//" ip6-cidr]` of `a` and `mx`.
    private static func dualCIDR(_ rest: Substring, term: String) throws(SPFSyntaxError) -> (String?, Int?, Int?) {
        var text = rest
        var v4: Int?, v6: Int?
        func number(_ s: Substring, max: Int) throws(SPFSyntaxError) -> Int {
            guard let n = Int(s), String(n) == s, (0...max).contains(n) else {
                throw SPFSyntaxError(term: term, reason: "has a prefix length that is not 0–\(max)")
            }
            return n
        }
        if let slash = text.lastIndex(of: "/"), slash > text.startIndex, text[text.index(before: slash)] == "/" {
            v6 = try number(text[text.index(after: slash)...], max: 128)
            text = text[..<text.index(before: slash)]
        }
        if let slash = text.lastIndex(of: "/"), text[text.index(after: slash)...].allSatisfy(\.isNumber) {
            v4 = try number(text[text.index(after: slash)...], max: 32)
            text = text[..<slash]
        }
        if text.isEmpty { return (nil, v4, v6) }
        guard text.hasPrefix(":"), text.count > 1 else { throw SPFSyntaxError(term: term, reason: "is not a, a:domain, a/24 or a:domain/24") }
        let domain = String(text.dropFirst())
        try SPFMacro.validate(domain, term: term)
        return (domain, v4, v6)
    }
}

/// One term of a record.
public enum SPFTerm: Sendable, Equatable {
    case directive(SPFDirective)
    case redirect(String)
    case explanation(String)
    case unknownModifier(name: String, value: String)
}

/// A qualified mechanism, e.g. `-all` or `include:_spf.google.com`.
public struct SPFDirective: Sendable, Equatable {
    public var qualifier: SPFQualifier
    public var mechanism: SPFMechanism
    /// The term as published.
    public var text: String
}

/// What a matching mechanism makes the result.
public enum SPFQualifier: Character, Sendable {
    case pass = "+", fail = "-", softfail = "~", neutral = "?"

    var result: SPFResult {
        switch self {
        case .pass: .pass
        case .fail: .fail
        case .softfail: .softfail
        case .neutral: .neutral
        }
    }
}

/// The mechanisms of RFC 7208 5; domain-specs are unexpanded macro-strings.
public enum SPFMechanism: Sendable, Equatable {
    case all
    case include(String)
    case a(domain: String?, ip4Prefix: Int?, ip6Prefix: Int?)
    case mx(domain: String?, ip4Prefix: Int?, ip6Prefix: Int?)
    case ptr(domain: String?)
    case ip4(IPAddress, prefix: Int)
    case ip6(IPAddress, prefix: Int)
    case exists(String)

    /// Whether evaluating it asks DNS (and counts against the limit of 10).
    public var queriesDNS: Bool {
        switch self {
        case .include, .a, .mx, .ptr, .exists: true
        case .all, .ip4, .ip6: false
        }
    }
}

/// The results of RFC 7208 2.6.
public enum SPFResult: String, Sendable {
    case none, neutral, pass, fail, softfail, temperror, permerror
}

/// A record that is not SPF syntax: a permerror for every receiver.
public struct SPFSyntaxError: Error, Sendable, Equatable {
    /// The term that is wrong.
    public var term: String
    /// What is wrong with it.
    public var reason: String
}
