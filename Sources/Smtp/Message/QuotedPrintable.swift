/// The body's transfer encodings (RFC 2045).
enum BodyEncoding {
    /// Longest line the 7bit encoding is chosen for; longer lines go quoted-printable.
    static let maxPlainLineLength = 78
    /// Longest encoded quoted-printable line, soft-break "=" included (RFC 2045 6.7 rule 5).
    static let maxEncodedLineLength = 76

    /// The text's lines as UTF-8 octets, split at CRLF, LF and lone CR (all hard line
    /// breaks). A final line break does not start another line.
    static func lines(of text: String) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var previousWasCR = false
        for byte in text.utf8 {
            if byte == 0x0A && previousWasCR { previousWasCR = false; continue }
            previousWasCR = byte == 0x0D
            if byte == 0x0D || byte == 0x0A {
                lines.append(current)
                current = []
            } else {
                current.append(byte)
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// True when the lines can be sent as they are (7bit): printable ASCII and tab,
    /// lines of at most 78 octets, no whitespace at the end of a line (which some
    /// relays strip).
    static func isPlain(_ lines: [[UInt8]]) -> Bool {
        lines.allSatisfy { line in
            line.count <= maxPlainLineLength
                && line.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }
                && line.last != 0x20 && line.last != 0x09
        }
    }

    /// Quoted-printable encoding of the lines (RFC 2045 section 6.7): `=XX` for "=",
    /// non-ASCII and control octets, for space and tab at the end of a line; soft
    /// line breaks so no encoded line exceeds 76 octets; hard breaks become CRLF.
    /// Returns the encoded lines, without line ends.
    static func quotedPrintable(_ lines: [[UInt8]]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for line in lines {
            var current: [UInt8] = []
            for (index, byte) in line.enumerated() {
                let isLast = index == line.count - 1
                let piece: [UInt8]
                switch byte {
                case 0x20, 0x09:
                    piece = isLast ? escape(byte) : [byte]
                case 0x21...0x3C, 0x3E...0x7E:
                    piece = [byte]
                default:
                    piece = escape(byte)
                }
                // Keep room for the soft break's "=", unless this is the line's last piece.
                let limit = isLast ? maxEncodedLineLength : maxEncodedLineLength - 1
                if current.count + piece.count > limit {
                    out.append(current + [0x3D])
                    current = []
                }
                current += piece
            }
            out.append(current)
        }
        return out
    }

    private static func escape(_ byte: UInt8) -> [UInt8] {
        [0x3D] + Array(Hex.byte(byte).utf8)
    }
}
