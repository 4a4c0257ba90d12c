/// Answers of one domain check, asked once each: SPF's walk and its evaluations,
/// DKIM and DMARC ask the same names more than once. Lives for one check on one thread.
final class DNSCache {
    let dns: any DomainCheckDNS
    private var answers: [String: DomainCheckDNSAnswer] = [:]

    init(_ dns: any DomainCheckDNS) { self.dns = dns }

    func lookup(_ name: String, _ type: DomainCheckDNSType) -> DomainCheckDNSAnswer {
        let key = Self.key(name, type)
        if let known = answers[key] { return known }
        let answer = dns.lookup(name, type)
        answers[key] = answer
        return answer
    }

    /// Asks what is not cached yet in one batch (the resolver may ask them at once).
    func prefetch(_ questions: [(name: String, type: DomainCheckDNSType)]) {
        let missing = questions.filter { answers[Self.key($0.name, $0.type)] == nil }
        guard !missing.isEmpty else { return }
        for (question, answer) in zip(missing, dns.lookupAll(missing)) {
            answers[Self.key(question.name, question.type)] = answer
        }
    }

    /// The SPF records among the TXT records of `domain`, or the DNS answer that had none.
    func spfRecords(_ domain: String) -> (records: [String], answer: DomainCheckDNSAnswer) {
        let answer = lookup(domain, .txt)
        return (answer.texts.filter(SPFRecord.isSPF), answer)
    }

    private static func key(_ name: String, _ type: DomainCheckDNSType) -> String {
        "\(type.rawValue) \(name.lowercased().trimmingTrailingDot)"
    }
}

extension String {
    /// Without one trailing dot: "example.org." and "example.org" are one name.
    var trimmingTrailingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}

extension StringProtocol {
    /// Without spaces and tabs around it (the folding white space of tag lists).
    var trimmedBlanks: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
