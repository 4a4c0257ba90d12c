/// The SMTP server's host as the settings hold it: a DNS name (internationalized
/// names allowed, converted to A-labels), an IPv4 dotted quad or an IPv6 address.
///
/// Decisions, for the settings form:
/// - A trailing dot ("mail.example.com.", an absolute name) is accepted and dropped:
///   resolvers treat both the same and TLS (SNI, certificate names) wants no dot.
/// - Single-label names ("localhost", "mailhub") are accepted: they are common on
///   private networks.
/// - IPv6 is accepted with or without brackets; a zone id ("fe80::1%eth0") is refused,
///   because an interface name is local to one machine and a stored setting isn't.
/// - IPv4 must be a dotted quad without leading zeros ("127.1", "010.0.0.1" are
///   refused, as `inet_pton` refuses them); a name whose last label is all digits
///   ("1.2.3.999") is treated as a mistyped IPv4 address, not a name, and so is a name
///   that `inet_aton` reads as an address ("0x7f000001" would connect to 127.0.0.1):
///   the reason names the dotted quad to write instead.
/// - Internationalized labels follow UTS #46 (non-transitional) and IDNA2008 through
///   libidn2, and are mapped before the host is classified: "ａｂｃ.example" is
///   "abc.example", "１２７.０.０.１" is an IPv4 address, "faß.de" keeps its "ß".
/// - `ascii` is the one form the SMTP client connects to (``SmtpConnection`` parses
///   its host with this type too), so what a settings form stores is what is used.
/// - Spaces are refused, not trimmed; underscores are refused (host names are LDH).
///
/// ```swift
/// switch HostName.validate("bücher.example") {
/// case .success(let host): host.ascii   // "xn--bcher-kva.example", host.kind == .domainName
/// case .failure(let error): error.reason
/// }
/// ```
public struct HostName: Sendable, Hashable, CustomStringConvertible {
    /// Which of the three forms a host is.
    public enum Kind: Sendable, Hashable {
        /// A DNS name.
        case domainName
        /// An IPv4 address.
        case ipv4
        /// An IPv6 address.
        case ipv6
    }

    /// Which form the host has.
    public let kind: Kind
    /// The form for programs — resolver, connect, SNI, certificate check: a lower-case
    /// name in A-labels without trailing dot, a dotted quad, or IPv6 text (RFC 5952,
    /// no brackets).
    public let ascii: String
    /// The form for people: U-labels for an internationalized name, else `ascii`.
    public let unicode: String

    /// `ascii`, with brackets around an IPv6 address: the form for URLs and logs ("[::1]:25").
    public var bracketed: String { kind == .ipv6 ? "[\(ascii)]" : ascii }

    /// `ascii`.
    public var description: String { ascii }

    /// Longest input looked at; anything longer is refused at once.
    static let maxInputLength = 1024

    /// Parses and classifies a host typed by a person.
    ///
    /// ```swift
    /// let host = try HostName("[2001:db8::1]")   // .ipv6, ascii "2001:db8::1"
    /// ```
    /// - Parameter text: the host as typed.
    /// - Throws: `ValidationError` saying what is wrong.
    public init(_ text: String) throws(ValidationError) {
        self = try Self.parse(text)
    }

    /// Validates `text` as a host name or IP address, without throwing.
    ///
    /// ```swift
    /// if case .failure(let error) = HostName.validate("-mail.example.com") {
    ///     errors["smtp_host"] = error.reason
    /// }
    /// ```
    /// - Parameter text: the host as typed.
    /// - Returns: the host, or why it is refused.
    public static func validate(_ text: String) -> Result<HostName, ValidationError> {
        do { return .success(try parse(text)) } catch { return .failure(error) }
    }

    /// The words a settings form and the SMTP client both use for a host refused by
    /// ``validate(_:)``: "is not a valid host name or IP address: <reason>".
    public static func refusal(_ error: ValidationError) -> String {
        "is not a valid host name or IP address: \(error.reason)"
    }

    private init(kind: Kind, ascii: String, unicode: String) {
        self.kind = kind
        self.ascii = ascii
        self.unicode = unicode
    }

    private static func parse(_ typed: String) throws(ValidationError) -> HostName {
        let what = "the host name"
        if typed.isEmpty { throw ValidationError(.empty, "the host name is empty") }
        if typed.utf8.count > maxInputLength { throw ValidationError(.tooLong, "the host name is longer than \(DomainName.maxLength) characters") }
        try ValidationError.checkNoControls(typed, what)
        if typed.first == " " || typed.last == " " {
            throw ValidationError(.invalidCharacter, "the host name starts or ends with a space")
        }
        // Classified after the mapping a resolver would apply: full-width digits and
        // dots are an IPv4 address, not a name.
        let text = DomainName.mapped(typed)

        if text.hasPrefix("[") || text.hasSuffix("]") {
            guard text.hasPrefix("["), text.hasSuffix("]"), text.count >= 2 else {
                throw ValidationError(.invalidSyntax, "the brackets around the IPv6 address don't match")
            }
            return try ipv6(String(text.dropFirst().dropLast()))
        }
        if text.contains(":") {
            return try ipv6(text)
        }
        if DomainName.looksNumeric(text) {
            guard let canonical = InternetAddress.canonicalIPv4(text) else {
                try refuseLegacyIPv4(text)
                throw ValidationError(.invalidSyntax, "“\(DomainName.shorten(text))” is not a valid IPv4 address (four numbers 0–255 separated by dots, without leading zeros)")
            }
            return HostName(kind: .ipv4, ascii: canonical, unicode: canonical)
        }
        let name = try DomainName.parse(text, what: what, allowTrailingDot: true)
        // "0x7f000001" is a valid DNS label, but the resolver reads it as 127.0.0.1
        // before it ever asks DNS: such a name is refused rather than stored as a name.
        try refuseLegacyIPv4(name.ascii)
        return HostName(kind: .domainName, ascii: name.ascii, unicode: name.unicode)
    }

    /// Refuses an IPv4 address in a legacy spelling (hex, octal, fewer than four
    /// parts), naming the dotted quad that programs using `inet_aton` would read.
    private static func refuseLegacyIPv4(_ text: String) throws(ValidationError) {
        var bare = Substring(text)
        if bare.hasSuffix(".") { bare = bare.dropLast() }
        guard let quad = InternetAddress.legacyIPv4(String(bare)) else { return }
        throw ValidationError(.invalidSyntax, "“\(DomainName.shorten(text))” is not written as a dotted quad: some programs read it as \(quad), others refuse it; write IPv4 addresses as a dotted quad (four numbers 0–255 separated by dots, without leading zeros), e.g. \(quad)")
    }

    private static func ipv6(_ text: String) throws(ValidationError) -> HostName {
        if text.contains("%") {
            throw ValidationError(.notAllowed, "the IPv6 address has a zone id (“%…”); a zone names an interface of one machine, so a stored setting can't use it")
        }
        guard let canonical = InternetAddress.canonicalIPv6(text) else {
            throw ValidationError(.invalidSyntax, "“\(DomainName.shorten(text))” is not a valid IPv6 address")
        }
        return HostName(kind: .ipv6, ascii: canonical, unicode: canonical)
    }
}
