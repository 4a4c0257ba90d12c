import Discovery
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MailDNS
import Smtp

/// What the responder and the CLI pass to every discovery: the DNS servers
/// (`dns_servers` / `--dns-server`), extra trusted CAs (`discovery_ca_file`), and the
/// ports — fixed in production (autoconfig on 443; probes on 465 SSL/TLS, 587, 25 and
/// 2525 STARTTLS), configurable only so tests can point them at fixture servers
/// (`discovery_autoconfig_port`, `discovery_probe_ports`).
struct DiscoverySetup: Sendable {
    var dnsServers: [String] = []
    var caFile: String?
    var autoconfigPort: Int?
    var probes: [SmtpProbe] = SmtpAdvice.usualProbes
    var deniedNetworks: [IPNetwork] = []
    var deadline: Double = 8

    /// The engine with a resolver over the servers.
    func discoverer(abort: SessionAbort? = nil) throws(DNSError) -> Discoverer {
        var options = DiscoveryOptions()
        options.deadline = deadline
        options.caFile = caFile
        options.autoconfigPort = autoconfigPort
        options.probes = probes
        options.deniedNetworks = deniedNetworks
        options.abort = abort
        return Discoverer(dns: try DNSResolver(servers: dnsServers, timeout: 2, attempts: 2), options: options)
    }

    /// `discovery_probe_ports`: "465:ssl, 587:starttls, 25:starttls, 2525:starttls".
    static func probes(_ text: String) -> [SmtpProbe]? {
        var probes: [SmtpProbe] = []
        for item in text.split(separator: ",").map({ $0.trimmingSpaces() }) where !item.isEmpty {
            let parts = item.split(separator: ":").map(String.init)
            guard parts.count == 2, let port = Int(parts[0]), (1...65535).contains(port) else { return nil }
            switch parts[1].lowercased() {
            case "ssl", "tls": probes.append(SmtpProbe(port: port, security: .implicitTLS))
            case "starttls": probes.append(SmtpProbe(port: port, security: .startTLSRequired))
            default: return nil
            }
        }
        return probes.isEmpty ? nil : probes
    }

    /// The address's error message, the same words as the settings' from_address check.
    static func addressProblem(_ text: String) -> String? {
        SettingsValidator.smtpAddressCheck(text).map { "\(SettingsSchema.label(.fromAddress)) \(SettingsValidator.sentence($0))" }
    }

    /// The report as JSON bytes.
    static func json(_ report: DiscoveryReport, pretty: Bool = false) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        return (try? encoder.encode(report)) ?? Data("{}".utf8)
    }
}
