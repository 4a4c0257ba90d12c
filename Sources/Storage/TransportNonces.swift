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

/// A nonce handed out with the transport public key: the client puts it in the
/// RSA-OAEP plaintext (see ``TransportPlaintext``), and a save consumes it, so a
/// ciphertext is accepted once and only while the nonce is fresh.
public struct TransportNonce: Sendable, Equatable {
    /// 128 random bits, base64url without padding (22 characters).
    public var value: String
    /// Seconds until it expires, as issued.
    public var expiresIn: Int

    /// Makes a value; see the properties.
    public init(value: String, expiresIn: Int) {
        self.value = value
        self.expiresIn = expiresIn
    }
}

/// Single-use nonces for transport ciphertexts, in the `transport_nonces` table so
/// that every responder of the database shares them: a nonce issued by one responder
/// is consumed by whichever responder receives the save.
extension SettingsStore {
    /// How long a nonce stays valid unless the caller says otherwise: ten minutes,
    /// long enough to fill in the form after the page fetched the key.
    public static let defaultTransportNonceLifetime: TimeInterval = 600

    /// Makes a fresh nonce valid for `lifetime` seconds (database clock) and deletes
    /// the expired ones, in one transaction.
    ///
    /// - Parameter lifetime: seconds until it expires (at least 1).
    ///
    /// ```swift
    /// let nonce = try store.issueTransportNonce()
    /// // answer {"public_key": …, "nonce": nonce.value, "nonce_expires_in": nonce.expiresIn}
    /// ```
    public func issueTransportNonce(lifetime: TimeInterval = SettingsStore.defaultTransportNonceLifetime) throws -> TransportNonce {
        let seconds = max(1, Int(lifetime.rounded(.up)))
        let value = TransportPlaintext.base64URL(try secureRandomBytes(TransportPlaintext.nonceBytes))
        try withTransaction { db in
            try db.execute("DELETE FROM transport_nonces WHERE expires_at <= UTC_TIMESTAMP(6)")
            try db.execute("INSERT INTO transport_nonces (nonce, expires_at) VALUES (?, UTC_TIMESTAMP(6) + INTERVAL ? SECOND)",
                           [.text(value), .int(Int64(seconds))])
        }
        return TransportNonce(value: value, expiresIn: seconds)
    }

    /// Deletes each nonce if it exists and has not expired; throws on the first that
    /// does not. Called inside the save's transaction, so a save that fails (or rolls
    /// back) leaves its nonces usable, and two saves with one nonce cannot both win:
    /// the second `DELETE` waits for the first's row lock and then finds nothing.
    ///
    /// - Parameter nonces: field → the nonce its ciphertext carried.
    /// - Throws: `.transportNonce` with ``StorageError/field`` set.
    func consumeTransportNonces(_ nonces: [String: String]) throws {
        for field in nonces.keys.sorted() {
            let deleted = try connection.execute("DELETE FROM transport_nonces WHERE nonce = ? AND expires_at > UTC_TIMESTAMP(6)",
                                                 [.text(nonces[field]!)])
            guard deleted.affectedRows == 1 else {
                throw StorageError(.transportNonce, "the nonce in the encrypted \(field) is unknown, expired or already used",
                                   field: field)
            }
        }
    }
}
