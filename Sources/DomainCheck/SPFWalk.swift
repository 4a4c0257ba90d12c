/// One record of the include chain: the sender domain's record at the top, each
/// `include:` and `redirect=` below it.
public struct SPFNode: Sendable, Equatable {
    /// The domain whose record this is.
    public var domain: String
    /// "top", "include" or "redirect".
    public var via: String
    /// The SPF record found there, if exactly one.
    public var record: String?
    /// What is wrong here ("no SPF record", "2 SPF records", a syntax error, a DNS failure,
    /// "not followed: …"), nil when fine.
    public var problem: String?
    /// DNS-querying terms in this record itself.
    public var lookups: Int
    /// Includes and the redirect of this record.
    public var children: [SPFNode]

    /// This node and every node below it, depth first.
    public var flattened: [SPFNode] { [self] + children.flatMap(\.flattened) }
}

/// The whole record tree, whatever the sending address: every include and redirect
/// followed (a receiver may walk all of it), DNS-querying terms and void lookups
/// counted over all of it. This is what the 10-lookup limit is about, and what is
/// shown when the sending addresses cannot be known.
struct SPFWalk {
    private(set) var root: SPFNode
    private(set) var lookups = 0
    private(set) var voidLookups = 0
    /// Terms that could not be followed without knowing the sending address (macros).
    private(set) var notEvaluated: [String] = []

    private let dns: DNSCache
    private let sender: String

    init(domain: String, sender: String, dns: DNSCache) {
        self.dns = dns
        self.sender = sender
        root = SPFNode(domain: domain, via: "top", record: nil, problem: nil, lookups: 0, children: [])
        var visiting: Set<String> = []
        root = walk(domain, via: "top", depth: 0, visiting: &visiting)
    }

    private mutating func walk(_ domain: String, via: String, depth: Int, visiting: inout Set<String>) -> SPFNode {
        var node = SPFNode(domain: domain, via: via, record: nil, problem: nil, lookups: 0, children: [])
        let key = domain.lowercased()
        guard !visiting.contains(key) else {
            node.problem = "includes itself (a loop): receivers give up with permerror"
            return node
        }
        // Past the limit every receiver has given up; the count is what matters, not the rest of a huge tree.
        guard depth < 25, lookups <= 2 * SPFEvaluator.lookupLimit else {
            node.problem = "not followed: far past the lookup limit"
            return node
        }
        visiting.insert(key)
        defer { visiting.remove(key) }

        let (records, answer) = dns.spfRecords(domain)
        switch answer {
        case .failed(let hint, _): node.problem = "the TXT records could not be read: \(hint)"; return node
        case .noSuchName: node.problem = "the domain does not exist"; if via != "top" { voidLookups += 1 }; return node
        default: break
        }
        guard !records.isEmpty else {
            node.problem = "no SPF record"
            if via != "top" { voidLookups += 1 }
            return node
        }
        guard records.count == 1 else { node.problem = "\(records.count) SPF records (receivers accept exactly one)"; return node }
        node.record = records[0]
        let record: SPFRecord
        do { record = try SPFRecord(records[0]) } catch {
            node.problem = "invalid: “\(error.term)” \(error.reason)"
            return node
        }
        node.lookups = record.lookupTerms
        lookups += record.lookupTerms
        let context = SPFMacro.Context(sender: sender, domain: domain, ip: nil, helo: nil)

        // Addresses of a and mx terms, asked at once, to count the void ones.
        var voidChecks: [(name: String, type: DomainCheckDNSType)] = []
        for directive in record.directives {
            switch directive.mechanism {
            case .a(let spec, _, _):
                if let t = SPFMacro.expand(spec ?? domain, context) { voidChecks += [(t, .a), (t, .aaaa)] }
            case .mx(let spec, _, _):
                if let t = SPFMacro.expand(spec ?? domain, context) { voidChecks.append((t, .mx)) }
            default: break
            }
        }
        dns.prefetch(voidChecks)
        for directive in record.directives {
            switch directive.mechanism {
            case .include(let spec):
                guard let target = SPFMacro.expand(spec, context) else {
                    notEvaluated.append("\(directive.text) (in \(domain)): its macro needs the sending address")
                    node.children.append(SPFNode(domain: spec, via: "include", record: nil,
                                                 problem: "not followed: the name depends on the sending address", lookups: 0, children: []))
                    continue
                }
                node.children.append(walk(target, via: "include", depth: depth + 1, visiting: &visiting))
            case .a(let spec, _, _):
                if let t = SPFMacro.expand(spec ?? domain, context), dns.lookup(t, .a).isVoid, dns.lookup(t, .aaaa).isVoid {
                    voidLookups += 1
                }
            case .mx(let spec, _, _):
                if let t = SPFMacro.expand(spec ?? domain, context), dns.lookup(t, .mx).isVoid { voidLookups += 1 }
            case .exists(let spec):
                if SPFMacro.expand(spec, context) == nil {
                    notEvaluated.append("\(directive.text) (in \(domain)): its macro needs the sending address")
                }
            case .ptr:
                notEvaluated.append("\(directive.text) (in \(domain)): ptr needs reverse DNS, which this check does not ask")
            default: break
            }
        }
        if let redirect = record.redirect, record.all == nil {
            if let target = SPFMacro.expand(redirect, context) {
                node.children.append(walk(target, via: "redirect", depth: depth + 1, visiting: &visiting))
            } else {
                notEvaluated.append("redirect=\(redirect) (in \(domain)): its macro needs the sending address")
            }
        }
        return node
    }
}
