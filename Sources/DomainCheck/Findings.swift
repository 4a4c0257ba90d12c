/// The findings of a report: what each result means for the mail and what to publish,
/// in words for someone who is not a DNS expert. Errors first, then warnings, then info.
enum Findings {
    static func make(_ report: DomainCheckReport, sender: String) -> [DomainFinding] {
        var list = spf(report) + dkim(report) + dmarc(report)
        // Stable: within a severity, the order of the topics above.
        list = list.enumerated().sorted { ($0.element.severity, $0.offset) < ($1.element.severity, $1.offset) }.map(\.element)
        return list
    }

    private static func finding(_ severity: DomainFinding.Severity, _ topic: String, _ message: String,
                                _ record: DNSRecordToPublish? = nil) -> DomainFinding {
        DomainFinding(severity: severity, topic: topic, message: message, record: record)
    }

    // MARK: - SPF

    private static func spf(_ report: DomainCheckReport) -> [DomainFinding] {
        let d = report.domain, spf = report.spf
        var out: [DomainFinding] = []
        let publicAddresses = spf.evaluations.filter { !$0.isPrivate }.compactMap { IPAddress($0.address) }

        if spf.recordsFound == 0 {
            if let p = spf.provider {
                out.append(finding(.error, "spf", "\(d) has no SPF record, so receivers cannot tell that \(p.name) may send for it, and may file or reject the mail as spam. Publish v=spf1 include:\(p.spfInclude) -all at \(d).",
                                   DNSRecordToPublish(name: d, value: "v=spf1 include:\(p.spfInclude) -all")))
            } else if !publicAddresses.isEmpty {
                let value = SPFCheck.withAddresses(nil, publicAddresses)
                out.append(finding(.error, "spf", "\(d) has no SPF record, so receivers cannot tell that your SMTP server may send for it, and may file or reject the mail as spam. Publish \(value) at \(d) (add every other system that sends as \(d)).",
                                   DNSRecordToPublish(name: d, value: value)))
            } else {
                out.append(finding(.error, "spf", "\(d) has no SPF record, so receivers cannot tell which servers may send for it. Publish one at \(d) listing the address your mail leaves from, e.g. v=spf1 ip4:<that address> -all (your provider's documentation names an include: instead)."))
            }
        } else if spf.recordsFound > 1 {
            out.append(finding(.error, "spf", "\(d) publishes \(spf.recordsFound) SPF records. Receivers then treat SPF as broken (permerror) for every message: merge them into one TXT record and delete the others.",
                               mergedRecord(report)))
        } else if let problem = spf.tree.problem {
            out.append(finding(.error, "spf", "The SPF record of \(d) is \(problem). Receivers treat SPF as broken (permerror) for every message; correct the record."))
        }
        for node in spf.tree.flattened.dropFirst() {
            if let problem = node.problem, !problem.hasPrefix("not followed") {
                out.append(finding(.error, "spf", "The SPF record of \(d) uses \(node.via == "redirect" ? "redirect=" : "include:")\(node.domain), which \(problemPhrase(problem)). Receivers treat SPF as broken (permerror): remove or correct that term."))
            }
        }
        if spf.lookups > SPFEvaluator.lookupLimit {
            out.append(finding(.error, "spf", "The SPF record of \(d) needs \(spf.lookups) DNS lookups with its includes; receivers stop at \(SPFEvaluator.lookupLimit) and treat SPF as broken (permerror) for mail not matched before then. Remove includes of services you no longer use, or replace a and mx terms with ip4:/ip6: addresses."))
        } else if spf.lookups >= 8 {
            out.append(finding(.info, "spf", "The SPF record of \(d) needs \(spf.lookups) of the \(SPFEvaluator.lookupLimit) DNS lookups receivers allow; one or two more includes will break it."))
        }
        if spf.voidLookups > SPFEvaluator.voidLimit {
            out.append(finding(.error, "spf", "\(spf.voidLookups) terms of the SPF record of \(d) point at names that do not exist or have no records; receivers allow \(SPFEvaluator.voidLimit) and then treat SPF as broken. Remove those terms."))
        }
        if spf.recordsFound == 1, spf.tree.problem == nil, let record = spf.record, let parsed = try? SPFRecord(record) {
            switch parsed.all?.qualifier {
            case .pass?: out.append(finding(.error, "spf", "The SPF record of \(d) ends with +all, which allows every server in the world to send as \(d). End it with -all (or ~all while you test).",
                                            DNSRecordToPublish(name: d, value: record.replacingAll(with: "-all"))))
            case .neutral?: out.append(finding(.warning, "spf", "The SPF record of \(d) ends with ?all, which says nothing about other servers; receivers get no protection from it. End it with ~all or -all."))
            case nil where parsed.redirect == nil:
                out.append(finding(.warning, "spf", "The SPF record of \(d) has no all term at its end, so mail from any other server is \"neutral\", not refused. End it with -all (or ~all)."))
            default: break
            }
            if parsed.directives.contains(where: { if case .ptr = $0.mechanism { return true } else { return false } }) {
                out.append(finding(.warning, "spf", "The SPF record of \(d) uses ptr, which is slow, unreliable and ignored by some receivers (RFC 7208 5.5). Replace it with ip4:/ip6: terms."))
            }
        }
        if let p = spf.provider, spf.recordsFound == 1 {
            if spf.providerIncludePresent == true {
                out.append(finding(.info, "spf", "Your SMTP server is \(p.name)'s, which sends from its own addresses; the SPF record of \(d) includes \(p.spfInclude), which authorises them."))
            } else if spf.tree.problem == nil {
                let value = SPFCheck.withInclude(spf.record, p.spfInclude)
                out.append(finding(.error, "spf", "Your SMTP server is \(p.name)'s, which sends from its own addresses, but the SPF record of \(d) does not include \(p.spfInclude): receivers may reject or file the mail as spam. Publish \(value) at \(d).",
                                   DNSRecordToPublish(name: d, value: value)))
            }
        }
        if let p = spf.provider, p.ownEnvelopeSender {
            out.append(finding(.info, "spf", "\(p.name) usually sends with its own bounce address (envelope sender) unless you set up a custom MAIL FROM domain under \(d); SPF then checks that domain, and DMARC passes through DKIM or that custom domain."))
        }
        if spf.provider == nil, spf.evaluations.isEmpty, spf.recordsFound == 1 {
            out.append(finding(.info, "spf", "The address your mail leaves from is not known here (no test email yet, and the SMTP host has no address in DNS), so SPF was not evaluated; the record and its includes are shown."))
        }
        for e in spf.evaluations {
            out += evaluation(e, report)
        }
        if !spf.notEvaluated.isEmpty {
            out.append(finding(.info, "spf", "Not evaluated: " + spf.notEvaluated.joined(separator: "; ") + "."))
        }
        return out
    }

