import Foundation

/// A DNS name checked the way a mail client needs it: LDH labels (letters, digits,
/// hyphen; not at either end of a label), at most 63 octets a label and 253 in all,
/// and internationalized labels converted to A-labels ("xn--…", RFC 5890/3492).
/// Shared by `HostName` and the domain of `EmailAddress`.
///
/// IDN handling is a practical subset of UTS #46: labels are lower-cased and put in
/// NFC; the ideographic full stops (U+3002, U+FF0E, U+FF61) separate labels; a
/// non-ASCII character must be a letter, a mark or a number. The IDNA2008 context and
/// bidi rules are not checked.
struct DomainName: Sendable, Hashable {
    /// Lower-case A-label form, no trailing dot: what DNS, SMTP and SNI use.
    let ascii: String
    /// The same name with U-labels, for showing to people.
    let unicode: String

    static let maxLength = 253
    static let maxLabelLength = 63

    /// Parses `text`; `what` names it in reasons ("the domain part", "the host name").
    /// With `allowTrailingDot`, one final dot (an absolute name, "example.com.") is
    /// accepted and dropped.
    static func parse(_ text: String, what: String, allowTrailingDot: Bool) throws(ValidationError) -> DomainName {
        if text.isEmpty { throw ValidationError(.empty, "\(what) is empty") }
        // Long enough to hold 253 A-label octets written in any script; beyond that,
        // refuse before doing per-character work on a hostile megabyte.
        if text.utf8.count > 4 * maxLength { throw ValidationError(.tooLong, "\(what) is longer than \(maxLength) characters") }
        try ValidationError.checkNoControls(text, what)

        var mapped = compatibilityMapped(text)
        if mapped.hasPrefix(".") { throw ValidationError(.invalidSyntax, "\(what) starts with a dot") }
        if mapped.contains("..") { throw ValidationError(.invalidSyntax, "\(what) has two dots in a row") }
        if mapped.hasSuffix(".") {
            guard allowTrailingDot else { throw ValidationError(.invalidSyntax, "\(what) ends with a dot") }
            mapped.removeLast()
        }

        var asciiLabels: [String] = []
        var unicodeLabels: [String] = []
        for label in mapped.split(separator: ".", omittingEmptySubsequences: false) {
            let (ascii, unicode) = try convert(label: String(label), what: what)
            asciiLabels.append(ascii)
            unicodeLabels.append(unicode)
        }
        let ascii = asciiLabels.joined(separator: ".")
        if ascii.utf8.count > maxLength {
            throw ValidationError(.tooLong, "\(what) is longer than \(maxLength) characters (in its DNS form)")
        }
        return DomainName(ascii: ascii, unicode: unicodeLabels.joined(separator: "."))
    }

