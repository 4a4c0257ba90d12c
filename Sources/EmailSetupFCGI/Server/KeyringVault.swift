import Storage

/// The API's `PasswordVault` over Storage's `SecretKeyring`: decrypts the
/// browser's RSA-OAEP ciphertext and seals the password at once, so the clear
/// text lives only for the length of this call.
final class KeyringVault: PasswordVault, @unchecked Sendable {
    let opener: SecretOpener

    init(opener: SecretOpener) {
        self.opener = opener
    }

    var publicKeyPEM: String { opener.keyring.publicKeyPEM }

    func sealTransportCiphertext(_ base64: String) throws -> String {
        let password = try opener.keyring.decryptTransportPassword(base64: base64)
        return try opener.keyring.seal(password)
    }

    func openStored(_ stored: String) throws -> String {
        try opener.open(stored)
    }

    func migratedLegacy(_ stored: String) throws -> String? {
        guard LegacySecret.isLegacy(stored) else { return nil }
        return try opener.reseal(stored)
    }
}
