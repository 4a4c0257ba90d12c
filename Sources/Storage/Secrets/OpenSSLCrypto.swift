// Every OpenSSL pointer the Storage module uses lives in this file: each one is
// owned by a `final class` with a `private let` pointer freed in `deinit`, and every
// call goes through `OpenSSLCall`, which clears the error queue before and drains it
// into the thrown `StorageError` after. Nothing outside this file sees a C pointer.
import COpenSSL

// MARK: - The one error helper

/// Runs OpenSSL calls the way swift-nio's `syscall` runs system calls: the error queue
/// is cleared first, and on failure everything OpenSSL queued becomes the thrown
/// error's message, after the function name and what we were doing.
enum OpenSSLCall {
    /// For functions that return 1 (or a positive count) on success.
    @discardableResult
    static func check(
        _ function: StaticString,
        _ code: StorageError.Code = .crypto,
        _ context: @autoclosure () -> String,
        _ body: () -> Int32
    ) throws -> Int32 {
        ERR_clear_error()
        let result = body()
        guard result > 0 else { throw failure(function, code, context()) }
        return result
    }

    /// For functions that return a pointer, NULL on failure.
    static func pointer<T>(
        _ function: StaticString,
        _ code: StorageError.Code = .crypto,
        _ context: @autoclosure () -> String,
        _ body: () -> T?
    ) throws -> T {
        ERR_clear_error()
        guard let result = body() else { throw failure(function, code, context()) }
        return result
    }

    /// Builds the error from OpenSSL's queue (and empties the queue).
    static func failure(_ function: StaticString, _ code: StorageError.Code, _ context: String) -> StorageError {
        var reasons: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            if reasons.count < 4 {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(e, &buffer, buffer.count)
                reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        var message = "\(context): \(function) failed"
        if !reasons.isEmpty { message += " (" + reasons.joined(separator: "; ") + ")" }
        return StorageError(code, message)
    }
}

/// Random bytes from OpenSSL's CSPRNG.
func secureRandomBytes(_ count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    try OpenSSLCall.check("RAND_bytes", .crypto, "generating \(count) random bytes") {
        RAND_bytes(&bytes, Int32(count))
    }
    return bytes
}

/// Overwrites a buffer that held key material or a password (best effort: Swift may
/// have made copies we cannot reach).
func cleanse(_ bytes: inout [UInt8]) {
    let count = bytes.count
    bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, count) }
}

// MARK: - BIO

/// An in-memory BIO, used to move PEM text in and out of OpenSSL.
final class MemoryBIO {
    private let pointer: OpaquePointer

    init() throws {
        pointer = try OpenSSLCall.pointer("BIO_new", .crypto, "making a memory BIO") { BIO_new(BIO_s_mem()) }
    }

    convenience init(bytes: [UInt8]) throws {
        try self.init()
        guard !bytes.isEmpty else { return }
        try OpenSSLCall.check("BIO_write", .crypto, "filling a memory BIO") {
            withPointer { bio in bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) } }
        }
    }

    deinit { BIO_free(pointer) }

    /// Lends the pointer to `body`, keeping the BIO alive while it runs.
    fileprivate func withPointer<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(pointer) }
    }

    /// Everything written to the BIO so far.
    var bytes: [UInt8] {
        withPointer { bio in
            var data: UnsafeMutablePointer<CChar>? = nil
            let length = COpenSSL_BIO_get_mem_data(bio, &data)
            guard length > 0, let data else { return [] }
            return data.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            }
        }
    }
}

// MARK: - RSA transport key

/// The transport key pair: an RSA `EVP_PKEY`. Immutable after creation; OpenSSL 3
/// allows one `EVP_PKEY` to be used from several threads at once, each call making
/// its own `EVP_PKEY_CTX`.
// @unchecked: an immutable EVP_PKEY handle; OpenSSL 3 makes concurrent use of one key safe.
final class RSATransportKey: @unchecked Sendable {
    private let pointer: OpaquePointer

    private init(owning pointer: OpaquePointer) { self.pointer = pointer }

    deinit { EVP_PKEY_free(pointer) }

