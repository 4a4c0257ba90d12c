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

/// What a client encrypts to the transport key (RSA-OAEP, SHA-256): one JSON object
/// with exactly two string members, the nonce from `GET /api/setup/email_public_key`
/// and the secret itself:
///
/// ```json
/// {"nonce":"q3V0aG9yaXR5LWZyZXNo","secret":"the SMTP password"}
/// ```
///
/// JSON, rather than a fixed byte framing, because a browser writes it with
/// `JSON.stringify` and a curl user with `printf '{"nonce":"%s","secret":"%s"}'`
/// (a `"` or `\` in the secret is written `\"` or `\\`). The nonce makes the
/// ciphertext single-use: the save that carries it consumes it
/// (``SettingsStore/issueTransportNonce(lifetime:)``).
///
/// ```swift
/// let opened = try keyring.openTransportSecret(base64: body["smtp_password"])
/// try store.save(values: ["smtp_password": try keyring.seal(opened.secret)], expectedVersion: nil,
///                actor: user, remoteAddress: nil, consumingNonces: ["smtp_password": opened.nonce])
/// ```
public struct TransportPlaintext: Sendable {
    /// Random bytes in a nonce.
    static let nonceBytes = 16
    /// Characters of a nonce: 16 bytes in base64url without padding.
    static let nonceLength = 22

    /// The nonce the client fetched with the public key.
    public let nonce: String
    /// The secret (e.g. the SMTP password): UTF-8, not empty, no NUL, at most
    /// ``SecretKeyring/maximumPasswordBytes`` bytes.
    public let secret: String

    /// Parses a decrypted plaintext.
    /// - Throws: `StorageError` `.secretMalformed` naming what is wrong, never the
    ///   secret: not a JSON object, other members than `nonce` and `secret`, a nonce
    ///   that is not 22 base64url characters, an empty secret, a NUL, too long.
    static func parse(_ plaintext: [UInt8]) throws -> TransportPlaintext {
        let framing = #"framed as {"nonce":"<nonce from the public key endpoint>","secret":"<the secret>"}"#
        guard plaintext.first == UInt8(ascii: "{"),
              let object = try? JSONDecoder().decode([String: Member].self, from: Data(plaintext)) else {
            throw StorageError(.secretMalformed, "the decrypted value is not \(framing)")
        }
        guard Set(object.keys) == ["nonce", "secret"], let nonce = object["nonce"]?.text,
              let secret = object["secret"]?.text else {
            throw StorageError(.secretMalformed, "the decrypted value is not \(framing): it needs exactly these two string members")
        }
        guard isNonce(nonce) else {
            throw StorageError(.secretMalformed, "the nonce in the decrypted value is not one this server hands out (\(nonceLength) base64url characters)")
        }
        guard !secret.isEmpty else {
            throw StorageError(.secretMalformed, "the decrypted secret is empty; to remove it, send \"\" instead of a ciphertext")
        }
        guard secret.utf8.count <= SecretKeyring.maximumPasswordBytes else {
            throw StorageError(.secretMalformed, "the decrypted secret is \(secret.utf8.count) bytes; at most \(SecretKeyring.maximumPasswordBytes) are accepted")
        }
        guard !secret.utf8.contains(0) else {
            throw StorageError(.secretMalformed, "the decrypted secret contains a NUL character")
        }
        return TransportPlaintext(nonce: nonce, secret: secret)
    }

    /// A member of the framing object: its text when it is a JSON string.
    private struct Member: Decodable {
        let text: String?
        init(from decoder: any Decoder) throws {
            text = try? decoder.singleValueContainer().decode(String.self)
        }
    }

    /// 22 characters of the base64url alphabet.
    static func isNonce(_ text: String) -> Bool {
        text.utf8.count == nonceLength && text.utf8.allSatisfy { c in
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
        }
    }

    /// Base64url (RFC 4648 §5) without padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { c -> Character? in
            c == "+" ? "-" : c == "/" ? "_" : c == "=" ? nil : c
        })
    }
}
