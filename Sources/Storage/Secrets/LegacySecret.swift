/// Passwords stored by the original system: the base64 output of
///
///     openssl enc -aes256 -md sha1 -a -salt -pass file:<legacy key file>
///
/// that is `"Salted__"` ‖ 8-byte salt ‖ AES-256-CBC ciphertext (PKCS#7 padding), with
/// key and IV from `EVP_BytesToKey(SHA-1, salt, passphrase, 1 iteration)` — what
/// `openssl enc` does without `-pbkdf2`. The base64 may be wrapped at 64 characters
/// (`-a` wraps long output); all whitespace and line breaks are ignored.
///
/// Read-only: nothing new is ever written in this format. Re-seal legacy values with
/// ``SecretOpener/reseal(_:)``.
///
/// ```swift
/// let passphrase = try LegacySecret.passphrase(fromKeyFile: "/etc/emailsetup/legacy.key")
/// if LegacySecret.isLegacy(stored) {
///     let password = try LegacySecret.open(stored, passphrase: passphrase)
/// }
/// ```
public enum LegacySecret {
    /// base64 of "Salted__" followed by anything: every salted `openssl enc -a` output
    /// starts with these ten characters.
    public static let prefix = "U2FsdGVkX1"
    /// `openssl enc -pass file:` reads into a 1024-byte buffer (`APP_PASS_LEN`).
    static let passphraseBufferSize = 1024

    /// Whether `stored` is in the legacy format (starts with `U2FsdGVkX1`, leading
    /// whitespace ignored). Says nothing about whether it opens.
    public static func isLegacy(_ stored: String) -> Bool {
        stored.drop(while: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }).hasPrefix(prefix)
    }

    /// Decrypts a legacy value.
    ///
    /// - Parameters:
    ///   - stored: the base64 text, possibly wrapped over several lines.
    ///   - passphrase: the passphrase as `openssl enc` used it; see
    ///     ``passphrase(fromKeyFile:)`` for reading it the way `-pass file:` does.
    /// - Throws: `StorageError` `.secretMalformed` (not base64, no "Salted__" header,
    ///   ciphertext not a whole number of AES blocks, result not UTF-8),
    ///   `.secretAuthentication` (bad padding: wrong passphrase or changed data).
    public static func open(_ stored: String, passphrase: String) throws -> String {
        try open(stored, passphraseBytes: Array(passphrase.utf8))
    }

    static func open(_ stored: String, passphraseBytes: [UInt8]) throws -> String {
        let bytes = try StrictBase64.decode(stored, allowingWhitespace: true, what: "legacy secret")
        guard bytes.count >= 16, bytes[..<8].elementsEqual("Salted__".utf8) else {
            throw StorageError(.secretMalformed, "legacy secret does not start with the \"Salted__\" header and an 8-byte salt")
        }
        let salt = Array(bytes[8..<16])
        let ciphertext = Array(bytes[16...])
        guard !ciphertext.isEmpty, ciphertext.count % 16 == 0 else {
            throw StorageError(.secretMalformed, "legacy secret ciphertext is \(ciphertext.count) bytes, not a whole number of 16-byte AES blocks (truncated?)")
        }
        var plaintext = try CipherContext.decryptLegacyAES256CBC(salt: salt, ciphertext: ciphertext, passphrase: passphraseBytes)
        defer { cleanse(&plaintext) }
        guard let text = strictUTF8(plaintext) else {
            // CBC padding passes by chance about once in 256 wrong passphrases.
            throw StorageError(.secretAuthentication, "legacy secret decrypts to bytes that are not UTF-8: most likely the wrong legacy passphrase")
        }
        return text
    }

    /// Reads a legacy key file exactly as `openssl enc -pass file:PATH` does.
    ///
    /// OpenSSL's `app_get_pass` reads ONE line with `BIO_gets` into a 1024-byte buffer
    /// and cuts it at the first `"\n"`. So the passphrase is:
    /// - the bytes before the first line feed (the rest of the file is ignored);
    /// - a carriage return before that line feed is KEPT (a CRLF file's passphrase
    ///   ends in "\r", as it did for openssl);
    /// - at most 1023 bytes; a longer first line is cut there;
    /// - cut at a NUL byte, if any (openssl copies it as a C string).
    ///
    /// The file must also pass the key file rules: not readable or writable by group
    /// or others, a regular file, not a symbolic link.
    ///
    /// - Throws: `StorageError` `.keyFile` (missing, unreadable, wrong mode),
    ///   `.configuration` (empty passphrase, or not UTF-8).
    public static func passphrase(fromKeyFile path: String) throws -> String {
        guard let contents = try KeyFiles.readFile(path) else {
            throw StorageError(.keyFile, "legacy key file \(path) does not exist")
        }
        return try passphrase(fromFileContents: contents, path: path)
    }

    static func passphrase(fromFileContents contents: [UInt8], path: String) throws -> String {
        var line = contents.prefix(passphraseBufferSize - 1)
        if let newline = line.firstIndex(of: 0x0A) { line = line[..<newline] }
        if let nul = line.firstIndex(of: 0) { line = line[..<nul] }
        guard !line.isEmpty else {
            throw StorageError(.configuration, "legacy key file \(path) has an empty first line; openssl enc read its passphrase from that line")
        }
        guard let text = strictUTF8(Array(line)) else {
            throw StorageError(.configuration, "legacy key file \(path) has a first line that is not UTF-8")
        }
        return text
    }
}
