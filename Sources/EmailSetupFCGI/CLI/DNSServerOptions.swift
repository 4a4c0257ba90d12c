import ArgumentParser
import MailDNS

/// `--dns-server H:P` for commands that ask DNS (`discover`, the domain check):
/// which servers to ask instead of the responder's `dns_servers` or /etc/resolv.conf's.
/// Repeatable; each an IP address with an optional port ("127.0.0.1:5353", "[::1]:53").
///
/// ```swift
/// struct Discover: ParsableCommand {
///     @OptionGroup var dns: DNSServerOptions
///     func run() throws { let resolver = try dns.resolver(configured: []) }
/// }
/// ```
struct DNSServerOptions: ParsableArguments {
    @Option(name: .customLong("dns-server"),
            help: ArgumentHelp("DNS server to ask, an IP address with an optional port (127.0.0.1:5353, [::1]:53); repeat for more. Default: dns_servers of the configuration, else /etc/resolv.conf.",
                               valueName: "host:port"))
    var dnsServers: [String] = []

    func validate() throws {
        for server in dnsServers {
            do throws(DNSError) { _ = try DNSServerAddress(server) } catch { throw ValidationError(error.hint) }
        }
    }

    /// The servers to ask: these options, else `configured` (the responder's
    /// `dns_servers`), else none (the system's resolver).
    func servers(configured: [DNSServerAddress]) -> [String] {
        dnsServers.isEmpty ? configured.map(\.description) : dnsServers
    }

    /// A resolver asking ``servers(configured:)``.
    func resolver(configured: [DNSServerAddress], timeout: Double = 3, attempts: Int = 2) throws(DNSError) -> DNSResolver {
        try DNSResolver(servers: servers(configured: configured), timeout: timeout, attempts: attempts)
    }
}