    private static func evaluation(_ e: SPFEvaluation, _ report: DomainCheckReport) -> [DomainFinding] {
        let d = report.domain, spf = report.spf
        let privateNote = e.isPrivate
            ? " \(e.address) is a private address: your SMTP server hands the mail on, and recipients see the address of the server that sends it to the internet, which this check cannot see; make sure SPF covers that one."
            : ""
        let source = report.sendingAddressesFrom == "connection" ? "the SMTP server of the test email (\(e.address))" : "your SMTP server's address \(e.address)"
        let fix = e.isPrivate ? nil : IPAddress(e.address).map { DNSRecordToPublish(name: d, value: SPFCheck.withAddresses(spf.record, [$0])) }
        switch e.result {
        case .pass:
            return [finding(.info, "spf", "SPF passes for mail from \(source)\(e.matched.map { " (matched by \($0))" } ?? "").")]
        case .fail:
            return [finding(e.isPrivate ? .warning : .error, "spf", "SPF fails for mail from \(source): the record of \(d) does not list it, and ends with -all, so receivers may reject the mail.\(privateNote)\(fix.map { " Publish \($0.value) at \(d)." } ?? "")", fix)]
        case .softfail, .neutral:
            return [finding(.warning, "spf", "SPF does not pass for mail from \(source) (\(e.result.rawValue)): the record of \(d) does not list it, and receivers may file the mail as spam.\(privateNote)\(fix.map { " Publish \($0.value) at \(d)." } ?? "")", fix)]
        case .permerror, .temperror:
            // The record problems above already explain the usual causes; say the evaluation's own.
            let severity: DomainFinding.Severity = e.result == .permerror ? .error : .warning
            return [finding(severity, "spf", "SPF evaluation for \(source) ended with \(e.result.rawValue): \(e.problem ?? "see above").")]
        case .none:
            return []
        }
    }

