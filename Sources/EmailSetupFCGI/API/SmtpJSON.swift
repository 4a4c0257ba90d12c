import Smtp

/// The Smtp module's reports and failures as JSON: the one renderer of the diagnosis,
/// the certificate and the session facts, used by the HTTP answers and by the
/// command line's `--json`.
enum SmtpJSON {
    /// The leaf certificate: subject, issuer, validity, fingerprint, names; null when none.
    static func certificate(_ c: SmtpCertificate?) -> JSONValue {
        guard let c else { return .null }
        return .object([("subject", .string(c.subject)), ("issuer", .string(c.issuer)),
                        ("not_before", .string(c.notBefore)), ("not_after", .string(c.notAfter)),
                        ("sha256_fingerprint", .string(c.sha256Fingerprint)),
                        ("subject_alt_names", .array(c.subjectAlternativeNames.map { .string($0) }))])
    }

    /// `diagnosis.suggestion`: the port and connection security that were tried after
    /// the failure and work, with what was verified; null when none was tried or none
    /// worked (DESIGN.md "More endpoints").
    ///
    /// ```json
    /// {"port":465,"smtp_connection_type":"SSL","connection_security":"SSL/TLS",
    ///  "verified":"port 465 answers with SSL/TLS (certificate valid for smtp.example.com)"}
    /// ```
    static func suggestion(_ suggestion: SmtpSuggestion?) -> JSONValue {
        guard let suggestion else { return .null }
        return .object([
            ("port", .number(Double(suggestion.port))),
            ("smtp_connection_type", .string(suggestion.storedConnectionType)),
            ("connection_security", .string(suggestion.securityLabel)),
            ("verified", .string(suggestion.verified)),
        ])
    }

    /// The members of a diagnosis: `stage`, `kind`, `code` (the SMTP reply code, or the
    /// OAuth provider's code), `enhanced_code`, `reply_text`, `hint`, `transient`,
    /// `certificate`, `transcript` (credentials redacted), `suggestion`.
    static func diagnosis(_ error: SmtpError) -> [(String, JSONValue)] {
        [
            ("stage", .string(error.stage.rawValue)), ("kind", .string(error.kind.rawValue)),
            ("code", error.replyCode.map { .number(Double($0)) } ?? error.providerCode.map { .string($0) } ?? .null),
            ("enhanced_code", error.enhancedCode.map { .string($0) } ?? .null),
            ("reply_text", error.replyText.map { .string($0) } ?? .null),
            ("hint", .string(error.hint)), ("transient", .bool(error.isTransient)),
            ("certificate", certificate(error.certificate)),
            ("transcript", .array(error.transcript.lines.map { .string($0) })),
            ("suggestion", suggestion(error.suggestion)),
        ]
    }

    /// Milliseconds per step, to a tenth.
    static func timings(_ timings: [String: Double]) -> JSONValue {
        .object(timings.keys.sorted().map { ($0, .number((timings[$0]! * 10).rounded() / 10)) })
    }

    /// What a successful session found: timings, the server, its certificate, the transcript.
    static func sessionFacts(timings: [String: Double], transcript: SmtpTranscript, server: SmtpServerInfo) -> [(String, JSONValue)] {
        [
            ("timings_ms", self.timings(timings)),
            ("server", .object([
                ("remote_address", .string(server.remoteAddress)), ("greeting", .string(server.greeting)),
                ("tls_version", server.tlsVersion.map { .string($0) } ?? .null), ("cipher", server.cipher.map { .string($0) } ?? .null),
                ("auth_mechanism", server.authMechanism.map { .string($0) } ?? .null),
                ("extensions", .array(server.capabilities.keywords.keys.sorted().map { .string($0) })),
            ])),
            ("certificate", certificate(server.certificate)),
            ("transcript", .array(transcript.lines.map { .string($0) })),
        ]
    }
}
