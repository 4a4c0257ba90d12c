#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A DNS name checked the way a mail client needs it: LDH labels (letters, digits,
/// hyphen; not at either end of a label), at most 63 octets a label and 253 in all,
/// and internationalized labels converted to A-labels ("xn--…").
/// Shared by `HostName` and the domain of `EmailAddress`.
///
/// Labels are separated by "." and the ideographic full stops (U+3002, U+FF0E,
/// U+FF61), as UTS #46 maps them. ASCII labels are checked here (lower-cased, LDH);
/// every other label, and every A-label, goes through libidn2 (`IDNA`): UTS #46
/// non-transitional mapping, then the IDNA2008 rules (CONTEXTJ, CONTEXTO, bidi).
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

        var labels = split(text)
        if labels.first?.isEmpty == true { throw ValidationError(.invalidSyntax, "\(what) starts with a dot") }
        if labels.count > 1, labels.last?.isEmpty == true {
            if labels.dropLast().last?.isEmpty == true { throw ValidationError(.invalidSyntax, "\(what) has two dots in a row") }
            guard allowTrailingDot else { throw ValidationError(.invalidSyntax, "\(what) ends with a dot") }
            labels.removeLast()
        }
        if labels.contains(where: \.isEmpty) { throw ValidationError(.invalidSyntax, "\(what) has two dots in a row") }

        var asciiLabels: [String] = []
        var unicodeLabels: [String] = []
        for label in labels {
            let (ascii, unicode) = try convert(label: label, what: what)
            asciiLabels.append(ascii)
            unicodeLabels.append(unicode)
        }
        let ascii = asciiLabels.joined(separator: ".")
        if ascii.utf8.count > maxLength {
            throw ValidationError(.tooLong, "\(what) is longer than \(maxLength) characters (in its DNS form)")
        }
        return DomainName(ascii: ascii, unicode: unicodeLabels.joined(separator: "."))
    }

    /// What a resolver would be asked for, before labels are checked: each non-ASCII
    /// label mapped by UTS #46 (libidn2), so full-width "ａｂｃ.example" is "abc.example"
    /// and "１２７.０.０.１" is "127.0.0.1", and the ideographic full stops become ".".
    /// A label libidn2 refuses is left as typed, for `parse` to say why. ASCII text is
    /// returned as it is.
    static func mapped(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        return split(text).map { label in
            label.utf8.allSatisfy({ $0 < 0x80 }) || label.isEmpty ? label : IDNA.mapped(label) ?? label
        }.joined(separator: ".")
    }

    /// The labels of `text`, split at "." and at the full stops UTS #46 maps to it
    /// (U+3002 ideographic, U+FF0E full-width, U+FF61 half-width ideographic).
    private static func split(_ text: String) -> [String] {
        var labels: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x2E, 0x3002, 0xFF0E, 0xFF61:
                labels.append(String(current))
                current = String.UnicodeScalarView()
            default:
                current.append(scalar)
            }
        }
        labels.append(String(current))
        return labels
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
            guard lower.hasPrefix("xn--") else { return (lower, lower) }
            let converted = try IDNA.label(lower, what: what)
            return (converted.ascii, converted.unicode)
        }
        let converted = try IDNA.label(label, what: what)
        // UTS #46 without its STD3 rules lets "_" and " " through, and mapping may
        // leave a plain ASCII label ("ｍａｉｌ" is "mail"): host names are LDH either way.
        try checkLDH(converted.ascii, original: label, what: what)
        return (converted.ascii, converted.unicode)
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

    /// At most 20 characters of a label, for quoting it in a reason.
    static func shorten(_ text: String) -> String {
        text.count <= 20 ? text : String(text.prefix(20)) + "…"
    }
}
