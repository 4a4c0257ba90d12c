import Discovery
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MailDNS
import Smtp

extension APIHandler {
    /// `POST /api/setup/email_discover/{address}`: SRV, autoconfig, MX provider and
    /// probes for the address's domain, on the SMTP work pool (503 when it is full, like
    /// a test email); answers the report, never saves. A bad address is a 400 with the
    /// words of the settings' from_address check.
    func discover(address: String) throws -> Response {
        if let problem = DiscoverySetup.addressProblem(address) { throw APIError(400, "address", problem) }
        guard let parsed = try? EmailAddress(address), !parsed.isAddressLiteral else {
            throw APIError(400, "address", "\(SettingsSchema.label(.fromAddress)) must end in a domain name for discovery, not an address literal.")
        }
        let slot = try reserveSmtpSlot()
        var configured = discovery
        configured.deniedNetworks = deniedNetworks
        let setup = configured
        let logger = self.logger
        return .deferred(SmtpWork(slot: slot) { _, abort in
            let discoverer: Discoverer
            do throws(DNSError) {
                discoverer = try setup.discoverer(abort: abort)
            } catch {
                return APIError(503, "dns", "The DNS resolver could not start: \(error.hint)").response
            }
            let report = discoverer.discover(parsed)
            logger.info("discovery", metadata: ["domain": "\(report.domain)", "elapsed_ms": "\(report.elapsedMilliseconds)",
                                                "proposal": "\(report.proposal.map { "\($0.host):\($0.port)" } ?? "none")"])
            guard let data = try? JSONValue.parse(Array(DiscoverySetup.json(report))) else {
                return APIError(500, "discovery", "The discovery answer could not be encoded.").response
            }
            return .success(data)
        })
    }
}