    fileprivate func withPointer<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(pointer) }
    }

    /// Generates a new RSA key with exponent 65537.
    static func generate(bits: Int) throws -> RSATransportKey {
        let key = try OpenSSLCall.pointer("EVP_RSA_gen", .crypto, "generating an RSA-\(bits) key") {
            COpenSSL_EVP_RSA_gen(UInt32(bits))
        }
        return RSATransportKey(owning: key)
    }

    /// Parses an unencrypted private key PEM (PKCS#8 or traditional); `path` names the
    /// file in the error.
    static func parse(privateKeyPEM: [UInt8], path: String) throws -> RSATransportKey {
        let bio = try MemoryBIO(bytes: privateKeyPEM)
        let key = try OpenSSLCall.pointer("PEM_read_bio_PrivateKey", .keyFile, "key file \(path) holds no readable private key") {
            // A callback that supplies no passphrase: with nil, OpenSSL would prompt on
            // the terminal for an encrypted key, and a server must fail instead.
            bio.withPointer { PEM_read_bio_PrivateKey($0, nil, { _, _, _, _ in 0 }, nil) }
        }
        let parsed = RSATransportKey(owning: key)
        guard parsed.isRSA else { throw StorageError(.keyFile, "key file \(path) holds a private key that is not RSA") }
        return parsed
    }

    var isRSA: Bool { withPointer { EVP_PKEY_is_a($0, "RSA") == 1 } }
    /// The modulus size in bits (3072 for keys we generate).
    var bits: Int { withPointer { Int(EVP_PKEY_get_bits($0)) } }
    /// The size of every ciphertext for this key, in bytes (384 for RSA-3072).
    var ciphertextSize: Int { withPointer { Int(EVP_PKEY_get_size($0)) } }

    /// The private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), unencrypted.
    func privateKeyPEM() throws -> [UInt8] {
        let bio = try MemoryBIO()
        try OpenSSLCall.check("PEM_write_bio_PrivateKey", .crypto, "writing the transport private key as PEM") {
            bio.withPointer { b in withPointer { PEM_write_bio_PrivateKey(b, $0, nil, nil, 0, nil, nil) } }
        }
        return bio.bytes
    }

    /// The public key as SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----").
    func publicKeyPEM() throws -> String {
        let bio = try MemoryBIO()
        try OpenSSLCall.check("PEM_write_bio_PUBKEY", .crypto, "writing the transport public key as PEM") {
            bio.withPointer { b in withPointer { PEM_write_bio_PUBKEY(b, $0) } }
        }
        return String(decoding: bio.bytes, as: UTF8.self)
    }

    /// RSA-OAEP decryption with SHA-256 as both the OAEP digest and the MGF1 digest,
    /// which is what WebCrypto's `{name: "RSA-OAEP", hash: "SHA-256"}` produces.
    /// A failure is `.secretAuthentication`: the ciphertext was not made for this key
    /// with these parameters, or was changed.
    func decryptOAEPSHA256(_ ciphertext: [UInt8]) throws -> [UInt8] {
        let context = try PKeyContext(key: self)
        try context.prepareOAEPSHA256Decryption()
        return try context.decrypt(ciphertext)
    }
}

/// An `EVP_PKEY_CTX`: one operation with one key, one thread.
final class PKeyContext {
    private let pointer: OpaquePointer
    /// Keeps the key alive as long as the context refers to it.
    private let key: RSATransportKey

    init(key: RSATransportKey) throws {
        self.key = key
        pointer = try OpenSSLCall.pointer("EVP_PKEY_CTX_new_from_pkey", .crypto, "making an RSA context") {
            key.withPointer { EVP_PKEY_CTX_new_from_pkey(nil, $0, nil) }
        }
    }

    deinit { EVP_PKEY_CTX_free(pointer) }

