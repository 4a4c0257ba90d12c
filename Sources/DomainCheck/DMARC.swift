/// A DMARC record (RFC 7489 6.3) as published at `_dmarc.<domain>`.
public struct DMARCRecord: Sendable, Equatable {
    public var text: String
    /// `p=`: none, quarantine or reject.
    public var policy: String
    /// `sp=`: the policy for subdomains, when given.
    public var subdomainPolicy: String?
    /// `adkim=`, `aspf=`: "r" (relaxed, the default) or "s" (strict).
    public var dkimAlignment: String
    public var spfAlignment: String
    /// `pct=`: the share of failing mail the policy applies to (default 100).
    public var percent: Int
    /// `rua=`, `ruf=`: where aggregate and failure reports go.
    public var aggregateReports: [String]
    public var failureReports: [String]

    /// Whether a TXT string is a DMARC record ("v=DMARC1" as its first tag).
    public static func isDMARC(_ txt: String) -> Bool {
        let first = txt.split(separator: ";", maxSplits: 1).first.map { $0.filter { $0 != " " && $0 != "\t" } } ?? ""
        return first == "v=DMARC1"
    }

    /// Parses a record that ``isDMARC(_:)`` accepted.
    /// - Throws: a `DMARCSyntaxError` with what is wrong (receivers then ignore the record).
    public init(_ text: String) throws(DMARCSyntaxError) {
        let tags = DKIMCheck.tagList(text)
        self.text = text
        guard let p = tags["p"]?.lowercased() else {
            throw DMARCSyntaxError(reason: "has no p= tag (the policy): receivers treat it as p=none at best")
        }
        let policies = ["none", "quarantine", "reject"]
        guard policies.contains(p) else { throw DMARCSyntaxError(reason: "p=\(p) is not none, quarantine or reject") }
        policy = p
        if let sp = tags["sp"]?.lowercased() {
            guard policies.contains(sp) else { throw DMARCSyntaxError(reason: "sp=\(sp) is not none, quarantine or reject") }
            subdomainPolicy = sp
        }
        func alignment(_ tag: String) throws(DMARCSyntaxError) -> String {
            let value = tags[tag]?.lowercased() ?? "r"
            guard value == "r" || value == "s" else { throw DMARCSyntaxError(reason: "\(tag)=\(value) is not r (relaxed) or s (strict)") }
            return value
        }
        dkimAlignment = try alignment("adkim")
        spfAlignment = try alignment("aspf")
        if let pct = tags["pct"] {
            guard let n = Int(pct), (0...100).contains(n) else { throw DMARCSyntaxError(reason: "pct=\(pct) is not a whole number from 0 to 100") }
            percent = n
        } else {
            percent = 100
        }
        func uris(_ tag: String) -> [String] {
            (tags[tag] ?? "").split(separator: ",").map { $0.trimmedBlanks }.filter { !$0.isEmpty }
        }
        aggregateReports = uris("rua")
        failureReports = uris("ruf")
    }
}

/// Why a DMARC record is ignored.
public struct DMARCSyntaxError: Error, Sendable, Equatable {
    public var reason: String
}

/// The DMARC policy that applies to the From domain and what can be said about
/// alignment without a signed message.
public struct DMARCReport: Sendable, Equatable {
    /// The record that applies, if one parsed.
    public var record: DMARCRecord?
    /// The name it was found at (`_dmarc.<domain>`, or the organisational domain's).
    public var foundAt: String?
    /// The organisational domain (RFC 7489 3.2, simplified: ``OrganizationalDomain``).
    public var organizationalDomain: String
    /// The policy for this domain: `sp=` when inherited by a subdomain, else `p=`.
    public var effectivePolicy: String?
    /// Why no record applies, or what is wrong with the one found.
    public var problem: String?
    /// "pass" when SPF passed for every evaluated address (the envelope sender is
    /// the From address here, so the domains align), "fail" when it did not pass,
    /// "unknown" when the sending addresses cannot be known.
    public var spfAlignment: String
    /// "key_published" when a usable DKIM key exists for the From domain (or, with
    /// relaxed alignment, its organisational domain), else "no_key". Whether messages
    /// are actually signed with d= this domain needs a received message.
    public var dkimAlignment: String
}

enum DMARCCheck {
    static func run(domain: String, dns: DNSCache) -> DMARCReport {
        let org = OrganizationalDomain.of(domain)
        var report = DMARCReport(record: nil, foundAt: nil, organizationalDomain: org, effectivePolicy: nil, problem: nil,
                                 spfAlignment: "unknown", dkimAlignment: "no_key")
        var names = ["_dmarc.\(domain)"]
        if org != domain.lowercased() { names.append("_dmarc.\(org)") }
        for (index, name) in names.enumerated() {
            let answer = dns.lookup(name, .txt)
            if case .failed(let hint, _) = answer {
                report.problem = "the DMARC record at \(name) could not be read: \(hint)"
                return report
            }
            let records = answer.texts.filter(DMARCRecord.isDMARC)
            if records.isEmpty { continue }
            report.foundAt = name
            guard records.count == 1 else {
                // RFC 7489 6.6.3: more than one record means no DMARC at all.
                report.problem = "\(name) has \(records.count) DMARC records; receivers then apply none of them"
                return report
            }
            do {
                let record = try DMARCRecord(records[0])
                report.record = record
                report.effectivePolicy = index == 1 ? (record.subdomainPolicy ?? record.policy) : record.policy
            } catch {
                report.problem = "the DMARC record at \(name) \(error.reason)"
            }
            return report
        }
        return report
    }
}
