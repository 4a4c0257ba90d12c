#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Smtp

/// How a discovery runs. The defaults are production's; tests point the ports at
/// fixture servers (the well-known ports need root and may be taken).
public struct DiscoveryOptions: Sendable {
    /// Seconds for the whole discovery (DNS, autoconfig, probes).
    public var deadline: Double = 8
    /// Ports and connection security probed on guessed hosts: 465 SSL/TLS, 587, 25 and
    /// 2525 STARTTLS in production (``SmtpAdvice/usualProbes``).
    public var probes: [SmtpProbe] = SmtpAdvice.usualProbes
    /// The HTTPS port of the autoconfig URLs; nil is 443 (tests give nginx's).
    public var autoconfigPort: Int?
    /// A PEM file of extra trusted CAs, for the autoconfig HTTPS fetch and the probes'
    /// certificate check (`discovery_ca_file`); nil: the system CAs only.
    public var caFile: String?
    /// The EHLO name of the probes; nil: the address's domain.
    public var ehloName: String?
    /// Networks never connected to (the responder's `smtp_denied_networks`).
    public var deniedNetworks: [IPNetwork] = []
    /// The client's connection, to stop when it goes away.
    public var abort: SessionAbort?
    /// Most probes at once.
    public var maximumProbes = 16

    /// The defaults.
    public init() {}
}

/// From an email address to verified SMTP settings: SRV records (RFC 6186/8314), the
/// autoconfig document, the MX host's provider, then probes of every candidate in
/// parallel (greeting, EHLO, TLS with full verification, AUTH mechanisms offered — no
/// credentials, no mail), all within one deadline. Guessed hosts (`smtp.<domain>`,
/// `mail.<domain>`) on the usual ports are probed only when no source's candidate works.
///
/// ```swift
/// let report = Discoverer(dns: resolver, options: DiscoveryOptions()).discover(try EmailAddress("noreply@example.org"))
/// report.proposal?.host   // "smtp.example.org"
/// ```
public struct Discoverer: Sendable {
    /// The DNS questions' answerer.
    public var dns: any DiscoveryDNS
    /// How to run.
    public var options: DiscoveryOptions

    /// Makes one.
    public init(dns: any DiscoveryDNS, options: DiscoveryOptions = DiscoveryOptions()) {
        self.dns = dns
        self.options = options
    }

