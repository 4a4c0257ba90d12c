import ArgumentParser
import Discovery
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MailDNS
import Smtp

/// `emailsetup discover ADDRESS`: find and verify the submission server of the
/// address's domain (SRV, autoconfig, MX provider, probes); prints the proposal.
///
/// ```
/// emailsetup discover noreply@example.org
/// emailsetup discover noreply@example.org --dns-server 127.0.0.1:5353 --json
/// ```
struct DiscoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discover",
        abstract: "Find the SMTP submission server of an address's domain and verify it; saves nothing.",
        discussion: """
        Asks DNS for SRV records (_submissions._tcp, _submission._tcp), fetches the domain's autoconfig document over HTTPS, recognises the MX host's provider, then probes every candidate at once (greeting, EHLO, TLS with full certificate verification, the AUTH mechanisms offered; no credentials, no mail). When no source names a server, smtp.DOMAIN and mail.DOMAIN are probed on 465 (SSL/TLS), 587, 25 and 2525 (STARTTLS).

        Exit status: 0 a verified proposal, 3 nothing verified, 2 bad usage or input. With --json, prints the object of POST /api/setup/email_discover/{address}: {"address","domain","elapsed_ms","sources":[…],"candidates":[…],"proposal":{…}|null,"explanation"}.
        """
    )

    @Argument(help: "The sender address, e.g. noreply@example.org.")
    var address: String

    @OptionGroup var dns: DNSServerOptions

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("Extra trusted CA certificates (PEM) for the autoconfig fetch and the probes.", valueName: "file"))
    var caFile: String?

    @Option(name: .customLong("deadline"), help: ArgumentHelp("Seconds for the whole discovery (default 8).", valueName: "seconds"))
    var deadline: Double = 8

    @Flag(name: .customLong("json"), help: "Print the result as one JSON object.")
    var json = false

    // Test hooks: the well-known ports need root and may be taken on a test machine.
    @Option(name: .customLong("autoconfig-port"), help: .hidden)
    var autoconfigPort: Int?

    @Option(name: .customLong("probe-ports"), help: .hidden)
    var probePorts: String?

    func run() throws {
        func usage(_ text: String) throws -> Never {
            CLIOutput.stderr("emailsetup discover: \(text)")
            throw ExitCode(ExitStatus.usage)
        }
        if let problem = DiscoverySetup.addressProblem(address) { try usage(problem) }
        guard let parsed = try? EmailAddress(address), !parsed.isAddressLiteral else {
            try usage("the address must end in a domain name, not an address literal")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { try usage("--ca-file \(caFile): cannot read this file") }
        guard deadline > 0, deadline <= 60 else { try usage("--deadline must be between 0 and 60 seconds") }
        var setup = DiscoverySetup(dnsServers: dns.servers(configured: []), caFile: caFile, autoconfigPort: autoconfigPort)
        setup.deadline = deadline
        if let probePorts {
            guard let probes = DiscoverySetup.probes(probePorts) else { try usage("--probe-ports must be PORT:ssl or PORT:starttls, separated by commas") }
            setup.probes = probes
        }
        let discoverer: Discoverer
        do throws(DNSError) { discoverer = try setup.discoverer() } catch { try usage(error.hint) }
        let report = discoverer.discover(parsed)
        if json {
            StandardStreams.output(Array(DiscoverySetup.json(report)) + Array("\n".utf8))
        } else {
            CLIOutput.stdout("discovery for \(report.domain) (\(report.elapsedMilliseconds) ms)")
            for source in report.sources {
                let found = source.found.isEmpty ? (source.error == nil ? "nothing" : "") : source.found.joined(separator: "; ")
                CLIOutput.stdout("  \(source.source.rawValue): \(source.tried): \(found)\(source.error.map { (found.isEmpty ? "" : " — ") + $0 } ?? "")")
            }
            for candidate in report.candidates {
                let v = candidate.verified
                let state = candidate.usable
                    ? "verified" + (v.tls ? (v.certificateValid == true ? ", certificate valid" : ", certificate NOT valid") : ", no TLS")
                        + (v.authMechanisms.isEmpty ? "" : ", AUTH \(v.authMechanisms.joined(separator: " "))")
                    : "not verified: \(v.error ?? "-")"
                CLIOutput.stdout("  candidate \(candidate.label) [\(candidate.source.rawValue)]: \(state)")
            }
            if let p = report.proposal {
                CLIOutput.stdout("proposal: --host \(p.host) --port \(p.port) --security \(p.connectionType == "SSL" ? "ssl" : p.connectionType == "STARTTLS" ? "starttls" : "none")"
                    + " (smtp_authentication_type \(p.authentication), smtp_tls_verify \(p.tlsVerify)\(p.username.map { ", smtp_username \($0)" } ?? ""))")
            } else {
                CLIOutput.stdout("proposal: none")
            }
            CLIOutput.stdout(report.explanation)
        }
        if report.proposal == nil { throw ExitCode(ExitStatus.smtpFailure) }
    }
}
