/// An address with an optional display name, as in `From: "Doe, Jane" <jane@example.com>`.
///
/// The display name is rendered as it is when it is plain words, as a quoted string
/// when it has specials (`,` `.` `"` …), and as RFC 2047 encoded-words when it has
/// non-ASCII characters. A name with CR, LF, NUL or another control character is
/// refused by the initialiser and again by `Message.rendered()`.
///
/// ```swift
/// let from = try Mailbox(displayName: "Jörg Müller", address: EmailAddress("jm@example.com"))
/// let to = try Mailbox("\"Doe, Jane\" <jane@example.com>")
/// ```
public struct Mailbox: Sendable, Hashable, CustomStringConvertible {
    /// The name people see; nil or "" for none.
    public var displayName: String?
    /// The address.
    public var address: EmailAddress

    /// A mailbox without a display name.
    public init(_ address: EmailAddress) {
        self.displayName = nil
        self.address = address
    }

    /// A mailbox with a display name.
    /// - Parameters:
    ///   - displayName: any text without line breaks or control characters.
    ///   - address: the address.
    /// - Throws: `ValidationError` when the name contains a line break or a control character.
    public init(displayName: String?, address: EmailAddress) throws(ValidationError) {
        if let displayName { try Self.checkDisplayName(displayName) }
        self.displayName = displayName
        self.address = address
    }

    /// Parses `name@example.com`, `Name <name@example.com>` or `"Name, Other" <name@example.com>`.
    ///
    /// ```swift
    /// let mailbox = try Mailbox("Ops Team <ops@example.com>")
    /// ```
    /// - Parameter text: a mailbox as people write it.
    /// - Throws: `ValidationError` saying what is wrong.
    public init(_ text: String) throws(ValidationError) {
        try ValidationError.checkNoControls(text, "the mailbox")
        guard text.hasSuffix(">") else {
            self.init(try EmailAddress(text))
            return
        }
        guard let open = text.lastIndex(of: "<") else {
            throw ValidationError(.invalidSyntax, "the mailbox has “>” without “<”")
        }
        let address = try EmailAddress(String(text[text.index(after: open)..<text.index(before: text.endIndex)]))
        var name = Substring(text[..<open])
        while name.last == " " { name = name.dropLast() }
        while name.first == " " { name = name.dropFirst() }
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            var unquoted = ""
            var escaped = false
            for character in name.dropFirst().dropLast() {
                if escaped { unquoted.append(character); escaped = false } else if character == "\\" { escaped = true } else { unquoted.append(character) }
            }
            try self.init(displayName: unquoted, address: address)
        } else {
            try self.init(displayName: name.isEmpty ? nil : String(name), address: address)
        }
    }

    /// `Name <address>` for people (not encoded), or the address alone.
    public var description: String {
        guard let displayName, !displayName.isEmpty else { return address.unicodeAddress }
        return "\(displayName) <\(address.unicodeAddress)>"
    }

    static func checkDisplayName(_ name: String) throws(ValidationError) {
        try ValidationError.checkNoControls(name, "the display name")
    }

    /// Writes this mailbox into a header being folded.
    func write(to folder: inout HeaderFolder) throws(ValidationError) {
        if let displayName, !displayName.isEmpty {
            try Self.checkDisplayName(displayName)
            Self.writePhrase(displayName, to: &folder)
            folder.append("<\(address.address)>")
        } else {
            folder.append(address.address)
        }
    }

    /// The display name as atoms, one quoted string, or encoded-words.
    private static func writePhrase(_ name: String, to folder: inout HeaderFolder) {
        let isPrintableASCII = name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        guard isPrintableASCII, !name.contains("=?") else {
            folder.appendEncoded(name)
            return
        }
        let words = name.split(separator: " ", omittingEmptySubsequences: false)
        let plainAtoms = words.allSatisfy { !$0.isEmpty && $0.unicodeScalars.allSatisfy(EmailAddress.isAtext) }
        if plainAtoms, words.allSatisfy({ $0.utf8.count < HeaderFolder.hardLimit - 100 }) {
            for word in words { folder.append(String(word)) }
            return
        }
        var quoted = "\""
        for character in name {
            if character == "\"" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        quoted.append("\"")
        // A quoted string is one token; one too long for a line goes as encoded-words.
        if quoted.utf8.count < HeaderFolder.hardLimit - 100 {
            folder.append(quoted)
        } else {
            folder.appendEncoded(name)
        }
    }
}
