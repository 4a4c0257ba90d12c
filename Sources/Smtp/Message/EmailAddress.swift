/// An email address (an RFC 5322 addr-spec, `local@domain`) checked so that it is
/// safe to put in an SMTP command and a header.
///
/// - Local part: a dot-atom (`first.last+tag`), a quoted string (`"john smith"`),
///   and UTF-8 in either (RFC 6531/6532; then `requiresSMTPUTF8` is true).
/// - Domain: a host name (LDH labels, ≤ 63 octets each, ≤ 253 in all), an
///   internationalized name (converted to A-labels, `asciiDomain`; U-labels in
///   `domain`), or an address literal, `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
/// - Refused, never stripped: CR, LF, NUL and other control characters anywhere,
///   `<` and `>` anywhere, spaces outside quotes, a local part over 64 octets, an
///   address over 254 octets, a trailing dot on the domain.
///
/// ```swift
/// let address = try EmailAddress("jörg@bücher.example")
/// address.asciiDomain        // "xn--bcher-kva.example"
/// address.requiresSMTPUTF8   // true: the local part is not ASCII
/// ```
public struct EmailAddress: Sendable, Hashable, CustomStringConvertible {
    /// The part before the @, as written (with its quotes, if quoted).
    public let localPart: String
    /// The domain for people: U-labels, or the literal with its brackets ("[192.0.2.1]").
    public let domain: String
    /// The domain for DNS and SMTP: lower-case A-labels, or the literal with its brackets.
    public let asciiDomain: String
    /// True when the domain is an address literal in brackets rather than a name.
    public let isAddressLiteral: Bool

    /// RFC 5321 limit on the local part, in octets.
    public static let maxLocalPartLength = 64
    /// RFC 5321 limit on a whole address (a path of 256 octets less its brackets), in octets.
    public static let maxLength = 254

    /// `local@asciiDomain`: the form for MAIL FROM, RCPT TO and the message headers.
    public var address: String { "\(localPart)@\(asciiDomain)" }
    /// `local@domain`: the form for people.
    public var unicodeAddress: String { "\(localPart)@\(domain)" }
    /// True when the local part has non-ASCII characters, so the server must offer SMTPUTF8.
    public var requiresSMTPUTF8: Bool { localPart.utf8.contains { $0 >= 0x80 } }
    /// `unicodeAddress`.
    public var description: String { unicodeAddress }

    /// Parses and validates an address typed by a person.
    ///
    /// ```swift
    /// let from = try EmailAddress("noreply@example.com")
    /// ```
    /// - Parameter text: `local@domain`, without angle brackets or a display name.
    /// - Throws: `ValidationError` with a reason such as "the domain part is missing".
    public init(_ text: String) throws(ValidationError) {
        self = try Self.parse(text)
    }

    /// Validates an address without throwing, for the settings form.
    ///
    /// ```swift
    /// if case .failure(let error) = EmailAddress.validate(input) {
    ///     errors["from_address"] = error.reason
    /// }
    /// ```
    /// - Parameter text: `local@domain`.
    /// - Returns: the address, or why it is refused.
    public static func validate(_ text: String) -> Result<EmailAddress, ValidationError> {
        do { return .success(try parse(text)) } catch { return .failure(error) }
    }

    private init(localPart: String, domain: String, asciiDomain: String, isAddressLiteral: Bool) {
        self.localPart = localPart
        self.domain = domain
        self.asciiDomain = asciiDomain
        self.isAddressLiteral = isAddressLiteral
    }

    private static func parse(_ text: String) throws(ValidationError) -> EmailAddress {
        if text.isEmpty { throw ValidationError(.empty, "the address is empty") }
        if text.utf8.count > 4 * maxLength { throw ValidationError(.tooLong, "the address is longer than \(maxLength) characters") }
        try ValidationError.checkNoControls(text, "the address")
        if text.contains("<") || text.contains(">") {
            throw ValidationError(.invalidCharacter, "the address contains an angle bracket (< or >); give the bare address, like name@example.com")
        }

        let (local, domainText) = try split(text)
        try checkLocalPart(local)

        let address: EmailAddress
        if domainText.hasPrefix("[") {
            let literal = try parseLiteral(domainText)
            address = EmailAddress(localPart: local, domain: literal, asciiDomain: literal, isAddressLiteral: true)
        } else {
            if domainText.contains(" ") { throw ValidationError(.invalidCharacter, "the domain part contains a space") }
            // Mapped first, as for a host: full-width "１２７.０.０.１" is an address, not a name.
            let mapped = DomainName.mapped(domainText)
            if DomainName.looksNumeric(mapped) {
                if InternetAddress.canonicalIPv4(mapped) != nil {
                    throw ValidationError(.invalidSyntax, "an IP address as the domain part must be in brackets, like name@[\(mapped)]")
                }
                throw ValidationError(.invalidSyntax, "the domain part ends in a label of digits only, which no domain has")
            }
            let name = try DomainName.parse(mapped, what: "the domain part", allowTrailingDot: false)
            address = EmailAddress(localPart: local, domain: name.unicode, asciiDomain: name.ascii, isAddressLiteral: false)
        }
        if address.address.utf8.count > maxLength {
            throw ValidationError(.tooLong, "the address is longer than \(maxLength) characters")
        }
        return address
    }

