import DomainCheck

/// A domain check's report as JSON: the one renderer, used by POST
/// email_domain_check and by a successful test email's `domain_check`.
enum DomainCheckJSON {
    static func report(_ r: DomainCheckReport) -> JSONValue {
        .object([
            ("domain", .string(r.domain)),
            ("sending_addresses_from", .string(r.sendingAddressesFrom)),
            ("spf", spf(r.spf)), ("dkim", dkim(r.dkim)), ("dmarc", dmarc(r.dmarc)),
            ("findings", .array(r.findings.map(finding))),
        ])
    }

    static func finding(_ f: DomainFinding) -> JSONValue {
        .object([
            ("severity", .string(f.severity.rawValue)), ("topic", .string(f.topic)), ("message", .string(f.message)),
            ("record", f.record.map { .object([("name", .string($0.name)), ("type", .string($0.type)), ("value", .string($0.value))]) } ?? .null),
        ])
    }

    static func spf(_ s: SPFReport) -> JSONValue {
        .object([
            ("record", string(s.record)), ("records", .array(s.allRecords.map { .string($0) })),
            ("result", string(s.result?.rawValue)),
            ("lookups", .number(Double(s.lookups))), ("lookup_limit", 10), ("void_lookups", .number(Double(s.voidLookups))),
            ("evaluations", .array(s.evaluations.map { e in
                .object([("address", .string(e.address)), ("result", .string(e.result.rawValue)), ("matched", string(e.matched)),
                         ("problem", string(e.problem)), ("private", .bool(e.isPrivate))])
            })),
            ("provider", s.provider.map { p in
                .object([("name", .string(p.name)), ("include", .string(p.spfInclude)), ("include_present", .bool(s.providerIncludePresent == true))])
            } ?? .null),
            ("tree", node(s.tree)),
            ("not_evaluated", .array(s.notEvaluated.map { .string($0) })),
        ])
    }

    static func node(_ n: SPFNode) -> JSONValue {
        .object([("domain", .string(n.domain)), ("via", .string(n.via)), ("record", string(n.record)), ("problem", string(n.problem)),
                 ("lookups", .number(Double(n.lookups))), ("includes", .array(n.children.map(node)))])
    }

    static func dkim(_ d: DKIMReport) -> JSONValue {
        .object([
            ("selectors_tried", .array(d.selectorsTried.map { .string($0) })),
            ("keys", .array(d.keys.map { k in
                .object([("selector", .string(k.selector)), ("name", .string(k.name)), ("cname_target", string(k.cnameTarget)),
                         ("record", string(k.record)), ("key_type", .string(k.keyType)), ("bits", k.bits.map { .number(Double($0)) } ?? .null),
                         ("revoked", .bool(k.revoked)), ("testing", .bool(k.testing)), ("problem", string(k.problem))])
            })),
            ("usable_keys", .number(Double(d.usableKeys.count))),
            ("note", "Only common selectors and the provider's known ones are asked; a selector with another name (Amazon SES uses random tokens) cannot be found this way."),
        ])
    }

    static func dmarc(_ d: DMARCReport) -> JSONValue {
        let r = d.record
        let pct: JSONValue = r.map { .number(Double($0.percent)) } ?? .null
        let rua: [JSONValue] = (r?.aggregateReports ?? []).map { .string($0) }
        let ruf: [JSONValue] = (r?.failureReports ?? []).map { .string($0) }
        let explanation = "The envelope sender is the From address, so SPF aligns whenever it passes. DKIM alignment needs a signed message: "
            + "this check can only see whether a key is published for the From domain."
        let alignment: JSONValue = .object([("spf", .string(d.spfAlignment)), ("dkim", .string(d.dkimAlignment)),
                                            ("explanation", .string(explanation))])
        var members: [(String, JSONValue)] = []
        members.append(("record", string(r?.text)))
        members.append(("found_at", string(d.foundAt)))
        members.append(("organizational_domain", .string(d.organizationalDomain)))
        members.append(("policy", string(r?.policy)))
        members.append(("subdomain_policy", string(r?.subdomainPolicy)))
        members.append(("effective_policy", string(d.effectivePolicy)))
        members.append(("adkim", string(r?.dkimAlignment)))
        members.append(("aspf", string(r?.spfAlignment)))
        members.append(("pct", pct))
        members.append(("rua", .array(rua)))
        members.append(("ruf", .array(ruf)))
        members.append(("problem", string(d.problem)))
        members.append(("alignment", alignment))
        return .object(members)
    }

    private static func string(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
}
