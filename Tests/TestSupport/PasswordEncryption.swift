import Foundation

/// Encrypts an SMTP password the way the browser does before POSTing it to
/// email_smtp: RSA-OAEP with SHA-256 (and MGF1-SHA-256) under the responder's public
/// key, base64 — here with `/usr/bin/openssl pkeyutl`, so the tests exercise the
/// same wire format without WebCrypto.
///
/// ```swift
/// let key = try XCTUnwrap(env.admin.request("GET", "/api/setup/email_public_key").data?["public_key"] as? String)
/// let ciphertext = try PasswordEncryption.encrypt("s3cret", publicKeyPEM: key)
/// // or in one step: try env.admin.encryptedPassword("s3cret")
/// ```
public enum PasswordEncryption {
    /// Base64 RSA-OAEP-SHA256 ciphertext of `password` for `publicKeyPEM`.
    public static func encrypt(_ password: String, publicKeyPEM: String) throws -> String {
        let base = NSTemporaryDirectory() + "emailsetup-pw-\(getpid())-\(UUID().uuidString)"
        try publicKeyPEM.write(toFile: base + ".pem", atomically: true, encoding: .utf8)
        defer { unlink(base + ".pem"); unlink(base + ".bin") }
        // -out rather than a pipe to base64: the exit status is openssl's, and its
        // stderr cannot end up inside the ciphertext.
        try ScriptRunner.run("/usr/bin/openssl", ["pkeyutl", "-encrypt", "-pubin", "-inkey", base + ".pem",
                                                  "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                                                  "-pkeyopt", "rsa_mgf1_md:sha256", "-out", base + ".bin"],
                             input: Array(password.utf8), timeout: 20)
        let ciphertext = try Data(contentsOf: URL(fileURLWithPath: base + ".bin")).base64EncodedString()
        guard !ciphertext.isEmpty else { throw ScriptRunner.Failed(description: "openssl pkeyutl wrote no ciphertext") }
        return ciphertext
    }
}

extension HTTPTestClient {
    /// `password` encrypted with the key from GET /api/setup/email_public_key, ready
    /// for the `smtp_password` field of POST /api/setup/email_smtp.
    public func encryptedPassword(_ password: String) throws -> String {
        let r = try request("GET", "/api/setup/email_public_key")
        guard r.status == 200, let key = r.data?["public_key"] as? String else {
            throw Failure(description: "GET /api/setup/email_public_key answered \(r.status): \(r.text.prefix(300))")
        }
        return try PasswordEncryption.encrypt(password, publicKeyPEM: key)
    }
}