    func prepareOAEPSHA256Decryption() throws {
        let ctx = pointer
        try OpenSSLCall.check("EVP_PKEY_decrypt_init", .crypto, "starting RSA decryption") { EVP_PKEY_decrypt_init(ctx) }
        try OpenSSLCall.check("EVP_PKEY_CTX_set_rsa_padding", .crypto, "choosing OAEP padding") {
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING)
        }
        try OpenSSLCall.check("EVP_PKEY_CTX_set_rsa_oaep_md", .crypto, "choosing SHA-256 for OAEP") {
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256())
        }
        try OpenSSLCall.check("EVP_PKEY_CTX_set_rsa_mgf1_md", .crypto, "choosing SHA-256 for MGF1") {
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256())
        }
    }

    func decrypt(_ input: [UInt8]) throws -> [UInt8] {
        let ctx = pointer
        var length = 0
        try OpenSSLCall.check("EVP_PKEY_decrypt", .crypto, "sizing the RSA decryption") {
            input.withUnsafeBufferPointer { EVP_PKEY_decrypt(ctx, nil, &length, $0.baseAddress, $0.count) }
        }
        var output = [UInt8](repeating: 0, count: length)
        try OpenSSLCall.check(
            "EVP_PKEY_decrypt", .secretAuthentication,
            "RSA-OAEP decryption failed: the ciphertext was not made with this server's public key and RSA-OAEP/SHA-256 (OAEP and MGF1), or was changed"
        ) {
            input.withUnsafeBufferPointer { inBuffer in
                output.withUnsafeMutableBufferPointer {
                    EVP_PKEY_decrypt(ctx, $0.baseAddress, &length, inBuffer.baseAddress, inBuffer.count)
                }
            }
        }
        output.removeSubrange(length...)
        return output
    }
}

// MARK: - Symmetric ciphers

/// An `EVP_CIPHER_CTX`: one encryption or decryption, one thread.
final class CipherContext {
    private let pointer: OpaquePointer

    init() throws {
        pointer = try OpenSSLCall.pointer("EVP_CIPHER_CTX_new", .crypto, "making a cipher context") { EVP_CIPHER_CTX_new() }
    }

    deinit { EVP_CIPHER_CTX_free(pointer) }

    // MARK: AES-256-GCM

