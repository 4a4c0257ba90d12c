import Smtp

extension APIHandler {
    /// `diagnosis.suggestion`: the port and connection security that were tried after
    /// the failure and work, with what was verified; null when none was tried or none
    /// worked (DESIGN.md "More endpoints").
    ///
    /// ```json
    /// {"port":465,"smtp_connection_type":"SSL","connection_security":"SSL/TLS",
    ///  "verified":"port 465 answers with SSL/TLS (certificate valid for smtp.example.com)"}
    /// ```
    static func suggestionMember(_ suggestion: SmtpSuggestion?) -> [(String, JSONValue)] {
        guard let suggestion else { return [("suggestion", .null)] }
        return [("suggestion", .object([
            ("port", .number(Double(suggestion.port))),
            ("smtp_connection_type", .string(suggestion.storedConnectionType)),
            ("connection_security", .string(suggestion.securityLabel)),
            ("verified", .string(suggestion.verified)),
        ]))]
    }
}
