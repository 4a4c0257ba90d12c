/// A secret sealed at rest: the text stored in the database, parsed.
///
/// Format, version 1:
///
///     v1:<key-id>:<base64(nonce ‖ ciphertext ‖ tag)>
///
/// - `key-id`: 8 lowercase hex characters naming the data key (`data-<key-id>.key`
///   in the key directory, see ``SecretKeyring``).
/// - `nonce`: 12 random bytes, fresh for every seal, so sealing the same password
///   twice gives two different strings.
/// - `ciphertext`: AES-256-GCM of the UTF-8 password, as long as the password.
/// - `tag`: the 16-byte GCM tag.
/// - Associated data: the ASCII bytes of `v1:<key-id>` — the version and key id are
///   authenticated, so a value cannot be relabelled to another key or version
///   without the tag failing.
///
/// An empty stored string means "no password" and is never sealed or parsed.
/// Sealing and opening need keys: see ``SecretKeyring/seal(_:)`` and
/// ``SecretKeyring/open(_:)``. This type only parses and formats.
///
/// ```swift
/// // Which data key must stay until this value is re-sealed:
/// let keyInUse = try SealedSecret(parsing: storedValue).keyID
/// ```
public struct SealedSecret: Hashable, Sendable, CustomStringConvertible {
    /// The version prefix of the current format.
    public static let version = "v1"
    static let nonceSize = 12
    static let tagSize = 16
    static let keyIDLength = 8

    /// The data key this value was sealed with.
    public let keyID: String
    let nonce: [UInt8]
    let ciphertext: [UInt8]
    let tag: [UInt8]

    init(keyID: String, nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
        self.keyID = keyID
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.tag = tag
    }

    /// Parses a stored value.
    ///
    /// - Throws: `StorageError` `.secretMalformed` for a wrong prefix or version, a key
    ///   id that is not 8 lowercase hex characters, bad base64, or a payload shorter
    ///   than nonce plus tag (28 bytes).
    public init(parsing stored: String) throws {
        let parts = stored.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].hasPrefix("v") else {
            throw StorageError(.secretMalformed, "sealed secret does not have the form v1:<key-id>:<base64>")
        }
        guard parts[0] == Self.version else {
            throw StorageError(.secretMalformed, "sealed secret has version \"\(parts[0].prefix(8))\"; only \(Self.version) is known")
        }
        let keyID = String(parts[1])
        guard Self.isValidKeyID(keyID) else {
            throw StorageError(.secretMalformed, "sealed secret has a key id that is not \(Self.keyIDLength) lowercase hex characters")
        }
        let payload = try StrictBase64.decode(String(parts[2]), allowingWhitespace: false, what: "sealed secret payload")
        guard payload.count >= Self.nonceSize + Self.tagSize else {
            throw StorageError(.secretMalformed, "sealed secret payload is \(payload.count) bytes; nonce and tag alone are \(Self.nonceSize + Self.tagSize)")
        }
        self.keyID = keyID
        nonce = Array(payload[..<Self.nonceSize])
        ciphertext = Array(payload[Self.nonceSize..<(payload.count - Self.tagSize)])
        tag = Array(payload[(payload.count - Self.tagSize)...])
    }

    /// Whether `stored` looks like this format (starts with `v1:`); says nothing about
    /// whether it opens.
    public static func isSealed(_ stored: String) -> Bool {
        stored.hasPrefix(version + ":")
    }

    /// The text to store.
    public var description: String {
        "\(Self.version):\(keyID):" + StrictBase64.encode(nonce + ciphertext + tag)
    }

    /// The GCM associated data: `v1:<key-id>`.
    var associatedData: [UInt8] {
        Array("\(Self.version):\(keyID)".utf8)
    }

    static func isValidKeyID(_ id: String) -> Bool {
        id.utf8.count == keyIDLength && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Seals `plaintext` with `key` (32 bytes) under a fresh random nonce.
    static func seal(_ plaintext: [UInt8], keyID: String, key: [UInt8]) throws -> SealedSecret {
        let nonce = try secureRandomBytes(nonceSize)
        let header = SealedSecret(keyID: keyID, nonce: nonce, ciphertext: [], tag: [])
        let (ciphertext, tag) = try CipherContext.sealAES256GCM(key: key, nonce: nonce, plaintext: plaintext, aad: header.associatedData)
        return SealedSecret(keyID: keyID, nonce: nonce, ciphertext: ciphertext, tag: tag)
    }

    /// Opens with `key`, which must be the key named by `keyID`.
    func open(key: [UInt8]) throws -> String {
        var plaintext = try CipherContext.openAES256GCM(key: key, nonce: nonce, ciphertext: ciphertext, tag: tag, aad: associatedData)
        defer { cleanse(&plaintext) }
        guard let text = strictUTF8(plaintext) else {
            throw StorageError(.secretMalformed, "sealed secret (key \(keyID)) authenticates but is not UTF-8 text")
        }
        return text
    }
}

/// The bytes as a String if they are valid UTF-8, else nil (no replacement characters).
func strictUTF8(_ bytes: [UInt8]) -> String? {
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil
}
