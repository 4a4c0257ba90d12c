#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import DomainCheck
import Smtp

/// POST email_domain_check: SPF, DKIM and DMARC of the sender domain, with findings
/// and the records to publish; and the same check after a successful test email.
///
/// DNS can be slow (an unreachable name server takes the whole timeout), so the
/// check runs on the SMTP work pool like a test email: a full pool answers 503 at
/// once, and a request worker never waits for DNS.
extension APIHandler {
    func domainCheck(_ request: Request) throws -> Response {
        let domain = try Self.domainToCheck(request) { try repository.loadSettings() }
        guard let dns = domainCheckDNS else {
            throw APIError(503, "dns", "No DNS resolver is configured in this responder (dns_servers).")
        }
        let snapshot = try? repository.loadSettings()
        let host = snapshot?.values[SettingsKey.host.rawValue].flatMap { $0.isEmpty ? nil : $0 }
        let from = snapshot?.values[SettingsKey.fromAddress.rawValue].flatMap { try? EmailAddress($0) }
        let sender = from.map { $0.asciiDomain == domain ? $0.address : "postmaster@\(domain)" }
        let slot = try reserveSmtpSlot()
        let logger = self.logger
        return .deferred(SmtpWork(slot: slot) { _, _ in
            let started = Date()
            do {
                let report = try DomainChecker(dns: dns).check(DomainCheckRequest(domain: domain, sender: sender, smtpHost: host))
                logger.info("domain checked", metadata: ["domain": "\(domain)", "findings": "\(report.findings.count)",
                                                         "ms": "\(Int(Date().timeIntervalSince(started) * 1000))"])
                return .success(DomainCheckJSON.report(report))
            } catch let error as DomainCheckError {
                return APIError(504, "dns", error.hint).response
            } catch {
                return ErrorResponses.response(for: error, logger: logger)
            }
        })
    }

    /// The domain of the body's `data.domain`, or of the saved sender address; 400 when
    /// it is not a domain name.
    static func domainToCheck(_ request: Request, settings: () throws -> SettingsSnapshot) throws -> String {
        var given: String?
        if !request.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            let body = try JSONValue.parse(request.body)
            guard body.objectMembers != nil, body["data"].map({ $0.objectMembers != nil }) ?? true else {
                throw APIError.badRequest("body", "The body must be empty or a JSON object {\"data\":{\"domain\":\"example.org\"}}.")
            }
            if let value = body["data"]?["domain"], value != .null {
                guard let text = value.stringValue else { throw APIError.badRequest("domain", "must be a string, e.g. \"example.org\".") }
                given = text.isEmpty ? nil : text
            }
        }
        guard let text = given else {
            let saved = try settings().values[SettingsKey.fromAddress.rawValue] ?? ""
            guard let address = try? EmailAddress(saved), !address.isAddressLiteral else {
                throw APIError.badRequest("domain", "Give the domain to check ({\"data\":{\"domain\":\"example.org\"}}), or save a sender address first.")
            }
            return address.asciiDomain.lowercased()
        }
        switch HostName.validate(text) {
        case .success(let host) where host.kind == .domainName && host.ascii.contains("."):
            return host.ascii.lowercased()
        case .success:
            throw APIError.badRequest("domain", "“\(text.prefix(100))” is not a domain name with a dot (e.g. example.org); IP addresses and single labels have no SPF, DKIM or DMARC.")
        case .failure(let error):
            throw APIError.badRequest("domain", "is not a domain name: \(error.reason)")
        }
    }

    /// `domain_check` of a successful test email: the report, or `{"error": …}` when
    /// DNS could not be asked. Never changes the test's status.
    static func domainCheckMember(_ dns: (any DomainCheckDNS)?, from: EmailAddress, smtpHost: String, remoteAddress: String) -> (String, JSONValue) {
        guard !from.isAddressLiteral else {
            return ("domain_check", .object([("error", "The sender address has an IP address instead of a domain; there is no SPF, DKIM or DMARC to check.")]))
        }
        guard let dns else { return ("domain_check", .object([("error", "No DNS resolver is configured in this responder (dns_servers).")])) }
        // "192.0.2.1" as the client records it; "192.0.2.1:25" too, to be safe.
        let parts = remoteAddress.split(separator: ":")
        let address = parts.count == 2 ? String(parts[0]) : remoteAddress
        do {
            let report = try DomainChecker(dns: dns).check(DomainCheckRequest(domain: from.asciiDomain, sender: from.address, smtpHost: smtpHost,
                                                                              sendingAddresses: [address]))
            return ("domain_check", DomainCheckJSON.report(report))
        } catch let error as DomainCheckError {
            return ("domain_check", .object([("error", .string(error.hint))]))
        } catch {
            return ("domain_check", .object([("error", .string("\(error)"))]))
        }
    }
}
