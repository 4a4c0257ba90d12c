/// SPF, DKIM and DMARC of a sender domain, with findings a person can act on.
///
/// ```swift
/// let checker = DomainChecker(dns: try DNSResolver(servers: ["127.0.0.1:5353"]))
/// let report = try checker.check(DomainCheckRequest(domain: "example.org", smtpHost: "smtp.office365.com"))
/// for finding in report.findings { print(finding.severity, finding.message) }
/// ```
public struct DomainChecker: Sendable {
    public let dns: any DomainCheckDNS

    public init(dns: any DomainCheckDNS) { self.dns = dns }

    /// Runs every check. DNS failures inside (an include that times out) become
    /// temperrors and findings; only a resolver that does not answer at all throws.
    /// - Throws: `DomainCheckError` when no DNS server answered the first question.
    public func check(_ request: DomainCheckRequest) throws(DomainCheckError) -> DomainCheckReport {
        let domain = request.domain.lowercased().trimmingTrailingDot
        let cache = DNSCache(dns)
        // The first question tells whether DNS works at all; without it every
        // section would be a list of timeouts, each taking the full timeout.
        if case .failed(let hint, true) = cache.lookup(domain, .txt) { throw DomainCheckError(hint: hint) }

        let provider = request.smtpHost.flatMap(MailProvider.forSubmissionHost)
        var addresses: [IPAddress] = []
        var addressesFrom = "none"
        if provider == nil {
            addresses = request.sendingAddresses.compactMap(IPAddress.init)
            addressesFrom = addresses.isEmpty ? "none" : "connection"
            if addresses.isEmpty, let host = request.smtpHost {
                if let literal = IPAddress(host) {
                    addresses = [literal]
                } else {
                    cache.prefetch([(host, .a), (host, .aaaa)])
                    addresses = (cache.lookup(host, .a).addresses + cache.lookup(host, .aaaa).addresses).compactMap(IPAddress.init)
                }
                addressesFrom = addresses.isEmpty ? "none" : "smtp_host"
            }
        }
        var seen: Set<IPAddress> = []
        addresses = addresses.filter { seen.insert($0).inserted }

        let sender = request.sender ?? "postmaster@\(domain)"
        let spf = SPFCheck.run(domain: domain, sender: sender, addresses: addresses, provider: provider, dns: cache)
        let dkim = DKIMCheck.run(domain: domain, provider: provider, dns: cache)
        var dmarc = DMARCCheck.run(domain: domain, dns: cache)
        dmarc.spfAlignment = spf.result.map { $0 == .pass ? "pass" : "fail" } ?? "unknown"
        // Keys of the From domain only: relaxed alignment would also accept d= the
        // organisational domain, but a parent's key says nothing about who signs this mail.
        dmarc.dkimAlignment = dkim.usableKeys.isEmpty ? "no_key" : "key_published"

        var report = DomainCheckReport(domain: domain, sendingAddressesFrom: addressesFrom, spf: spf, dkim: dkim, dmarc: dmarc, findings: [])
        report.findings = Findings.make(report, sender: sender)
        return report
    }
}

/// What to check.
public struct DomainCheckRequest: Sendable {
    /// The sender domain (A-labels).
    public var domain: String
    /// The envelope sender (here the From address); `%{s}`, `%{l}` of SPF macros.
    public var sender: String?
    /// The saved SMTP server: a known provider's name means its own sending addresses.
    public var smtpHost: String?
    /// The addresses the test email was handed to (the transcript's remote address).
    public var sendingAddresses: [String]

    public init(domain: String, sender: String? = nil, smtpHost: String? = nil, sendingAddresses: [String] = []) {
        self.domain = domain
        self.sender = sender
        self.smtpHost = smtpHost
        self.sendingAddresses = sendingAddresses
    }
}

/// Everything the check found.
public struct DomainCheckReport: Sendable, Equatable {
    public var domain: String
    /// Where the evaluated addresses came from: "connection" (the test email's
    /// server), "smtp_host" (its DNS addresses), "none" (a provider, or unknown).
    public var sendingAddressesFrom: String
    public var spf: SPFReport
    public var dkim: DKIMReport
    public var dmarc: DMARCReport
    /// Errors first, then warnings, then information.
    public var findings: [DomainFinding]
}

/// One thing to know or to fix.
public struct DomainFinding: Sendable, Equatable {
    public enum Severity: String, Sendable, Comparable {
        case error, warning, info
        public static func < (a: Severity, b: Severity) -> Bool {
            [Severity.error, .warning, .info].firstIndex(of: a)! < [Severity.error, .warning, .info].firstIndex(of: b)!
        }
    }
    public var severity: Severity
    /// "spf", "dkim" or "dmarc".
    public var topic: String
    /// Plain words: what it means for the mail and what to do.
    public var message: String
    /// The TXT record to publish, where one helps.
    public var record: DNSRecordToPublish?
}

/// A TXT record to publish at `name`.
public struct DNSRecordToPublish: Sendable, Equatable {
    public var name: String
    public var type = "TXT"
    public var value: String
}

/// No DNS server answered: nothing about the domain can be said.
public struct DomainCheckError: Error, Sendable, Equatable {
    /// One line a person can act on.
    public var hint: String
}
