import Storage

/// The API's `PasswordVault` over Storage's `SecretKeyring`: decrypts the
/// browser's RSA-OAEP ciphertext and seals the secret at once, so the clear
/// text lives only for the length of this call.
final class KeyringVault: PasswordVault, Sendable {
    let opener: SecretOpener

    init(opener: SecretOpener) {
        self.opener = opener
    }

    var publicKeyPEM: String {
        get throws { try opener.keyring.publicKeyPEM }
    }

    func openTransportCiphertext(_ base64: String, field: String) throws -> TransportSecret {
        let opened = try opener.keyring.openTransportSecret(base64: base64)
        return TransportSecret(field: field, nonce: opened.nonce, sealed: try opener.keyring.seal(opened.secret))
    }

    func seal(_ secret: String) throws -> String {
        try opener.keyring.seal(secret)
    }

    func openStored(_ stored: String) throws -> String {
        try opener.open(stored)
    }

    func migratedLegacy(_ stored: String) throws -> String? {
        guard LegacySecret.isLegacy(stored) else { return nil }
        return try opener.reseal(stored)
    }
}
