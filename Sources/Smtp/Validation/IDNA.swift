import CIDN2

/// Internationalized domain labels through GNU libidn2 (Debian's `libidn2-0`): the
/// mapping of UTS #46 (non-transitional: `ß` and `ς` are kept, not turned into `ss`
/// and `σ`), then IDNA2008 (RFC 5890–5893) on the result — the derived property table,
/// the hyphen and leading-mark rules, the CONTEXTJ and CONTEXTO rules and the bidi rule
/// of each label.
///
/// This file owns every libidn2 call and pointer; callers get Strings and
/// ``ValidationError``s that say what to change. `DomainName` splits a name into
/// labels, checks the ASCII ones itself (LDH) and hands each other one here.
///
/// Two libidn2 entry points are combined: lookup (`idn2_to_ascii_8z`) maps what a
/// person typed (case, full width, NFC) and checks CONTEXTJ and bidi, but by RFC 5891
/// section 5.4 leaves the CONTEXTO rules to registries; registration
/// (`idn2_register_u8`) on the resulting U-label adds them, so `a·b` (a middle dot
/// outside `l·l`) is refused while `col·legi` passes.
enum IDNA {
    /// One label in its two forms.
    struct Label: Sendable, Hashable {
        /// The A-label ("xn--…"), or the label itself when mapping left only ASCII
        /// (`FAẞ` becomes `fass`, `ｍａｉｌ` becomes `mail`).
        let ascii: String
        /// The U-label for people, or `ascii` when it is not an A-label.
        let unicode: String
    }

    /// Converts one label that has non-ASCII characters, or one lower-case A-label
    /// ("xn--…"), to its DNS and display forms. The label must not contain a dot.
    ///
    /// - Parameters:
    ///   - text: the label as typed (non-ASCII), or an A-label in lower case.
    ///   - what: names the whole name in reasons ("the host name").
    /// - Throws: ``ValidationError`` saying which rule the label breaks.
    static func label(_ text: String, what: String) throws(ValidationError) -> Label {
        let typedALabel = text.hasPrefix("xn--") && text.utf8.allSatisfy { $0 < 0x80 }
        let ascii: String
        switch lookup(text) {
        case .success(let converted): ascii = converted
        case .failure(let code):
            throw typedALabel ? refusal(aLabel: text, code: code, what: what) : refusal(code, label: text, scalars: text, what: what)
        }
        guard ascii.hasPrefix("xn--") else { return Label(ascii: ascii, unicode: ascii) }
        guard let unicode = toUnicode(ascii) else {
            throw ValidationError(.invalidSyntax, "the label “\(DomainName.shorten(text))” of \(what) is not valid punycode")
        }
        if let code = registrationFailure(unicode) {
            throw refusal(code, label: typedALabel ? text : unicode, scalars: unicode, what: what)
        }
        return Label(ascii: ascii, unicode: unicode)
    }

    /// The ASCII form of one label after UTS #46 mapping and IDNA2008 lookup, or nil
    /// when libidn2 refuses it. For classifying a typed host (full-width digits are an
    /// IPv4 address); ``label(_:what:)`` says why a refused label is wrong.
    static func mapped(_ text: String) -> String? {
        try? lookup(text).get()
    }

    // MARK: libidn2

    /// A libidn2 return code (`idn2_rc`), kept private: reasons are built from it here.
    private struct Code: Error, Equatable {
        let value: Int32
        init(_ value: Int32) { self.value = value }
        init(_ rc: idn2_rc) { value = rc.rawValue }

        /// Codes that mean "this character may not appear in a domain name".
        static let characterRefused: [Code] = [
            Code(IDN2_DISALLOWED), Code(IDN2_UNASSIGNED), Code(IDN2_INVALID_NONTRANSITIONAL),
            Code(IDN2_INVALID_TRANSITIONAL), Code(IDN2_CONTEXTJ_NO_RULE), Code(IDN2_CONTEXTO_NO_RULE),
            Code(IDN2_DOT_IN_LABEL),
        ]
    }

    /// UTS #46 non-transitional processing on NFC input: the lookup of RFC 5891 as
    /// browsers and resolvers do it today.
    private static let lookupFlags = Int32(IDN2_NFC_INPUT.rawValue | IDN2_NONTRANSITIONAL.rawValue)

    private static func lookup(_ text: String) -> Result<String, Code> {
        var output: UnsafeMutablePointer<CChar>?
        let rc = idn2_to_ascii_8z(text, &output, lookupFlags)
        defer { idn2_free(output) }
        guard rc == IDN2_OK.rawValue, let output else { return .failure(Code(rc)) }
        return .success(String(cString: output))
    }

    /// Decodes the A-labels of `ascii` to U-labels, checking nothing: for display, and
    /// for naming the canonical form of an A-label that is refused.
    private static func toUnicode(_ ascii: String) -> String? {
        var output: UnsafeMutablePointer<CChar>?
        let rc = idn2_to_unicode_8z8z(ascii, &output, 0)
        defer { idn2_free(output) }
        guard rc == IDN2_OK.rawValue, let output else { return nil }
        return String(validatingCString: output)
    }

