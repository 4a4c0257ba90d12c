import MailDNS

extension ResponderConfig {
    /// A resolver asking the configured `dns_servers` (or the system's).
    func dnsResolver(timeout: Double = 3, attempts: Int = 2) throws(DNSError) -> DNSResolver {
        try DNSResolver(servers: dnsServers.map(\.description), timeout: timeout, attempts: attempts)
    }
}
