/// check_host() of RFC 7208 4 for one sending address: the result a receiver gets
/// for mail from `ip` with `sender` as the envelope sender.
///
/// Limits as in RFC 7208 4.6.4: more than 10 DNS-querying terms (include, a, mx, ptr,
/// exists, redirect) or more than 2 void lookups is a permerror; more than 10 MX
/// names for one `mx` too. `ptr` is not evaluated (it needs reverse DNS, and RFC
/// 7208 5.5 says not to use it): it never matches, and the evaluation says so.
final class SPFEvaluator {
    /// What a term needed that the check does not know, e.g. "exists:%{i}._spf.example.org: macro needs the HELO name".
    private(set) var notEvaluated: [String] = []
    /// The matching term with the includes it was reached through, e.g. "include:_spf.google.com → ip4:…".
    private(set) var matched: String?
    /// Why a permerror or temperror happened.
    private(set) var problem: String?
    private(set) var lookups = 0
    private(set) var voidLookups = 0

    private let dns: DNSCache
    private let ip: IPAddress
    private let sender: String
    private var path: [String] = []

    static let lookupLimit = 10
    static let voidLimit = 2

    init(dns: DNSCache, ip: IPAddress, sender: String) {
        self.dns = dns
        self.ip = ip
        self.sender = sender
    }

    /// The SPF result for `domain` (the sender's domain at the top).
    func checkHost(_ domain: String) -> SPFResult {
        let (records, answer) = dns.spfRecords(domain)
        if case .failed(let hint, _) = answer { return fail(.temperror, "the TXT records of \(domain) could not be read: \(hint)") }
        guard !records.isEmpty else { return .none }
        guard records.count == 1 else { return fail(.permerror, "\(domain) publishes \(records.count) SPF records; receivers accept exactly one") }
        let record: SPFRecord
        do { record = try SPFRecord(records[0]) } catch {
            return fail(.permerror, "the SPF record of \(domain) is invalid: “\(error.term)” \(error.reason)")
        }
        let context = SPFMacro.Context(sender: sender, domain: domain, ip: ip, helo: nil)
        for directive in record.directives {
            if directive.mechanism.queriesDNS, let limit = countLookup(directive.text) { return limit }
            switch match(directive, context) {
            case .match:
                if matched == nil { matched = (path + [directive.text]).joined(separator: " → ") }
                return directive.qualifier.result
            case .noMatch: continue
            case .error(let result): return result
            }
        }
        if let redirect = record.redirect {
            if let limit = countLookup("redirect=\(redirect)") { return limit }
            guard let target = expand(redirect, context, term: "redirect=\(redirect)") else { return .neutral }
            path.append("redirect=\(target)")
            defer { path.removeLast() }
            let result = checkHost(target)
            if result == .none { return fail(.permerror, "redirect=\(target) points at a domain without an SPF record") }
            return result
        }
        return .neutral
    }

    private enum Match { case match, noMatch, error(SPFResult) }

    private func match(_ directive: SPFDirective, _ context: SPFMacro.Context) -> Match {
        switch directive.mechanism {
        case .all:
            return .match
        case .ip4(let network, let prefix), .ip6(let network, let prefix):
            return network.matches(ip, prefix: prefix) ? .match : .noMatch
        case .a(let spec, let v4, let v6):
            guard let target = expand(spec ?? context.domain, context, term: directive.text) else { return .noMatch }
            let answer = dns.lookup(target, ip.isIPv4 ? .a : .aaaa)
            if let error = voidOrFailure(answer, directive.text) { return error }
            return matchesAny(answer.addresses, v4, v6) ? .match : .noMatch
        case .mx(let spec, let v4, let v6):
            guard let target = expand(spec ?? context.domain, context, term: directive.text) else { return .noMatch }
            let answer = dns.lookup(target, .mx)
            if let error = voidOrFailure(answer, directive.text) { return error }
            let exchanges = answer.records.compactMap { if case .mx(_, let e) = $0 { return e } else { return nil } }
            if exchanges.count > 10 {
                return .error(fail(.permerror, "\(directive.text): \(target) has \(exchanges.count) MX records; SPF allows 10"))
            }
            dns.prefetch(exchanges.map { ($0, ip.isIPv4 ? .a : .aaaa) })
            for exchange in exchanges {
                let addresses = dns.lookup(exchange, ip.isIPv4 ? .a : .aaaa)
                if case .failed(let hint, _) = addresses { return .error(fail(.temperror, "\(directive.text): \(hint)")) }
                if matchesAny(addresses.addresses, v4, v6) { return .match }
            }
            return .noMatch
        case .ptr:
            notEvaluated.append("\(directive.text): ptr needs reverse DNS, which this check does not ask (RFC 7208 discourages ptr)")
            return .noMatch
        case .include(let spec):
            guard let target = expand(spec, context, term: directive.text) else { return .noMatch }
            path.append("include:\(target)")
            defer { path.removeLast() }
            // The include's own -all matching is no match here: forget it.
            let before = matched
            let result = checkHost(target)
            if result != .pass { matched = before }
            switch result {
            case .pass: return .match
            case .fail, .softfail, .neutral: return .noMatch
            case .temperror: return .error(.temperror)
            case .none: return .error(fail(.permerror, "include:\(target) has no SPF record"))
            case .permerror: return .error(.permerror)
            }
        case .exists(let spec):
            guard let target = expand(spec, context, term: directive.text) else { return .noMatch }
            let answer = dns.lookup(target, .a)
            if let error = voidOrFailure(answer, directive.text) { return error }
            return answer.addresses.isEmpty ? .noMatch : .match
        }
    }

    private func matchesAny(_ addresses: [String], _ v4: Int?, _ v6: Int?) -> Bool {
        addresses.contains { text in
            guard let address = IPAddress(text), address.isIPv4 == ip.isIPv4 else { return false }
            return address.matches(ip, prefix: ip.isIPv4 ? (v4 ?? 32) : (v6 ?? 128))
        }
    }

    /// nil to go on; a temperror for a failed query, a permerror past the void limit.
    private func voidOrFailure(_ answer: DomainCheckDNSAnswer, _ term: String) -> Match? {
        if case .failed(let hint, _) = answer { return .error(fail(.temperror, "\(term): \(hint)")) }
        if answer.isVoid {
            voidLookups += 1
            if voidLookups > Self.voidLimit {
                return .error(fail(.permerror, "more than \(Self.voidLimit) lookups found nothing (the last: \(term)); receivers stop there"))
            }
        }
        return nil
    }

    private func countLookup(_ term: String) -> SPFResult? {
        lookups += 1
        guard lookups > Self.lookupLimit else { return nil }
        return fail(.permerror, "more than \(Self.lookupLimit) DNS lookups (the 11th: \(term)); receivers stop there")
    }

    private func expand(_ spec: String, _ context: SPFMacro.Context, term: String) -> String? {
        guard let expanded = SPFMacro.expand(spec, context) else {
            notEvaluated.append("\(term): its macro needs a value this check does not know (the HELO name)")
            return nil
        }
        return expanded
    }

    private func fail(_ result: SPFResult, _ why: String) -> SPFResult {
        if problem == nil { problem = why }
        return result
    }
}
