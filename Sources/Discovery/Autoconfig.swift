#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPS

/// Fetches and reads the domain's autoconfig documents (`https://autoconfig.<domain>/mail/config-v1.1.xml`,
/// then `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`): over HTTPS with
/// verification, the host resolved with discovery's DNS, at most ``maximumBytes``, no
/// redirect followed, parsed as untrusted XML, and ignored unless it names the domain.
enum Autoconfig {
    /// Autoconfig documents are a few KiB; anything larger is refused while reading.
    static let maximumBytes = 64 * 1024

    /// The two URLs, in the order they are preferred. `port` is for tests (nil: 443).
    static func urls(domain: String, port: Int?) -> [(host: String, url: String)] {
        let suffix = port.map { ":\($0)" } ?? ""
        return [("autoconfig.\(domain)", "https://autoconfig.\(domain)\(suffix)/mail/config-v1.1.xml"),
                (domain, "https://\(domain)\(suffix)/.well-known/autoconfig/mail/config-v1.1.xml")]
    }

    /// One fetch: the document, or the line saying why there is none.
    static func fetch(host: String, url: String, domain: String, dns: any DiscoveryDNS, caFile: String?,
                      seconds: Double, shouldAbort: (@Sendable () -> Bool)?) -> Result<AutoconfigDocument, AutoconfigFailure> {
        let addresses: [String]
        switch dns.addresses(host) {
        case .success(let found): addresses = found
        case .failure(let failure):
            return .failure(AutoconfigFailure(missing: failure.notFound,
                                              reason: failure.notFound ? "\(host) does not resolve" : failure.hint))
        }
        guard seconds > 0.2 else { return .failure(AutoconfigFailure(missing: false, reason: "no time left before the deadline")) }
        let client = HTTPSClient(caFile: caFile, connectTimeout: min(3, seconds), deadline: seconds,
                                 maxResponseBytes: maximumBytes, shouldAbort: shouldAbort,
                                 addresses: [host.lowercased(): addresses], userAgent: "EmailSetup-Discovery/1")
        let response: HTTPSResponse
        do {
            response = try client.get(url, maxBytes: maximumBytes, accept: "application/xml, text/xml")
        } catch {
            return .failure(AutoconfigFailure(missing: false, reason: error.hint))
        }
        guard response.status == 200 else {
            return .failure(AutoconfigFailure(missing: response.status == 404, reason: "HTTP \(response.status)"))
        }
        let document: AutoconfigDocument
        do {
            document = try AutoconfigDocument.parse(response.body)
        } catch {
            return .failure(AutoconfigFailure(missing: false, reason: "refused: \(error.reason)"))
        }
        guard document.domains.contains(domain.lowercased()) else {
            let named = document.domains.isEmpty ? "no domain" : document.domains.prefix(3).joined(separator: ", ")
            return .failure(AutoconfigFailure(missing: false, reason: "ignored: the document is for \(named), not \(domain)"))
        }
        guard !document.outgoingServers.isEmpty else {
            return .failure(AutoconfigFailure(missing: false, reason: "the document names no usable SMTP server"))
        }
        return .success(document)
    }
}

/// Why an autoconfig URL gave nothing.
struct AutoconfigFailure: Error, Sendable {
    /// The host does not resolve, or 404: simply not published.
    var missing: Bool
    /// One line.
    var reason: String
}
