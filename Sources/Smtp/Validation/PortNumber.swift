/// A TCP port 1–65535 read from the text of a form field.
///
/// Decisions: only the ASCII digits 0–9; no sign, no spaces (refused, not trimmed),
/// no leading zeros ("025" is refused: nobody means it and some tools read it as
/// octal); "0" is out of range.
///
/// ```swift
/// switch PortNumber.validate("587") {
/// case .success(let port): port.value   // 587
/// case .failure(let error): error.reason
/// }
/// ```
public struct PortNumber: Sendable, Hashable, CustomStringConvertible {
    /// The port, 1…65535.
    public let value: UInt16

    /// The ports accepted: the one place their range is written down.
    public static let range: ClosedRange<UInt16> = 1...65535

    /// The port in decimal.
    public var description: String { String(value) }

    /// Wraps a number already known to be valid; nil for 0.
    public init?(_ value: UInt16) {
        guard value != 0 else { return nil }
        self.value = value
    }

    /// Parses a port typed by a person.
    ///
    /// ```swift
    /// let port = try PortNumber(parsing: "465")
    /// ```
    /// - Parameter text: decimal digits.
    /// - Throws: `ValidationError` saying what is wrong.
    public init(parsing text: String) throws(ValidationError) {
        self = try Self.parse(text)
    }

    /// Validates `text` as a port, without throwing.
    /// - Parameter text: decimal digits.
    /// - Returns: the port, or why it is refused.
    public static func validate(_ text: String) -> Result<PortNumber, ValidationError> {
        do { return .success(try parse(text)) } catch { return .failure(error) }
    }

    private init(checked value: UInt16) { self.value = value }

    private static func parse(_ text: String) throws(ValidationError) -> PortNumber {
        let range = "the port must be a number between \(Self.range.lowerBound) and \(Self.range.upperBound)"
        if text.isEmpty { throw ValidationError(.empty, "the port is empty") }
        // Checked before digits so that a hostile megabyte is refused at once.
        if text.utf8.count > 5 {
            if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { throw ValidationError(.outOfRange, range) }
            try ValidationError.checkNoControls(text, "the port")
            throw ValidationError(.invalidCharacter, range)
        }
        try ValidationError.checkNoControls(text, "the port")
        guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            if text.contains(" ") { throw ValidationError(.invalidCharacter, "the port contains a space") }
            throw ValidationError(.invalidCharacter, "\(range), written with the digits 0–9 only")
        }
        if text.utf8.count > 1, text.utf8.first == 0x30 {
            throw ValidationError(.invalidSyntax, "the port has a leading zero; write it without (e.g. 25)")
        }
        guard let number = UInt16(text), Self.range.contains(number) else {
            throw ValidationError(.outOfRange, range)
        }
        return PortNumber(checked: UInt16(number))
    }
}
