/// The DNS questions discovery asks, as a protocol so the engine runs against
/// `MailDNS.DNSResolver` in production (see DNSResolver+Discovery.swift) and against a
/// fake in unit tests. Every answer is a `Result`: "no such record" is a failure with
/// `notFound` set, which discovery reports as "none" rather than as an error.
public protocol DiscoveryDNS: Sendable {
    /// SRV records of `name` (`_submissions._tcp.example.org`), in the server's order.
    func serviceRecords(_ name: String) -> Result<[ServiceRecord], DiscoveryDNSFailure>
    /// MX records of `domain`, in the server's order.
    func mailExchangers(_ domain: String) -> Result<[MailExchanger], DiscoveryDNSFailure>
    /// The IPv6 and IPv4 addresses of `host` (AAAA and A, textual).
    func addresses(_ host: String) -> Result<[String], DiscoveryDNSFailure>
}

/// One SRV record (RFC 2782).
public struct ServiceRecord: Sendable, Equatable {
    /// Lower is tried first.
    public var priority: Int
    /// Among equal priorities, heavier is tried first.
    public var weight: Int
    /// The port of the service.
    public var port: Int
    /// The host, without a trailing dot; "." (or "") means the service is not offered.
    public var target: String

    /// Makes one.
    public init(priority: Int, weight: Int, port: Int, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }

    /// True for RFC 2782's "decidedly not available at this domain" (target ".").
    public var notOffered: Bool { target == "." || target.isEmpty }

    /// RFC 2782 order made deterministic: by priority, then heavier weight first (a
    /// discovery probes every target at once, so the random pick among equal
    /// priorities only matters for which verified one is proposed).
    public static func ordered(_ records: [ServiceRecord]) -> [ServiceRecord] {
        records.enumerated().sorted { a, b in
            (a.element.priority, -a.element.weight, a.offset) < (b.element.priority, -b.element.weight, b.offset)
        }.map(\.element)
    }
}

/// One MX record.
public struct MailExchanger: Sendable, Equatable {
    /// Lower is preferred.
    public var preference: Int
    /// The host, without a trailing dot.
    public var exchange: String

    /// Makes one.
    public init(preference: Int, exchange: String) {
        self.preference = preference
        self.exchange = exchange
    }
}

/// Why a DNS question got no records.
public struct DiscoveryDNSFailure: Error, Sendable, Equatable {
    /// True for NXDOMAIN and NODATA: the name or the record does not exist.
    public var notFound: Bool
    /// One line ("no DNS server answered at 127.0.0.1:5353 within 3 s").
    public var hint: String

    /// Makes one.
    public init(notFound: Bool, hint: String) {
        self.notFound = notFound
        self.hint = hint
    }
}
