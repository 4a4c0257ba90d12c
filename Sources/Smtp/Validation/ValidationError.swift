/// Why a value typed by a person (an address, a host name, a port, a fingerprint, a
/// header of a message) was refused, with a reason that person can act on.
///
/// One value type for every validator in this module and for the message builder, in
/// the manner of postgres-nio's `PSQLError`: `code` is for programs (it wraps a private
/// enum, so new codes don't break callers), `reason` is for people.
///
/// ```swift
/// switch PortNumber.validate("0") {
/// case .success(let port): use(port.value)
/// case .failure(let error): errors["smtp_port"] = error.reason  // "the port must be between 1 and 65535"
/// }
/// ```
public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it is, for programs; `reason` says it for people.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case empty, tooLong, lineBreak, nul, controlCharacter, invalidCharacter
            case invalidSyntax, missingPart, outOfRange, notAllowed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Nothing was given.
        public static let empty = Code(.empty)
        /// Longer than a limit of the relevant RFC.
        public static let tooLong = Code(.tooLong)
        /// Contains CR or LF, which could inject protocol lines or headers.
        public static let lineBreak = Code(.lineBreak)
        /// Contains a NUL character.
        public static let nul = Code(.nul)
        /// Contains another control character.
        public static let controlCharacter = Code(.controlCharacter)
        /// Contains a character not allowed at that place.
        public static let invalidCharacter = Code(.invalidCharacter)
        /// The characters are allowed, but not in this arrangement.
        public static let invalidSyntax = Code(.invalidSyntax)
        /// A required part (the domain of an address, …) is missing.
        public static let missingPart = Code(.missingPart)
        /// A number outside its range.
        public static let outOfRange = Code(.outOfRange)
        /// Well-formed, but refused on purpose (an IPv6 zone id, a header the builder owns).
        public static let notAllowed = Code(.notAllowed)

        /// The code's name, e.g. `lineBreak`.
        public var description: String { base.rawValue }
    }

    /// What kind of problem it is.
    public let code: Code
    /// One sentence, lower case, for a person: "the domain part is missing".
    public let reason: String

    /// Makes an error; `reason` is shown to people as it is.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The reason.
    public var description: String { reason }
}

extension ValidationError {
    /// Refuses CR, LF, NUL and other control characters (C0, DEL, C1) in `text`, naming
    /// `what` ("the subject") in the reason. Tab is refused too unless `allowTab`.
    static func checkNoControls(_ text: String, _ what: String, allowTab: Bool = false) throws(ValidationError) {
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0D, 0x0A:
                throw ValidationError(.lineBreak, "\(what) contains a line break")
            case 0x00:
                throw ValidationError(.nul, "\(what) contains a NUL character")
            case 0x09 where allowTab:
                continue
            case 0x01...0x1F, 0x7F, 0x80...0x9F:
                throw ValidationError(.controlCharacter, "\(what) contains a control character (U+\(hex4(scalar.value)))")
            case 0x2028, 0x2029:
                throw ValidationError(.lineBreak, "\(what) contains a line break (U+\(hex4(scalar.value)))")
            default:
                continue
            }
        }
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