    /// Splits at the @ that ends the local part: after the closing quote of a quoted
    /// local part, else the only @.
    private static func split(_ text: String) throws(ValidationError) -> (String, String) {
        let scalars = Array(text.unicodeScalars)
        var at: Int?
        if scalars.first == "\"" {
            var i = 1
            while i < scalars.count {
                if scalars[i] == "\\" { i += 2; continue }
                if scalars[i] == "\"" { break }
                i += 1
            }
            guard i < scalars.count else { throw ValidationError(.invalidSyntax, "the quotes of the local part are not closed") }
            guard i + 1 < scalars.count, scalars[i + 1] == "@" else {
                if i + 1 >= scalars.count { throw ValidationError(.missingPart, "the @ sign and the domain part are missing") }
                throw ValidationError(.invalidSyntax, "the closing quote of the local part must be followed by @")
            }
            at = i + 1
        } else {
            let positions = scalars.indices.filter { scalars[$0] == "@" }
            if positions.count > 1 {
                throw ValidationError(.invalidSyntax, "the address contains more than one @ (an @ in the local part must be inside quotes)")
            }
            at = positions.first
        }
        guard let at else { throw ValidationError(.missingPart, "the @ sign is missing") }
        let local = String(String.UnicodeScalarView(scalars[..<at]))
        let domain = String(String.UnicodeScalarView(scalars[(at + 1)...]))
        if local.isEmpty { throw ValidationError(.missingPart, "the part before the @ is missing") }
        if domain.isEmpty { throw ValidationError(.missingPart, "the domain part is missing") }
        return (local, domain)
    }

    private static func checkLocalPart(_ local: String) throws(ValidationError) {
        if local.utf8.count > maxLocalPartLength {
            throw ValidationError(.tooLong, "the part before the @ is longer than \(maxLocalPartLength) characters")
        }
        if local.hasPrefix("\"") {
            // Quoted string: qtext, quoted-pairs, UTF-8 (RFC 6532); controls are already refused.
            let inner = Array(local.unicodeScalars.dropFirst().dropLast())
            var i = 0
            while i < inner.count {
                if inner[i] == "\\" {
                    guard i + 1 < inner.count else { throw ValidationError(.invalidSyntax, "the local part ends with a lone backslash") }
                    i += 2
                    continue
                }
                if inner[i] == "\"" { throw ValidationError(.invalidSyntax, "the local part has a quote inside its quotes that is not escaped") }
                i += 1
            }
            return
        }
        if local.hasPrefix(".") { throw ValidationError(.invalidSyntax, "the part before the @ starts with a dot") }
        if local.hasSuffix(".") { throw ValidationError(.invalidSyntax, "the part before the @ ends with a dot") }
        if local.contains("..") { throw ValidationError(.invalidSyntax, "the part before the @ has two dots in a row") }
        for scalar in local.unicodeScalars where !isAtext(scalar) && scalar != "." {
            if scalar == " " { throw ValidationError(.invalidCharacter, "the address contains a space outside quotes") }
            throw ValidationError(.invalidCharacter, "the part before the @ contains “\(Character(scalar))”, which is only allowed inside quotes")
        }
    }

    /// RFC 5322 atext, extended with UTF-8 by RFC 6532.
    static func isAtext(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39: return true
        case 0x80...: return true
        default: return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(scalar)
        }
    }

    private static func parseLiteral(_ text: String) throws(ValidationError) -> String {
        guard text.hasSuffix("]"), text.count >= 2 else {
            throw ValidationError(.invalidSyntax, "the address literal of the domain part is missing its closing bracket")
        }
        let inner = String(text.dropFirst().dropLast())
        if inner.lowercased().hasPrefix("ipv6:") {
            let v6 = String(inner.dropFirst(5))
            if v6.contains("%") { throw ValidationError(.notAllowed, "the IPv6 address literal has a zone id (“%…”), which addresses can't use") }
            guard let canonical = InternetAddress.canonicalIPv6(v6) else {
                throw ValidationError(.invalidSyntax, "the domain part “\(DomainName.shorten(text))” is not a valid IPv6 address literal")
            }
            return "[IPv6:\(canonical)]"
        }
        guard let canonical = InternetAddress.canonicalIPv4(inner) else {
            throw ValidationError(.invalidSyntax, "the domain part “\(DomainName.shorten(text))” is not a valid address literal (an IPv4 address, or IPv6: followed by an IPv6 address)")
        }
        return "[\(canonical)]"
    }
}