    /// Runs a discovery for `address`. Never throws: every failure is a source's `error`
    /// or a candidate's `verified.error`, and the explanation says what to do.
    public func discover(_ address: EmailAddress) -> DiscoveryReport {
        let started = Date()
        let deadline = started.addingTimeInterval(options.deadline)
        let domain = address.asciiDomain.lowercased()
        let mailbox = address.address
        let dns = self.dns
        let options = self.options
        let abort = options.abort
        let hungUp: @Sendable () -> Bool = { abort?.hasHungUp == true }
        let shouldAbort: (@Sendable () -> Bool)? = abort == nil ? nil : hungUp

        // Phase 1, all at once: both SRV names, MX, both autoconfig URLs.
        let srvNames = [("_submissions._tcp.\(domain)", SmtpSettings.Security.implicitTLS),
                        ("_submission._tcp.\(domain)", SmtpSettings.Security.startTLSRequired)]
        let urls = Autoconfig.urls(domain: domain, port: options.autoconfigPort)
        enum Answer: Sendable {
            case srv(Result<[ServiceRecord], DiscoveryDNSFailure>)
            case mx(Result<[MailExchanger], DiscoveryDNSFailure>)
            case autoconfig(Result<AutoconfigDocument, AutoconfigFailure>)
        }
        var jobs: [@Sendable () -> Answer] = []
        for name in srvNames.map(\.0) {
            jobs.append { Answer.srv(dns.serviceRecords(name)) }
        }
        jobs.append { .mx(dns.mailExchangers(domain)) }
        for entry in urls {
            jobs.append {
                // The fetch gets what is left of the first half of the deadline: probes need the rest.
                let seconds = min(options.deadline / 2, deadline.timeIntervalSinceNow - 0.5)
                return .autoconfig(Autoconfig.fetch(host: entry.host, url: entry.url, domain: domain, dns: dns,
                                                    caFile: options.caFile, seconds: seconds, shouldAbort: shouldAbort))
            }
        }
        let answers = Parallel.run(jobs, until: deadline.addingTimeInterval(-min(2, options.deadline / 3)))

        var sources: [SourceResult] = []
        var candidates: [Candidate] = []
        func add(_ candidate: Candidate) {
            if !candidates.contains(where: { $0.host == candidate.host && $0.port == candidate.port && $0.security == candidate.security }) {
                candidates.append(candidate)
            }
        }
        let timedOut = "no answer before the deadline"
        for (index, name) in srvNames.enumerated() {
            var result = SourceResult(source: .srv, tried: "SRV \(name.0)", found: [], error: nil)
            switch answers[index] {
            case .srv(.success(let records))?:
                let ordered = ServiceRecord.ordered(records)
                if ordered.count == 1, ordered[0].notOffered {
                    result.found = ["not offered (target \".\")"]
                }
                for record in ordered where !record.notOffered && (1...65535).contains(record.port) {
                    let candidate = Candidate(host: record.target.lowercased().trimmingTrailingDot, port: record.port,
                                              security: name.1, authentication: "Auto", username: mailbox,
                                              oauthProvider: nil, source: .srv, verified: .none)
                    result.found.append(candidate.label + " (priority \(record.priority), weight \(record.weight))")
                    add(candidate)
                }
            case .srv(.failure(let failure))?:
                if !failure.notFound { result.error = failure.hint }
            default:
                result.error = timedOut
            }
            sources.append(result)
        }
        var mxResult = SourceResult(source: .mx, tried: "MX \(domain)", found: [], error: nil)
        switch answers[2] {
        case .mx(.success(let exchangers))?:
            let ordered = exchangers.enumerated().sorted { ($0.element.preference, $0.offset) < ($1.element.preference, $1.offset) }.map(\.element)
            var recognised: KnownProvider?
            for exchanger in ordered {
                let provider = KnownProvider.recognise(mx: exchanger.exchange)
                mxResult.found.append(exchanger.exchange + (provider.map { " → \($0.name)" } ?? ""))
                if recognised == nil { recognised = provider }
            }
            if let provider = recognised {
                add(Candidate(host: provider.host, port: provider.port, security: provider.security,
                              authentication: provider.authentication,
                              username: provider.username.map { AutoconfigDocument.expand($0, address: mailbox) },
                              oauthProvider: provider.oauthProvider, source: .mx, verified: .none))
            } else if !ordered.isEmpty {
                mxResult.found.append("no known provider")
            }
        case .mx(.failure(let failure))?:
            if !failure.notFound { mxResult.error = failure.hint }
        default:
            mxResult.error = timedOut
        }
        var autoconfigUsed = false
        for (offset, entry) in urls.enumerated() {
            var result = SourceResult(source: .autoconfig, tried: entry.url, found: [], error: nil)
            switch answers[3 + offset] {
            case .autoconfig(.success(let document))?:
                for server in document.outgoingServers {
                    let security: SmtpSettings.Security = switch server.socketType.lowercased() {
                    case "ssl": .implicitTLS
                    case "starttls": .startTLSRequired
                    default: .none
                    }
                    let candidate = Candidate(host: server.hostname.lowercased().trimmingTrailingDot, port: server.port, security: security,
                                              authentication: Self.storedAuthentication(autoconfig: server.authentication),
                                              username: server.username.map { AutoconfigDocument.expand($0, address: mailbox) },
                                              oauthProvider: nil, source: .autoconfig, verified: .none)
                    result.found.append(candidate.label)
                    // The second URL is a fallback: used only when the first gave nothing.
                    if !autoconfigUsed { add(candidate) }
                }
                autoconfigUsed = true
            case .autoconfig(.failure(let failure))?:
                if failure.missing { result.found = [] } else { result.error = failure.reason }
                if failure.missing { result.error = nil }
            default:
                result.error = timedOut
            }
            sources.append(result)
        }
        sources.append(mxResult)

        // Phase 2: probe what the sources named; then, if nothing works, the guesses.
        candidates = probeAll(candidates, address: address, deadline: deadline)
        if !candidates.contains(where: \.usable), deadline.timeIntervalSinceNow > 1, abort?.hasHungUp != true {
            let hosts = ["smtp.\(domain)", "mail.\(domain)"]
            var guesses: [Candidate] = []
            for host in hosts {
                for probe in options.probes {
                    let candidate = Candidate(host: host, port: probe.port, security: probe.security, authentication: "Auto",
                                              username: mailbox, oauthProvider: nil, source: .probe, verified: .none)
                    if !candidates.contains(where: { $0.host == host && $0.port == probe.port && $0.security == probe.security }) {
                        guesses.append(candidate)
                    }
                }
            }
            let probed = probeAll(guesses, address: address, deadline: deadline)
            let ports = options.probes.map { "\($0.port)" }.joined(separator: ", ")
            sources.append(SourceResult(source: .probe, tried: "\(hosts.joined(separator: ", ")) on ports \(ports)",
                                        found: probed.filter(\.usable).map(\.label),
                                        error: probed.allSatisfy({ $0.verified.error?.hasSuffix("does not resolve") == true })
                                            ? "neither name resolves" : nil))
            candidates += probed.filter { $0.verified.greeting || !($0.verified.error?.hasSuffix("does not resolve") ?? false) }
        }

        candidates = Ranking.sorted(candidates)
        let proposal = candidates.first(where: \.usable).map(Ranking.proposal)
        let explanation = Ranking.explain(proposal: proposal, best: candidates.first(where: \.usable),
                                          candidates: candidates, domain: domain)
        return DiscoveryReport(address: mailbox, domain: domain,
                               elapsedMilliseconds: Int(Date().timeIntervalSince(started) * 1000),
                               sources: sources, candidates: candidates, proposal: proposal, explanation: explanation)
    }

    /// Resolves each candidate's host with discovery's DNS and probes them all at once.
    private func probeAll(_ candidates: [Candidate], address: EmailAddress, deadline: Date) -> [Candidate] {
        let limited = Array(candidates.prefix(options.maximumProbes))
        let dns = self.dns
        let options = self.options
        let jobs: [@Sendable () -> Candidate] = limited.map { candidate in
            {
                var candidate = candidate
                switch dns.addresses(candidate.host) {
                case .failure(let failure):
                    candidate.verified.error = failure.notFound ? "\(candidate.host) does not resolve" : failure.hint
                    return candidate
                case .success(let addresses):
                    return Prober.verify(candidate, addresses: addresses, address: address,
                                         options: options, deadline: deadline)
                }
            }
        }
        let results = Parallel.run(jobs, until: deadline)
        return limited.indices.map { index in
            results[index] ?? {
                var late = limited[index]
                late.verified.error = "no answer before the deadline"
                return late
            }()
        }
    }

    /// The stored sign-in method for autoconfig's `<authentication>` values.
    static func storedAuthentication(autoconfig values: [String]) -> String {
        for value in values.map({ $0.lowercased() }) {
            switch value {
            case "oauth2": return "XOAUTH2"
            case "none", "client-ip-address": return "None"
            case "password-cleartext", "plain", "password-encrypted", "secure": return "Auto"
            default: continue
            }
        }
        return "Auto"
    }
}