    /// What a resolver would be asked for, before labels are checked: the ideographic
    /// full stops (U+3002, U+FF0E, U+FF61) become ".", and the text is put in NFKC, so
    /// full-width "ａｂｃ.example" is "abc.example" and "１２７.０.０.１" is "127.0.0.1"
    /// (the mapping step of UTS #46). ASCII text is returned as it is.
    static func compatibilityMapped(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        let dots = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar -> Unicode.Scalar in
            switch scalar.value {
            case 0x3002, 0xFF0E, 0xFF61: return "."
            default: return scalar
            }
        }))
        return dots.precomposedStringWithCompatibilityMapping
    }

    /// True when the last label is all digits, the sign of a mistyped IPv4 address
    /// (RFC 3696 section 2: no top-level domain is all-numeric).
    static func looksNumeric(_ text: String) -> Bool {
        var trimmed = Substring(text)
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        guard let last = trimmed.split(separator: ".", omittingEmptySubsequences: false).last, !last.isEmpty else { return false }
        return last.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func convert(label: String, what: String) throws(ValidationError) -> (ascii: String, unicode: String) {
        if label.utf8.allSatisfy({ $0 < 0x80 }) {
            let lower = label.lowercased()
            try checkLDH(lower, original: label, what: what)
            if lower.hasPrefix("xn--") {
                guard let scalars = Punycode.decode(String(lower.dropFirst(4))), !scalars.isEmpty,
                      Punycode.encode(scalars).map({ "xn--" + $0 }) == lower
                else {
                    throw ValidationError(.invalidSyntax, "the label “\(shorten(label))” of \(what) is not valid punycode")
                }
                let unicode = String(String.UnicodeScalarView(scalars))
                try checkUnicodeLabel(unicode, what: what)
                // An A-label of a U-label that maps to another one (upper case, full
                // width, not NFC) would name the same host in two stored forms.
                let mappedUnicode = compatibilityMapped(unicode.lowercased())
                guard mappedUnicode == unicode else {
                    throw ValidationError(.invalidSyntax, "the label “\(shorten(label))” of \(what) is not in canonical form; write “\(shorten(mappedUnicode))” instead")
                }
                return (lower, unicode)
            }
            return (lower, lower)
        }

        let unicode = compatibilityMapped(label.lowercased()).precomposedStringWithCanonicalMapping
        try checkUnicodeLabel(unicode, what: what)
        guard let encoded = Punycode.encode(Array(unicode.unicodeScalars)) else {
            throw ValidationError(.tooLong, "the label “\(shorten(label))” of \(what) is too long")
        }
        let ascii = "xn--" + encoded
        if ascii.utf8.count > maxLabelLength {
            throw ValidationError(.tooLong, "the label “\(shorten(label))” of \(what) is longer than \(maxLabelLength) characters in its DNS form (\(ascii.utf8.count))")
        }
        return (ascii, unicode)
    }

    private static func checkLDH(_ label: String, original: String, what: String) throws(ValidationError) {
        for byte in label.utf8 {
            switch byte {
            case 0x61...0x7A, 0x30...0x39, 0x2D: continue
            case 0x20: throw ValidationError(.invalidCharacter, "\(what) contains a space")
            case 0x5F: throw ValidationError(.invalidCharacter, "\(what) contains an underscore, which host names don't allow")
            default:
                throw ValidationError(.invalidCharacter, "\(what) contains “\(Character(Unicode.Scalar(byte)))”, which host names don't allow (only letters, digits, hyphens and dots)")
            }
        }
        try checkLabelShape(label, original: original, what: what)
    }

    private static func checkLabelShape(_ label: String, original: String, what: String) throws(ValidationError) {
        if label.hasPrefix("-") { throw ValidationError(.invalidSyntax, "the label “\(shorten(original))” of \(what) starts with a hyphen") }
        if label.hasSuffix("-") { throw ValidationError(.invalidSyntax, "the label “\(shorten(original))” of \(what) ends with a hyphen") }
        if label.utf8.count > maxLabelLength {
            throw ValidationError(.tooLong, "the label “\(shorten(original))” of \(what) is longer than \(maxLabelLength) characters")
        }
    }

    private static func checkUnicodeLabel(_ label: String, what: String) throws(ValidationError) {
        for (index, scalar) in label.unicodeScalars.enumerated() {
            if scalar.isASCII {
                switch scalar.value {
                case 0x61...0x7A, 0x30...0x39, 0x2D: continue
                case 0x20: throw ValidationError(.invalidCharacter, "\(what) contains a space")
                default:
                    throw ValidationError(.invalidCharacter, "\(what) contains “\(Character(scalar))”, which host names don't allow (only letters, digits, hyphens and dots)")
                }
            }
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                 .decimalNumber, .letterNumber, .otherNumber:
                continue
            case .nonspacingMark, .spacingMark, .enclosingMark:
                if index == 0 {
                    throw ValidationError(.invalidSyntax, "a label of \(what) starts with a combining mark")
                }
            default:
                throw ValidationError(.invalidCharacter, "\(what) contains “\(Character(scalar))” (U+\(String(scalar.value, radix: 16, uppercase: true))), which domain names don't allow")
            }
        }
        try checkLabelShape(label, original: label, what: what)
    }

    /// At most 20 characters of a label, for quoting it in a reason.
    static func shorten(_ text: String) -> String {
        text.count <= 20 ? text : String(text.prefix(20)) + "…"
    }
}
