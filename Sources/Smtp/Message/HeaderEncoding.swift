/// RFC 2047 encoded-words ("=?utf-8?B?…?=") for non-ASCII text in headers.
enum EncodedWord {
    /// Longest encoded-word RFC 2047 allows.
    static let maxLength = 75
    private static let overhead = "=?utf-8?Q??=".utf8.count  // 12, the same for B

    /// The encoding of one piece of text: B (base64) or Q (quoted-printable-like),
    /// whichever is shorter for this text; Q on a tie because people can read it.
    enum Encoding { case b, q }

    static func encoding(for text: String) -> Encoding {
        let bytes = Array(text.utf8)
        let qLength = bytes.reduce(0) { $0 + qPiece($1).count }
        let bLength = (bytes.count + 2) / 3 * 4
        return qLength <= bLength ? .q : .b
    }

    /// Splits `text` into encoded-words, each at most `maxLength` characters and each
    /// ending on a character (Unicode scalar) boundary, so every word decodes to valid
    /// UTF-8 on its own. The first word is at most `firstRoom` long; `emit` receives
    /// each word and returns how long the next may be (at least 16).
    static func encode(_ text: String, encoding: Encoding, firstRoom: Int, emit: (String) -> Int) {
        var chunk: [UInt8] = []
        var limit = min(maxLength, firstRoom) - overhead
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if !chunk.isEmpty, payloadLength(chunk + bytes, encoding) > limit {
                limit = min(maxLength, emit(word(chunk, encoding))) - overhead
                chunk = []
            }
            chunk += bytes
        }
        _ = emit(word(chunk, encoding))
    }

    /// All the words of `text` with the same room for each.
    static func encode(_ text: String, encoding: Encoding, room: Int = maxLength) -> [String] {
        var words: [String] = []
        encode(text, encoding: encoding, firstRoom: room) { words.append($0); return room }
        return words
    }

    private static func payloadLength(_ bytes: [UInt8], _ encoding: Encoding) -> Int {
        switch encoding {
        case .b: return (bytes.count + 2) / 3 * 4
        case .q: return bytes.reduce(0) { $0 + qPiece($1).count }
        }
    }

    private static func word(_ bytes: [UInt8], _ encoding: Encoding) -> String {
        switch encoding {
        case .b: return "=?utf-8?B?" + Base64.encode(bytes) + "?="
        case .q: return "=?utf-8?Q?" + bytes.map(qPiece).joined() + "?="
        }
    }

    /// Q encoding as allowed in a phrase (RFC 2047 section 5 rule 3), which is also
    /// valid in unstructured text: letters, digits and `!*+-/` stay, space is `_`.
    private static func qPiece(_ byte: UInt8) -> String {
        switch byte {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x21, 0x2A, 0x2B, 0x2D, 0x2F:
            return String(Unicode.Scalar(byte))
        case 0x20:
            return "_"
        default:
            return "=" + Hex.byte(byte)
        }
    }
}

enum Hex {
    private static let digits = Array("0123456789ABCDEF".utf8)
    /// Two upper-case hex digits.
    static func byte(_ byte: UInt8) -> String {
        String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i]
            let b1 = i + 1 < bytes.count ? bytes[i + 1] : 0
            let b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : 0x3D)
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : 0x3D)
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Writes one header field, folding (CRLF + space) between tokens so that lines stay
/// within 78 octets where a token boundary allows, and refusing to produce a line over
/// 998 octets (RFC 5322 section 2.1.1).
struct HeaderFolder {
    static let softLimit = 78
    static let hardLimit = 998

    private var lines: [String] = []
    private var current: String
    private var tokensOnLine = 0
    private let name: String

    init(name: String) {
        self.name = name
        current = name + ":"
    }

    /// Octets on the current line so far.
    var column: Int { current.utf8.count }

    /// Room for the next token if it went on the current line after a space, or, when
    /// that is too little for a useful encoded-word, on a new line.
    var roomForNextWord: Int {
        let here = HeaderFolder.softLimit - column - 1
        return here >= 20 ? here : HeaderFolder.softLimit - 1
    }

    /// Appends `token` after one space, folding first if it would pass 78 octets.
    /// An empty token adds just the space (for runs of spaces), never a fold.
    mutating func append(_ token: String) {
        let length = token.utf8.count
        if length > 0, tokensOnLine > 0, column + 1 + length > HeaderFolder.softLimit {
            lines.append(current)
            current = " " + token
            tokensOnLine = 1
        } else {
            current += " " + token
            tokensOnLine += 1
        }
    }

    /// Appends text directly to the last token (a comma after an address).
    mutating func attach(_ text: String) {
        current += text
    }

    /// The field as octets, each line ending in CRLF.
    func finish() throws(ValidationError) -> [UInt8] {
        var out: [UInt8] = []
        for line in lines + [current] {
            if line.utf8.count > HeaderFolder.hardLimit {
                throw ValidationError(.tooLong, "the \(name) header has a part that can't be folded into lines of 998 octets")
            }
            out += line.utf8
            out += [0x0D, 0x0A]
        }
        return out
    }

    /// Writes unstructured text (a subject, an extra header's value): as it is, folded
    /// at spaces, when it is printable ASCII whose words fit a line; otherwise as
    /// encoded-words.
    mutating func appendUnstructured(_ text: String) {
        let words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let longest = words.map { $0.utf8.count }.max() ?? 0
        let plain = text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            && !text.contains("=?")
            && longest <= HeaderFolder.hardLimit - 100
        if plain {
            for word in words { append(word) }
        } else {
            appendEncoded(text)
        }
    }

    /// Writes `text` as encoded-words, each sized to fit the line it lands on.
    mutating func appendEncoded(_ text: String) {
        let encoding = EncodedWord.encoding(for: text)
        EncodedWord.encode(text, encoding: encoding, firstRoom: roomForNextWord) { word in
            append(word)
            return roomForNextWord
        }
    }
}
