/// Trimming without full Foundation (`trimmingCharacters(in:)` needs it; this module
/// uses FoundationEssentials only: docs/DECISIONS.md, "CGI start-up").
extension StringProtocol {
    /// Without leading and trailing spaces and tabs (Unicode spaces too), or with
    /// `newlines` also line breaks: what `.whitespaces` / `.whitespacesAndNewlines` trim.
    func trimmingWhitespace(newlines: Bool = false) -> String {
        func trimmed(_ c: Character) -> Bool { c == "\t" || (c.isWhitespace && (newlines || !c.isNewline)) }
        guard let first = firstIndex(where: { !trimmed($0) }), let last = lastIndex(where: { !trimmed($0) }) else { return "" }
        return String(self[first...last])
    }
}
