/// The SHA-256 fingerprint of a server certificate, as pinned in `smtp_tls_pin_sha256`.
///
/// Accepted forms: 64 hexadecimal digits in either case, or 32 pairs separated by
/// colons as `openssl x509 -fingerprint -sha256` prints them (its "sha256
/// Fingerprint=" prefix may be pasted too). Surrounding spaces and tabs are ignored,
/// since the result is canonical anyway; anything else (a line break, a NUL, other
/// separators, a wrong length) is refused.
///
/// ```swift
/// let pin = try SHA256Fingerprint("AB:CD:…")   // 32 pairs
/// pin.hex                                       // "abcd…", 64 lower-case digits
/// ```
public struct SHA256Fingerprint: Sendable, Hashable, CustomStringConvertible {
    /// 64 lower-case hexadecimal digits, no colons.
    public let hex: String

    /// The colon form in upper case, as OpenSSL prints it ("AB:CD:…").
    public var colonSeparated: String {
        var pairs: [Substring] = []
        var rest = Substring(hex.uppercased())
        while !rest.isEmpty {
            pairs.append(rest.prefix(2))
            rest = rest.dropFirst(2)
        }
        return pairs.joined(separator: ":")
    }

    /// `hex`.
    public var description: String { hex }

    /// Makes a fingerprint from the 32 bytes of a digest.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        hex = String(decoding: out, as: UTF8.self)
    }

    /// Parses a fingerprint typed or pasted by a person.
    /// - Parameter text: hex, with or without colons.
    /// - Throws: `ValidationError` saying what is wrong.
    public init(_ text: String) throws(ValidationError) {
        self = try Self.parse(text)
    }

    /// Validates `text` as a SHA-256 fingerprint, without throwing.
    ///
    /// ```swift
    /// if case .success(let pin) = SHA256Fingerprint.validate(input) { store(pin.hex) }
    /// ```
    /// - Parameter text: hex, with or without colons.
    /// - Returns: the normalised fingerprint, or why it is refused.
    public static func validate(_ text: String) -> Result<SHA256Fingerprint, ValidationError> {
        do { return .success(try parse(text)) } catch { return .failure(error) }
    }

    private init(normalised hex: String) { self.hex = hex }

    private static func parse(_ text: String) throws(ValidationError) -> SHA256Fingerprint {
        let expectation = "a SHA-256 fingerprint is 64 hexadecimal digits, optionally in pairs separated by colons"
        if text.isEmpty { throw ValidationError(.empty, "the fingerprint is empty") }
        if text.utf8.count > 256 { throw ValidationError(.tooLong, "the fingerprint is too long; \(expectation)") }
        try ValidationError.checkNoControls(text, "the fingerprint", allowTab: true)

        var body = Substring(text)
        while let first = body.first, first == " " || first == "\t" { body = body.dropFirst() }
        while let last = body.last, last == " " || last == "\t" { body = body.dropLast() }
        for prefix in ["sha256 fingerprint=", "sha2-256 fingerprint=", "sha256:", "sha-256:"] where body.lowercased().hasPrefix(prefix) {
            body = body.dropFirst(prefix.count)
            break
        }

        let bytes = Array(body.utf8)
        var digits: [UInt8] = []
        if bytes.contains(0x3A) {
            // Exactly "XX:XX:…:XX", 32 pairs.
            let groups = bytes.split(separator: 0x3A, omittingEmptySubsequences: false)
            guard groups.count == 32, groups.allSatisfy({ $0.count == 2 }) else {
                throw ValidationError(.invalidSyntax, "the fingerprint's colon form must be 32 pairs of hex digits (AB:CD:…); \(expectation)")
            }
            digits = groups.flatMap { $0 }
        } else {
            digits = bytes
        }
        guard digits.allSatisfy(isHexDigit) else {
            throw ValidationError(.invalidCharacter, "the fingerprint contains characters other than hex digits and colons; \(expectation)")
        }
        guard digits.count == 64 else {
            throw ValidationError(.invalidSyntax, "the fingerprint has \(digits.count) hex digits, not 64; \(expectation)")
        }
        return SHA256Fingerprint(normalised: String(decoding: digits, as: UTF8.self).lowercased())
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
    }
}
