import Foundation

/// Encrypts an SMTP password the way the browser does before POSTing it to
/// email_smtp: the JSON framing `{"nonce":"…","secret":"…"}` (the nonce from GET
/// /api/setup/email_public_key), RSA-OAEP with SHA-256 (and MGF1-SHA-256) under
/// the responder's public key, base64 — here with `/usr/bin/openssl pkeyutl`, so
/// the tests exercise the same wire format without WebCrypto.
///
/// ```swift
/// let key = try env.admin.transportKey()              // a fresh nonce every call
/// let ciphertext = try PasswordEncryption.encrypt("s3cret", nonce: key.nonce, publicKeyPEM: key.publicKeyPEM)
/// // or in one step: try env.admin.encryptedPassword("s3cret")
/// ```
public enum PasswordEncryption {
    /// The plaintext the responder expects for a secret.
    public static func framed(_ secret: String, nonce: String) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: ["nonce": nonce, "secret": secret], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Base64 RSA-OAEP-SHA256 ciphertext of `password` framed with `nonce`, for `publicKeyPEM`.
    public static func encrypt(_ password: String, nonce: String, publicKeyPEM: String) throws -> String {
        try encryptRaw(Array(try framed(password, nonce: nonce).utf8), publicKeyPEM: publicKeyPEM)
    }

    /// Base64 RSA-OAEP-SHA256 ciphertext of exactly `plaintext` (no framing), for
    /// tests of what the responder refuses.
    public static func encryptRaw(_ plaintext: [UInt8], publicKeyPEM: String) throws -> String {
        let base = NSTemporaryDirectory() + "emailsetup-pw-\(getpid())-\(UUID().uuidString)"
        try publicKeyPEM.write(toFile: base + ".pem", atomically: true, encoding: .utf8)
        defer { unlink(base + ".pem"); unlink(base + ".bin") }
        // -out rather than a pipe to base64: the exit status is openssl's, and its
        // stderr cannot end up inside the ciphertext.
        try ScriptRunner.run("/usr/bin/openssl", ["pkeyutl", "-encrypt", "-pubin", "-inkey", base + ".pem",
                                                  "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                                                  "-pkeyopt", "rsa_mgf1_md:sha256", "-out", base + ".bin"],
                             input: plaintext, timeout: 20)
        let ciphertext = try Data(contentsOf: URL(fileURLWithPath: base + ".bin")).base64EncodedString()
        guard !ciphertext.isEmpty else { throw ScriptRunner.Failed(description: "openssl pkeyutl wrote no ciphertext") }
        return ciphertext
    }
}

extension HTTPTestClient {
    /// GET /api/setup/email_public_key: the key and a fresh single-use nonce.
    public func transportKey() throws -> (publicKeyPEM: String, nonce: String) {
        let r = try request("GET", "/api/setup/email_public_key")
        guard r.status == 200, let key = r.data?["public_key"] as? String, let nonce = r.data?["nonce"] as? String else {
            throw Failure(description: "GET /api/setup/email_public_key answered \(r.status): \(r.text.prefix(300))")
        }
        return (key, nonce)
    }

    /// `password` encrypted with the key and a fresh nonce from GET
    /// /api/setup/email_public_key, ready for the `smtp_password` field of POST
    /// /api/setup/email_smtp (accepted once).
    public func encryptedPassword(_ password: String) throws -> String {
        let key = try transportKey()
        return try PasswordEncryption.encrypt(password, nonce: key.nonce, publicKeyPEM: key.publicKeyPEM)
    }
}
