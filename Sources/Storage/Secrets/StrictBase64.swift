#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard base64 (RFC 4648 §4, "+/" alphabet, "=" padding) decoded strictly, with
/// an error that says what is wrong rather than a bare nil. Never puts the input in
/// the message: it may be (or contain) a secret.
enum StrictBase64 {
    /// Decodes `text`. With `allowingWhitespace`, spaces, tabs and line breaks are
    /// dropped first (`openssl enc -a` wraps at 64 characters; pasted values end in a
    /// newline). `what` names the value in errors ("the transport ciphertext").
    static func decode(_ text: String, allowingWhitespace: Bool, what: String) throws -> [UInt8] {
        var characters = Array(text.utf8)
        if allowingWhitespace {
            characters.removeAll { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        }
        guard !characters.isEmpty else {
            throw StorageError(.secretMalformed, "\(what) is empty")
        }
        if let bad = characters.firstIndex(where: { !isAlphabet($0) }) {
            throw StorageError(.secretMalformed, "\(what) is not base64: unexpected character at position \(bad + 1)")
        }
        guard characters.count % 4 == 0 else {
            throw StorageError(.secretMalformed, "\(what) is truncated base64: \(characters.count) characters, not a multiple of 4")
        }
        if let firstPad = characters.firstIndex(of: UInt8(ascii: "=")), firstPad < characters.count - 2
            || characters[firstPad...].contains(where: { $0 != UInt8(ascii: "=") }) {
            throw StorageError(.secretMalformed, "\(what) is not base64: \"=\" padding in the middle")
        }
        guard let data = Data(base64Encoded: Data(characters)) else {
            throw StorageError(.secretMalformed, "\(what) is not valid base64")
        }
        return [UInt8](data)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    private static func isAlphabet(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "+") || c == UInt8(ascii: "/") || c == UInt8(ascii: "=")
    }
}
