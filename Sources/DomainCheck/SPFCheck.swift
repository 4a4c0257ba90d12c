/// SPF of the sender domain: the record, its include tree and lookup count, and the
/// result for each sending address that can be known.
public struct SPFReport: Sendable, Equatable {
    /// The one SPF record, if exactly one was found.
    public var record: String?
    /// Every SPF record the domain publishes (2 or more is a permerror).
    public var allRecords: [String]
    /// How many SPF records the domain publishes.
    public var recordsFound: Int { allRecords.count }
    /// The tree of the record, its includes and redirect.
    public var tree: SPFNode
    /// DNS-querying terms over the whole tree (the limit is 10).
    public var lookups: Int
    /// Includes, a and mx terms that found nothing (the limit is 2).
    public var voidLookups: Int
    /// The result for each sending address evaluated.
    public var evaluations: [SPFEvaluation]
    /// The submission server's provider, when it sends from addresses of its own.
    public var provider: MailProvider?
    /// Whether the provider's include is somewhere in the tree.
    public var providerIncludePresent: Bool?
    /// Terms that could not be evaluated, and why.
    public var notEvaluated: [String]

    /// The worst result over the evaluated addresses; nil when none was evaluated.
    public var result: SPFResult? {
        let order: [SPFResult] = [.permerror, .temperror, .fail, .softfail, .neutral, .none, .pass]
        return order.first { r in evaluations.contains { $0.result == r } }
    }
}

/// check_host() for one address.
public struct SPFEvaluation: Sendable, Equatable {
    public var address: String
    public var result: SPFResult
    /// The term that decided, through its includes ("include:_spf.example → ip4:192.0.2.0/24").
    public var matched: String?
    /// Why a permerror or temperror happened.
    public var problem: String?
    /// The address is loopback or private: recipients see another one.
    public var isPrivate: Bool
    public var lookups: Int
}

enum SPFCheck {
    static func run(domain: String, sender: String, addresses: [IPAddress], provider: MailProvider?, dns: DNSCache) -> SPFReport {
        let walk = SPFWalk(domain: domain, sender: sender, dns: dns)
        let found = dns.spfRecords(domain).records
        var evaluations: [SPFEvaluation] = []
        var notEvaluated = walk.notEvaluated
        for address in addresses {
            let evaluator = SPFEvaluator(dns: dns, ip: address, sender: sender)
            let result = evaluator.checkHost(domain)
            evaluations.append(SPFEvaluation(address: address.description, result: result, matched: evaluator.matched,
                                             problem: evaluator.problem, isPrivate: address.isPrivate, lookups: evaluator.lookups))
            for note in evaluator.notEvaluated where !notEvaluated.contains(note) { notEvaluated.append(note) }
        }
        let present = provider.map { p in walk.root.flattened.contains { $0.domain.lowercased() == p.spfInclude && $0.via == "include" } }
        return SPFReport(record: found.count == 1 ? found[0] : nil, allRecords: found, tree: walk.root,
                         lookups: walk.lookups, voidLookups: walk.voidLookups, evaluations: evaluations,
                         provider: provider, providerIncludePresent: present, notEvaluated: notEvaluated)
    }

    /// The record with `include:<target>` added before its `all` (or redirect), or a new one.
    static func withInclude(_ record: String?, _ target: String) -> String {
        guard let record, let parsed = try? SPFRecord(record) else { return "v=spf1 include:\(target) -all" }
        var words = record.split(separator: " ").map(String.init)
        let insertAt = words.firstIndex { word in
            let w = word.lowercased()
            return w.hasPrefix("redirect=") || ["all", "-all", "~all", "?all", "+all"].contains(w)
        } ?? words.count
        words.insert("include:\(target)", at: insertAt)
        if parsed.all == nil, parsed.redirect == nil { words.append("~all") }
        return words.joined(separator: " ")
    }

    /// The record with `ip4:`/`ip6:` terms for `addresses` added, or a new one.
    static func withAddresses(_ record: String?, _ addresses: [IPAddress]) -> String {
        let terms = addresses.map { $0.isIPv4 ? "ip4:\($0)" : "ip6:\($0)" }
        guard let record, let parsed = try? SPFRecord(record) else { return (["v=spf1"] + terms + ["-all"]).joined(separator: " ") }
        var words = record.split(separator: " ").map(String.init)
        let insertAt = words.firstIndex { word in
            let w = word.lowercased()
            return w.hasPrefix("redirect=") || ["all", "-all", "~all", "?all", "+all"].contains(w)
        } ?? words.count
        words.insert(contentsOf: terms, at: insertAt)
        if parsed.all == nil, parsed.redirect == nil { words.append("~all") }
        return words.joined(separator: " ")
    }
}
