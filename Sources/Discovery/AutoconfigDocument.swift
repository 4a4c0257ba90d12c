#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The SMTP part of a Thunderbird autoconfig document (`config-v1.1.xml`): the
/// `<outgoingServer type="smtp">` entries of the `<emailProvider>`, in the document's
/// order (its preference), and the domains the provider says it serves.
///
/// ```xml
/// <clientConfig version="1.1"><emailProvider id="example.org">
///   <domain>example.org</domain>
///   <outgoingServer type="smtp">
///     <hostname>smtp.example.org</hostname><port>465</port><socketType>SSL</socketType>
///     <authentication>password-cleartext</authentication><username>%EMAILADDRESS%</username>
///   </outgoingServer>
/// </emailProvider></clientConfig>
/// ```
public struct AutoconfigDocument: Sendable, Equatable {
    /// One `<outgoingServer type="smtp">`.
    public struct OutgoingServer: Sendable, Equatable {
        /// `<hostname>`.
        public var hostname: String
        /// `<port>`.
        public var port: Int
        /// `<socketType>`: `SSL`, `STARTTLS` or `plain`.
        public var socketType: String
        /// `<authentication>` values in order (`password-cleartext`, `password-encrypted`, `OAuth2`, `none`, …).
        public var authentication: [String]
        /// `<username>` as written, placeholders unexpanded (`%EMAILADDRESS%`).
        public var username: String?
    }

    /// The `<domain>` entries of the provider, lower-cased.
    public var domains: [String]
    /// The SMTP servers, most preferred first.
    public var outgoingServers: [OutgoingServer]

    /// Reads a document. Servers with a bad host name, port or socket type are left out.
    /// - Throws: ``UntrustedXML/Refusal`` when the XML is refused or not an autoconfig document.
    public static func parse(_ data: Data) throws(UntrustedXML.Refusal) -> AutoconfigDocument {
        let root = try UntrustedXML.parse(data)
        guard root.name == "clientConfig", let provider = root.child("emailProvider") else {
            throw UntrustedXML.Refusal(reason: "the document is not a Thunderbird autoconfig file (no <clientConfig><emailProvider>)")
        }
        let domains = provider.children("domain").map { $0.text.trimmed.lowercased() }.filter { !$0.isEmpty }
        var servers: [OutgoingServer] = []
        for server in provider.children("outgoingServer") where (server.attributes["type"] ?? "smtp").lowercased() == "smtp" {
            guard let host = server.child("hostname")?.text.trimmed, !host.isEmpty,
                  let port = server.child("port").flatMap({ Int($0.text.trimmed) }), (1...65535).contains(port),
                  let socketType = server.child("socketType")?.text.trimmed,
                  ["ssl", "starttls", "plain"].contains(socketType.lowercased()) else { continue }
            servers.append(OutgoingServer(
                hostname: host, port: port, socketType: socketType,
                authentication: server.children("authentication").map(\.text.trimmed).filter { !$0.isEmpty },
                username: server.child("username").map(\.text.trimmed)))
        }
        return AutoconfigDocument(domains: domains, outgoingServers: servers)
    }

    /// The username template with `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%`
    /// filled in for `address`.
    public static func expand(_ template: String, address: String) -> String {
        let at = address.lastIndex(of: "@") ?? address.endIndex
        let local = String(address[..<at])
        let domain = at < address.endIndex ? String(address[address.index(after: at)...]) : ""
        return template.replacing("%EMAILADDRESS%", with: address)
            .replacing("%EMAILLOCALPART%", with: local)
            .replacing("%EMAILDOMAIN%", with: domain)
    }
}

extension String {
    var trimmed: String { trimmingWhitespace(newlines: true) }
}