    private static func problemPhrase(_ problem: String) -> String {
        switch problem {
        case "no SPF record": "has no SPF record"
        case "the domain does not exist": "does not exist"
        default: "is broken: \(problem)"
        }
    }

    /// One record from several: every term except all/redirect, then the first record's all.
    private static func mergedRecord(_ report: DomainCheckReport) -> DNSRecordToPublish? {
        let texts = report.spf.allRecords
        guard texts.count > 1 else { return nil }
        var terms: [String] = []
        var all: String?
        for text in texts {
            for word in text.split(separator: " ").dropFirst().map(String.init) {
                let lower = word.lowercased()
                if lower.hasSuffix("all"), ["all", "-all", "~all", "?all", "+all"].contains(lower) { all = all ?? word; continue }
                if lower.hasPrefix("redirect=") { continue }
                if !terms.contains(word) { terms.append(word) }
            }
        }
        return DNSRecordToPublish(name: report.domain, value: (["v=spf1"] + terms + [all ?? "~all"]).joined(separator: " "))
    }

    // MARK: - DKIM

    private static func dkim(_ report: DomainCheckReport) -> [DomainFinding] {
        let d = report.domain, dkim = report.dkim, provider = report.spf.provider
        var out: [DomainFinding] = []
        for key in dkim.keys {
            if key.revoked {
                out.append(finding(.info, "dkim", "The DKIM key at \(key.name) is withdrawn (empty p=); mail signed with selector \(key.selector) fails DKIM."))
            } else if let problem = key.problem {
                out.append(finding(.warning, "dkim", "The DKIM record at \(key.name) \(problem)."))
            } else {
                if let bits = key.bits, key.keyType == "rsa", bits < 1024 {
                    out.append(finding(.error, "dkim", "The DKIM key at \(key.name) has only \(bits) bits; receivers ignore keys shorter than 1024 bits. Create a 2048-bit key and publish it."))
                } else if let bits = key.bits, key.keyType == "rsa", bits < 2048 {
                    out.append(finding(.warning, "dkim", "The DKIM key at \(key.name) has \(bits) bits; it still works, but 2048 bits is recommended. Rotate to a 2048-bit key when you can."))
                }
                if key.testing {
                    out.append(finding(.warning, "dkim", "The DKIM key at \(key.name) is in test mode (t=y): receivers treat failed signatures as if unsigned. Remove t=y once signing works."))
                }
            }
        }
        let usable = dkim.usableKeys
        if !usable.isEmpty {
            let list = usable.map { k in "\(k.selector)\(k.bits.map { " (\(k.keyType == "ed25519" ? "Ed25519" : "RSA \($0) bits"))" } ?? "")\(k.cnameTarget.map { ", via \($0)" } ?? "")" }
            out.append(finding(.info, "dkim", "DKIM keys are published for \(d) at selector \(list.joined(separator: ", ")). Whether your mail is signed with them shows only in a received message (its DKIM-Signature header, d=\(d))."))
        } else if let p = provider {
            let asked = p.dkimSelectors.isEmpty ? "" : " (asked: \(p.dkimSelectors.joined(separator: ", ")) and the common selectors)"
            out.append(finding(.warning, "dkim", "No DKIM key was found for \(d)\(asked). \(p.dkimHowTo) Without DKIM, mail that is forwarded fails DMARC, and many receivers rate unsigned mail lower."))
        } else {
            out.append(finding(.warning, "dkim", "No DKIM key was found for \(d) at the common selectors (\(dkim.selectorsTried.joined(separator: ", "))). If your server signs with another selector, this check cannot guess its name; otherwise turn on DKIM signing in your mail server and publish the key it gives you at <selector>._domainkey.\(d). Without DKIM, forwarded mail fails DMARC."))
        }
        return out
    }

    // MARK: - DMARC

