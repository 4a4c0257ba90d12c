import COpenSSL
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

/// Proof Key for Code Exchange (RFC 7636) with the S256 method: the verifier stays
/// here, the challenge goes into the authorization URL, and the verifier goes with the
/// code to the token endpoint, so a stolen code is useless to anyone else.
///
/// ```swift
/// let pkce = try PKCE.generate()
/// let url = try client.authorizationURL(state: state, codeChallenge: pkce.challenge, redirectURI: redirect)
/// // … later, at the callback:
/// let tokens = try client.exchangeCode(code, verifier: pkce.verifier, redirectURI: redirect)
/// ```
public struct PKCE: Sendable, Equatable {
    /// The code verifier: 43 characters of base64url (32 random bytes, RFC 7636 §4.1).
    public let verifier: String
    /// BASE64URL(SHA256(verifier)), 43 characters.
    public let challenge: String
    /// Always "S256": "plain" gives no protection when the URL leaks.
    public var method: String { "S256" }

    /// The pair for a given verifier (43–128 characters of [A-Za-z0-9-._~]).
    /// - Throws: `OAuthError` `invalidInput` for a verifier RFC 7636 §4.1 does not allow.
    public init(verifier: String) throws {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".unicodeScalars)
        guard (43...128).contains(verifier.utf8.count), verifier.unicodeScalars.allSatisfy(allowed.contains) else {
            throw OAuthError(kind: .invalidInput, hint: "a PKCE code verifier is 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
        }
        self.verifier = verifier
        self.challenge = Base64URL.encode(Self.sha256(Array(verifier.utf8)))
    }

    /// A fresh pair from 32 random bytes of OpenSSL's CSPRNG.
    public static func generate() throws -> PKCE {
        try PKCE(verifier: Base64URL.encode(try randomBytes(32)))
    }

    private static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { input in
            digest.withUnsafeMutableBufferPointer { output in
                _ = SHA256(input.baseAddress, input.count, output.baseAddress)
            }
        }
        return digest
    }
}

/// The `state` parameter of the authorization request (RFC 6749 §10.12): unguessable,
/// single use; the caller stores it bound to the signed-in administrator.
public enum OAuthState {
    /// 32 random bytes as 43 characters of base64url.
    public static func random() throws -> String {
        Base64URL.encode(try randomBytes(32))
    }
}

/// `count` bytes from OpenSSL's CSPRNG; throws rather than hand out weak randomness.
func randomBytes(_ count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
    guard status == 1 else {
        throw OAuthError(kind: .protocol, hint: "the system's random number generator failed (OpenSSL RAND_bytes); check the host's entropy source")
    }
    return bytes
}

/// Base64url without padding (RFC 4648 §5), as PKCE and JWTs use it.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { c -> Character? in
            c == "+" ? "-" : c == "/" ? "_" : c == "=" ? nil : c
        })
    }

    static func decode(_ text: Substring) -> Data? {
        var base64 = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        if base64.count % 4 != 0 { base64 += String(repeating: "=", count: 4 - base64.count % 4) }
        return Data(base64Encoded: base64)
    }
}
