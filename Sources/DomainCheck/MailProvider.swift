/// Submission services whose sending addresses are not the submission server's: for
/// them SPF cannot be evaluated for the connected address, and what matters is that
/// the domain's SPF includes the provider's record.
public struct MailProvider: Sendable, Equatable {
    /// "Microsoft 365".
    public var name: String
    /// The include their documentation asks for.
    public var spfInclude: String
    /// DKIM selectors the provider uses (empty when they are per-customer tokens).
    public var dkimSelectors: [String]
    /// Where to turn DKIM signing on, in words.
    public var dkimHowTo: String
    /// Whether the provider sends with its own envelope sender (bounce domain) unless a
    /// custom MAIL FROM domain is set up: SPF then authorises that domain, not the From.
    public var ownEnvelopeSender: Bool
    /// Host names (exact) or suffixes (starting with ".") of its submission servers.
    var hosts: [String]

    /// The provider whose submission server `host` is, if known.
    public static func forSubmissionHost(_ host: String) -> MailProvider? {
        let h = host.lowercased().trimmingTrailingDot
        return known.first { provider in
            provider.hosts.contains { $0.hasPrefix(".") ? h.hasSuffix($0) : h == $0 }
        }
    }

    /// The providers recognised, with the SPF include each documents.
    public static let known: [MailProvider] = [
        MailProvider(name: "Microsoft 365", spfInclude: "spf.protection.outlook.com", dkimSelectors: ["selector1", "selector2"],
                     dkimHowTo: "In the Microsoft Defender portal (Email authentication settings, DKIM), publish the two CNAME records it shows for selector1 and selector2, then turn on signing.",
                     ownEnvelopeSender: false,
                     hosts: ["smtp.office365.com", "smtp-mail.outlook.com", ".mail.protection.outlook.com", "smtp.office.com"]),
        MailProvider(name: "Google Workspace", spfInclude: "_spf.google.com", dkimSelectors: ["google"],
                     dkimHowTo: "In the Google Admin console (Apps, Google Workspace, Gmail, Authenticate email), generate a key, publish it at google._domainkey and start authentication.",
                     ownEnvelopeSender: false,
                     hosts: ["smtp.gmail.com", "smtp-relay.gmail.com", "smtp.googlemail.com", "aspmx.l.google.com"]),
        MailProvider(name: "Amazon SES", spfInclude: "amazonses.com", dkimSelectors: [],
                     dkimHowTo: "In the Amazon SES console, verify the domain with Easy DKIM and publish the three CNAME records it shows (their names are tokens this page cannot guess).",
                     ownEnvelopeSender: true, hosts: [".amazonaws.com"]),
        MailProvider(name: "SendGrid", spfInclude: "sendgrid.net", dkimSelectors: ["s1", "s2"],
                     dkimHowTo: "In SendGrid (Settings, Sender Authentication), authenticate the domain and publish the CNAME records it shows for s1 and s2.",
                     ownEnvelopeSender: true, hosts: ["smtp.sendgrid.net"]),
        MailProvider(name: "Mailgun", spfInclude: "mailgun.org", dkimSelectors: ["k1", "mx", "smtp", "pic"],
                     dkimHowTo: "In Mailgun (Sending, Domains, DNS records), publish the DKIM TXT record it shows.",
                     ownEnvelopeSender: true, hosts: ["smtp.mailgun.org", "smtp.eu.mailgun.org"]),
    ]
}

/// The organisational domain of RFC 7489 3.2, without the Public Suffix List: the
/// last two labels, or three when the last two are one of a few well-known
/// two-label public suffixes (co.uk, com.au, …). A deliberate simplification
/// (docs/DECISIONS.md): it is right for the common cases and, where wrong, only
/// changes which `_dmarc` name is asked second.
public enum OrganizationalDomain {
    /// Two-label suffixes under which registrations happen.
    static let twoLabelSuffixes: Set<String> = [
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "net.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "co.za", "org.za", "com.br", "net.br", "org.br",
        "co.in", "net.in", "org.in", "com.cn", "net.cn", "org.cn", "com.mx", "com.ar", "com.tr",
        "co.kr", "or.kr", "com.sg", "com.hk", "com.tw", "co.il", "com.pl", "co.at", "or.at",
    ]

    /// The organisational domain of `domain` ("mail.example.co.uk" → "example.co.uk").
    public static func of(_ domain: String) -> String {
        let labels = domain.lowercased().trimmingTrailingDot.split(separator: ".").map(String.init)
        guard labels.count > 2 else { return labels.joined(separator: ".") }
        let lastTwo = labels.suffix(2).joined(separator: ".")
        return labels.suffix(twoLabelSuffixes.contains(lastTwo) ? 3 : 2).joined(separator: ".")
    }
}