    /// The IDNA2008 registration checks on a U-label (CONTEXTO among them), or nil
    /// when it passes.
    private static func registrationFailure(_ unicode: String) -> Code? {
        var output: UnsafeMutablePointer<UInt8>?
        let rc = unicode.withCString { text in
            text.withMemoryRebound(to: UInt8.self, capacity: unicode.utf8.count + 1) { idn2_register_u8($0, nil, &output, 0) }
        }
        idn2_free(output)
        return rc == IDN2_OK.rawValue ? nil : Code(rc)
    }

    // MARK: Reasons

    /// Why an A-label typed as such is refused. An A-label whose U-label maps to
    /// another (upper case, full width) would be a second spelling of one name: the
    /// reason names the form to write.
    private static func refusal(aLabel: String, code: Code, what: String) -> ValidationError {
        guard let decoded = toUnicode(aLabel) else {
            return ValidationError(.invalidSyntax, "the label “\(DomainName.shorten(aLabel))” of \(what) is not valid punycode")
        }
        if case .success(let canonical) = lookup(decoded), canonical != aLabel {
            let shown = canonical.hasPrefix("xn--") ? toUnicode(canonical) ?? canonical : canonical
            return ValidationError(.invalidSyntax, "the label “\(DomainName.shorten(aLabel))” of \(what) is not in canonical form; write “\(DomainName.shorten(shown))” instead")
        }
        return refusal(code, label: aLabel, scalars: decoded, what: what)
    }

    /// A reason for `code`, quoting `label`; `scalars` is searched for the character
    /// to name when the code is about one.
    private static func refusal(_ code: Code, label: String, scalars: String, what: String) -> ValidationError {
        let quoted = "the label “\(DomainName.shorten(label))” of \(what)"
        if Code.characterRefused.contains(code) {
            if let scalar = refusedCharacter(in: scalars) {
                return ValidationError(.invalidCharacter, "\(what) contains \(describe(scalar)), which domain names don't allow")
            }
            return ValidationError(.invalidCharacter, "\(quoted) contains a character that domain names don't allow")
        }
        switch code {
        case Code(IDN2_HYPHEN_STARTEND):
            let position = label.hasPrefix("-") ? "starts" : label.hasSuffix("-") ? "ends" : "starts or ends"
            return ValidationError(.invalidSyntax, "\(quoted) \(position) with a hyphen")
        case Code(IDN2_2HYPHEN):
            return ValidationError(.invalidSyntax, "\(quoted) has hyphens as its third and fourth characters, which only xn-- labels may have")
        case Code(IDN2_LEADING_COMBINING):
            return ValidationError(.invalidSyntax, "\(quoted) starts with a combining mark")
        case Code(IDN2_CONTEXTJ):
            return ValidationError(.invalidSyntax, "\(quoted) has a zero-width joiner or non-joiner (U+200D, U+200C) where domain names don't allow one: only after a virama or between letters that join; remove it")
        case Code(IDN2_CONTEXTO):
            return ValidationError(.invalidSyntax, "\(quoted) has a character that domain names allow only beside certain others (a middle dot only between two “l”, “・” only with Japanese script, Arabic-Indic digits of one kind only, …), and here it is not")
        case Code(IDN2_BIDI):
            return ValidationError(.invalidSyntax, "\(quoted) breaks the bidi rule for domain names (RFC 5893): a label with right-to-left letters (Hebrew, Arabic, …) must start with one and hold no left-to-right letters, and a label that starts left-to-right can't hold right-to-left letters")
        case Code(IDN2_TOO_BIG_LABEL), Code(IDN2_PUNYCODE_BIG_OUTPUT):
            return ValidationError(.tooLong, "\(quoted) is longer than \(DomainName.maxLabelLength) characters in its DNS form")
        case Code(IDN2_TOO_BIG_DOMAIN):
            return ValidationError(.tooLong, "\(what) is longer than \(DomainName.maxLength) characters (in its DNS form)")
        case Code(IDN2_PUNYCODE_BAD_INPUT), Code(IDN2_PUNYCODE_OVERFLOW), Code(IDN2_INVALID_ALABEL),
             Code(IDN2_UALABEL_MISMATCH), Code(IDN2_ALABEL_ROUNDTRIP_FAILED):
            return ValidationError(.invalidSyntax, "\(quoted) is not valid punycode")
        default:
            // Memory, encoding: nothing the person typed can fix, but say what libidn2 said.
            return ValidationError(.invalidSyntax, "\(quoted) can't be converted for DNS: \(reason(code))")
        }
    }

    /// The first character of `text` that libidn2 refuses on its own, for naming it.
    private static func refusedCharacter(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first { scalar in
            guard !scalar.isASCII, case .failure(let code) = lookup(String(scalar)) else { return false }
            return Code.characterRefused.contains(code)
        }
    }

    /// “☃” (U+2603); an invisible character by its number only.
    private static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let number = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return number
        default:
            return "“\(Character(scalar))” (\(number))"
        }
    }

    /// libidn2's own words for `code`, lower-cased at the start to sit inside a sentence.
    private static func reason(_ code: Code) -> String {
        guard let text = idn2_strerror(code.value).map({ String(cString: $0) }), let first = text.first else { return "error \(code.value)" }
        var words = first.lowercased() + text.dropFirst()
        if words.hasSuffix(".") { words.removeLast() }
        return words
    }
}