    private static func dmarc(_ report: DomainCheckReport) -> [DomainFinding] {
        let d = report.domain, dmarc = report.dmarc
        var out: [DomainFinding] = []
        let starter = DNSRecordToPublish(name: "_dmarc.\(d)", value: "v=DMARC1; p=none; rua=mailto:dmarc-reports@\(dmarc.organizationalDomain)")
        if let problem = dmarc.problem {
            out.append(finding(.error, "dmarc", "The DMARC record of \(d): \(problem). Publish one valid record, e.g. \(starter.value) (the rua address must be a mailbox that receives the reports).", starter))
            return out
        }
        guard let record = dmarc.record, let policy = dmarc.effectivePolicy else {
            out.append(finding(.warning, "dmarc", "\(d) publishes no DMARC record. Gmail, Yahoo and Microsoft expect one from senders; publish \(starter.value) at _dmarc.\(d) (the rua address must be a mailbox that receives the daily reports), and after a few weeks of reports that show your mail passing, tighten p=none to p=quarantine.", starter))
            return out
        }
        let at = dmarc.foundAt.map { $0 == "_dmarc.\(d)" ? "" : " (inherited from \($0))" } ?? ""
        let hasKey = dmarc.dkimAlignment == "key_published"
        if policy == "none" {
            out.append(finding(.info, "dmarc", "DMARC policy of \(d) is p=none\(at): receivers report but do not act on failing mail. When the reports show your mail passing, move to p=quarantine."))
        } else if !hasKey {
            switch dmarc.spfAlignment {
            case "pass":
                out.append(finding(.warning, "dmarc", "DMARC policy of \(d) is p=\(policy)\(at), and without a DKIM key your mail passes DMARC through SPF alone; forwarded mail loses SPF and will be \(policy == "reject" ? "rejected" : "sent to spam"). Publish a DKIM key (see DKIM)."))
            case "fail":
                out.append(finding(.error, "dmarc", "DMARC policy of \(d) is p=\(policy)\(at): mail that passes neither SPF nor DKIM is \(policy == "reject" ? "rejected" : "sent to spam"). SPF does not pass for your server and no DKIM key was found, so your mail will be \(policy == "reject" ? "rejected" : "sent to spam"). Fix SPF (above) and publish a DKIM key."))
            default:
                out.append(finding(.error, "dmarc", "DMARC policy of \(d) is p=\(policy)\(at): mail that passes neither SPF nor DKIM is \(policy == "reject" ? "rejected" : "sent to spam"), and no DKIM key was found for \(d), so everything rests on SPF (which could not be evaluated for your server here). Publish a DKIM key, or until then set p=none.",
                                   DNSRecordToPublish(name: dmarc.foundAt ?? "_dmarc.\(d)", value: record.text.replacingPolicy(with: "none"))))
            }
        } else {
            out.append(finding(.info, "dmarc", "DMARC policy of \(d) is p=\(policy)\(at)\(record.percent < 100 ? " for \(record.percent)% of failing mail" : ""); a DKIM key is published, and SPF \(dmarc.spfAlignment == "pass" ? "passes" : dmarc.spfAlignment == "fail" ? "does not pass" : "could not be evaluated") for your server."))
        }
        if record.aggregateReports.isEmpty {
            out.append(finding(.info, "dmarc", "The DMARC record of \(d) asks for no reports (no rua=), so you will not learn when mail fails. Add rua=mailto:<a mailbox that reads them>."))
        }
        if record.percent < 100, policy != "none" {
            out.append(finding(.info, "dmarc", "pct=\(record.percent): the policy applies to \(record.percent)% of failing mail only."))
        }
        if record.dkimAlignment == "s" || record.spfAlignment == "s" {
            out.append(finding(.info, "dmarc", "Strict alignment (\(record.dkimAlignment == "s" ? "adkim=s" : "")\(record.dkimAlignment == "s" && record.spfAlignment == "s" ? ", " : "")\(record.spfAlignment == "s" ? "aspf=s" : "")): signatures and envelope senders must use exactly \(d), not a subdomain."))
        }
        return out
    }
}

extension String {
    /// An SPF record with its all term replaced by `all` (or appended).
    func replacingAll(with all: String) -> String {
        var words = split(separator: " ").map(String.init)
        if let i = words.firstIndex(where: { ["all", "-all", "~all", "?all", "+all"].contains($0.lowercased()) }) { words[i] = all } else { words.append(all) }
        return words.joined(separator: " ")
    }

    /// A DMARC record with p= set to `policy`.
    func replacingPolicy(with policy: String) -> String {
        split(separator: ";").map { part -> String in
            let trimmed = part.trimmedBlanks
            return trimmed.lowercased().hasPrefix("p=") ? "p=\(policy)" : trimmed
        }.filter { !$0.isEmpty }.joined(separator: "; ")
    }
}