    /// AES-256-GCM encryption. `key` is 32 bytes, `nonce` 12 bytes; returns the
    /// ciphertext (same length as the plaintext) and the 16-byte tag over `aad` and it.
    static func sealAES256GCM(key: [UInt8], nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        precondition(key.count == 32 && nonce.count == 12)
        let context = try CipherContext()
        let ctx = context.pointer
        try OpenSSLCall.check("EVP_EncryptInit_ex", .crypto, "starting AES-256-GCM") {
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil)
        }
        try OpenSSLCall.check("EVP_CIPHER_CTX_ctrl", .crypto, "setting the GCM nonce length") {
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonce.count), nil)
        }
        try OpenSSLCall.check("EVP_EncryptInit_ex", .crypto, "setting the AES-256-GCM key and nonce") {
            EVP_EncryptInit_ex(ctx, nil, nil, key, nonce)
        }
        try context.addAAD(aad, encrypting: true)
        var output = [UInt8](repeating: 0, count: plaintext.count + 16)
        var written: Int32 = 0
        if !plaintext.isEmpty {
            try OpenSSLCall.check("EVP_EncryptUpdate", .crypto, "encrypting with AES-256-GCM") {
                EVP_EncryptUpdate(ctx, &output, &written, plaintext, Int32(plaintext.count))
            }
        }
        var total = Int(written)
        var finalWritten: Int32 = 0
        try OpenSSLCall.check("EVP_EncryptFinal_ex", .crypto, "finishing AES-256-GCM") {
            output.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &finalWritten) }
        }
        total += Int(finalWritten)
        var tag = [UInt8](repeating: 0, count: 16)
        try OpenSSLCall.check("EVP_CIPHER_CTX_ctrl", .crypto, "reading the GCM tag") {
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag)
        }
        return (Array(output[..<total]), tag)
    }

    /// AES-256-GCM decryption; a tag that does not verify is `.secretAuthentication`.
    static func openAES256GCM(key: [UInt8], nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        precondition(key.count == 32 && nonce.count == 12 && tag.count == 16)
        let context = try CipherContext()
        let ctx = context.pointer
        try OpenSSLCall.check("EVP_DecryptInit_ex", .crypto, "starting AES-256-GCM") {
            EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil)
        }
        try OpenSSLCall.check("EVP_CIPHER_CTX_ctrl", .crypto, "setting the GCM nonce length") {
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(nonce.count), nil)
        }
        try OpenSSLCall.check("EVP_DecryptInit_ex", .crypto, "setting the AES-256-GCM key and nonce") {
            EVP_DecryptInit_ex(ctx, nil, nil, key, nonce)
        }
        try context.addAAD(aad, encrypting: false)
        var output = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var written: Int32 = 0
        if !ciphertext.isEmpty {
            try OpenSSLCall.check("EVP_DecryptUpdate", .crypto, "decrypting with AES-256-GCM") {
                EVP_DecryptUpdate(ctx, &output, &written, ciphertext, Int32(ciphertext.count))
            }
        }
        var total = Int(written)
        var expectedTag = tag
        try OpenSSLCall.check("EVP_CIPHER_CTX_ctrl", .crypto, "setting the expected GCM tag") {
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &expectedTag)
        }
        var finalWritten: Int32 = 0
        do {
            try OpenSSLCall.check("EVP_DecryptFinal_ex", .secretAuthentication, "AES-256-GCM tag does not verify: the sealed value was changed or belongs to another key") {
                output.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &finalWritten) }
            }
        } catch {
            cleanse(&output)
            throw error
        }
        total += Int(finalWritten)
        return Array(output[..<total])
    }

    private func addAAD(_ aad: [UInt8], encrypting: Bool) throws {
        guard !aad.isEmpty else { return }
        let ctx = pointer
        var ignored: Int32 = 0
        try OpenSSLCall.check(encrypting ? "EVP_EncryptUpdate" : "EVP_DecryptUpdate", .crypto, "adding GCM associated data") {
            encrypting
                ? EVP_EncryptUpdate(ctx, nil, &ignored, aad, Int32(aad.count))
                : EVP_DecryptUpdate(ctx, nil, &ignored, aad, Int32(aad.count))
        }
    }

    // MARK: Legacy `openssl enc -aes256 -md sha1`

    /// Decrypts what `openssl enc -aes256 -md sha1 -salt` wrote (after base64):
    /// `salt` is the 8 bytes after "Salted__"; key and IV come from
    /// `EVP_BytesToKey(AES-256-CBC, SHA-1, salt, passphrase, count 1)`, as enc does
    /// without `-pbkdf2`. Bad padding is `.secretAuthentication` (wrong passphrase or
    /// changed data).
    static func decryptLegacyAES256CBC(salt: [UInt8], ciphertext: [UInt8], passphrase: [UInt8]) throws -> [UInt8] {
        precondition(salt.count == 8)
        var key = [UInt8](repeating: 0, count: Int(EVP_MAX_KEY_LENGTH))
        var iv = [UInt8](repeating: 0, count: Int(EVP_MAX_IV_LENGTH))
        defer { cleanse(&key); cleanse(&iv) }
        try OpenSSLCall.check("EVP_BytesToKey", .crypto, "deriving the legacy key from the passphrase") {
            passphrase.withUnsafeBufferPointer { pass in
                EVP_BytesToKey(EVP_aes_256_cbc(), EVP_sha1(), salt, pass.baseAddress, Int32(pass.count), 1, &key, &iv)
            }
        }
        let context = try CipherContext()
        let ctx = context.pointer
        try OpenSSLCall.check("EVP_DecryptInit_ex", .crypto, "starting AES-256-CBC") {
            EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nil, key, iv)
        }
        var output = [UInt8](repeating: 0, count: ciphertext.count + 32)
        var written: Int32 = 0
        try OpenSSLCall.check("EVP_DecryptUpdate", .crypto, "decrypting with AES-256-CBC") {
            EVP_DecryptUpdate(ctx, &output, &written, ciphertext, Int32(ciphertext.count))
        }
        var total = Int(written)
        var finalWritten: Int32 = 0
        do {
            try OpenSSLCall.check("EVP_DecryptFinal_ex", .secretAuthentication, "legacy value does not decrypt (bad padding): wrong legacy passphrase, or the value was changed") {
                output.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &finalWritten) }
            }
        } catch {
            cleanse(&output)
            throw error
        }
        total += Int(finalWritten)
        return Array(output[..<total])
    }
}

// MARK: - Digest

/// SHA-256 of `bytes` (32 bytes).
func sha256(_ bytes: [UInt8]) throws -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    var size: UInt32 = 0
    try OpenSSLCall.check("EVP_Digest", .crypto, "computing SHA-256") {
        bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &size, EVP_sha256(), nil) }
    }
    return digest
}
