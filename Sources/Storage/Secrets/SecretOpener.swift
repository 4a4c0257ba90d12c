/// Opens any stored password value, whatever its format:
///
/// | stored value          | result |
/// |-----------------------|--------|
/// | `""`                  | `""` (no password) |
/// | `v1:<key-id>:…`       | ``SecretKeyring/open(_:)`` |
/// | `U2FsdGVkX1…` (legacy)| ``LegacySecret/open(_:passphrase:)`` with the legacy passphrase, or `.configuration` if none is configured |
/// | anything else         | `.secretMalformed` |
///
/// ```swift
/// let opener = SecretOpener(keyring: keyring,
///                           legacyPassphrase: try config.legacyKeyFile.map(LegacySecret.passphrase(fromKeyFile:)))
/// let password = try opener.open(row["smtp_password"])
/// ```
public struct SecretOpener: Sendable {
    /// The format of a stored value.
    public enum Format: Sendable, Equatable {
        /// `""`: no password.
        case empty
        /// `v1:<key-id>:…` (``SealedSecret``).
        case sealed
        /// `openssl enc` output of the original system (``LegacySecret``).
        case legacy
        /// None of these.
        case unknown
    }

    /// The keyring for `v1` values.
    public let keyring: SecretKeyring
    private let legacyPassphrase: String?

    /// - Parameters:
    ///   - keyring: opens `v1` values and seals in ``reseal(_:)``.
    ///   - legacyPassphrase: the original system's passphrase, if legacy values may
    ///     exist; read it with ``LegacySecret/passphrase(fromKeyFile:)``.
    public init(keyring: SecretKeyring, legacyPassphrase: String? = nil) {
        self.keyring = keyring
        self.legacyPassphrase = legacyPassphrase
    }

    /// Which format `stored` is in.
    public static func format(of stored: String) -> Format {
        if stored.isEmpty { return .empty }
        if SealedSecret.isSealed(stored) { return .sealed }
        if LegacySecret.isLegacy(stored) { return .legacy }
        return .unknown
    }

    /// Opens `stored`, in any supported format.
    ///
    /// - Throws: `StorageError` from ``SecretKeyring/open(_:)`` or
    ///   ``LegacySecret/open(_:passphrase:)``; `.configuration` for a legacy value when
    ///   no legacy passphrase is configured; `.secretMalformed` for an unknown format.
    ///
    /// ```swift
    /// let password = try opener.open(stored)
    /// ```
    public func open(_ stored: String) throws -> String {
        switch Self.format(of: stored) {
        case .empty:
            return ""
        case .sealed:
            return try keyring.open(stored)
        case .legacy:
            guard let legacyPassphrase else {
                throw StorageError(.configuration, "the stored password is in the original system's openssl-enc format, but no legacy key file is configured to open it")
            }
            return try LegacySecret.open(stored, passphrase: legacyPassphrase)
        case .unknown:
            throw StorageError(.secretMalformed, "the stored password is neither a v1 sealed secret nor a legacy openssl-enc value")
        }
    }

    /// Opens `stored` in any supported format and returns it sealed with the current
    /// key: legacy values become `v1`, `v1` values under an old key move to the current
    /// one (unchanged if already current), `""` stays `""`.
    ///
    /// - Throws: what ``open(_:)`` throws.
    public func reseal(_ stored: String) throws -> String {
        switch Self.format(of: stored) {
        case .sealed:
            return try keyring.reseal(stored)
        case .empty:
            return ""
        case .legacy, .unknown:
            return try keyring.seal(try open(stored))
        }
    }
}
