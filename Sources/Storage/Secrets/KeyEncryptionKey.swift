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

/// Where the key-encryption key (KEK) is read from: the one file every host shares.
///
/// The file holds 64 hex characters (32 random bytes) and a newline, as
/// `openssl rand -hex 32` writes; mode 0600 (or 0400), checked on the opened file
/// exactly as every key file (``KeyFiles/readFile(_:)``).
public struct KEKLocation: Sendable, Equatable, CustomStringConvertible {
    /// How the path was chosen; decides whether a missing file may be created.
    public enum Origin: Sendable, Equatable {
        /// `kek_file` in the configuration.
        case configured
        /// A systemd credential (`$CREDENTIALS_DIRECTORY/<name>`, `LoadCredential=`):
        /// read-only, never created.
        case systemdCredential
        /// The default, `<key_dir>/kek`: the key directory is made (0700) if missing.
        case keyDirectory
    }

    /// The file's path.
    public var path: String
    /// How it was chosen.
    public var origin: Origin

    /// - Parameters:
    ///   - path: the KEK file.
    ///   - origin: how it was chosen (``Origin``).
    public init(path: String, origin: Origin) {
        self.path = path
        self.origin = origin
    }

    /// The name of the systemd credential read when `kek_file` is not set.
    public static let credentialName = "emailsetup-kek"

    /// The KEK file for a configuration: `kek_file` if set; else the systemd credential
    /// ``credentialName`` when `$CREDENTIALS_DIRECTORY` holds it; else `<key_dir>/kek`.
    ///
    /// ```swift
    /// let location = KEKLocation.resolve(kekFile: nil, keyDirectory: "/var/lib/emailsetup/keys", environment: env)
    /// ```
    public static func resolve(kekFile: String?, keyDirectory: String, environment: [String: String]) -> KEKLocation {
        if let kekFile { return KEKLocation(path: kekFile, origin: .configured) }
        if let credentials = environment["CREDENTIALS_DIRECTORY"], !credentials.isEmpty {
            let path = credentials + "/" + credentialName
            if access(path, F_OK) == 0 { return KEKLocation(path: path, origin: .systemdCredential) }
        }
        var directory = keyDirectory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return KEKLocation(path: directory + "/kek", origin: .keyDirectory)
    }

    public var description: String {
        origin == .systemdCredential ? "systemd credential \(Self.credentialName) (\(path))" : "KEK file \(path)"
    }

    /// Puts the KEK in `newFile` in place of this file, atomically (a temporary file
    /// beside it, fsynced, renamed over it), for `emailsetup rotate-kek`.
    /// - Throws: `.keyFile` when `newFile` is not a valid KEK file (mode, contents) or
    ///   this file cannot be replaced.
    public func replace(withContentsOf newFile: String) throws {
        guard KeyEncryptionKey.isValid(try KeyFiles.readFile(newFile)) else {
            throw StorageError(.keyFile, "KEK file \(newFile) is missing or does not hold 64 hex characters")
        }
        var contents = try KeyFiles.readFile(newFile)!
        defer { cleanse(&contents) }
        let (directory, name) = split
        try KeyFiles.replace(directory: directory, name: name, contents: contents)
    }

    /// The directory and file name of ``path``.
    var split: (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}

/// The key-encryption key: 32 bytes that wrap (AES-256-GCM) every data key and the RSA
/// transport private key stored in the database (``WrappedKeyStore``).
///
/// A wrapped key is `base64(nonce ‖ ciphertext ‖ tag)` with a fresh 12-byte nonce and
/// the associated data `emailsetup-kek-v1:<kind>:<key-id>`, so a row cannot be moved
/// to another id or kind without its tag failing. ``id`` (16 hex characters of
/// SHA-256 over a label and the key) is stored beside every wrapped key: a host with
/// another KEK is told so in one line instead of "tag does not verify".
struct KeyEncryptionKey: Sendable {
    static let size = 32
    static let nonceSize = 12
    static let tagSize = 16

    let bytes: [UInt8]
    /// Names the KEK without revealing it.
    let id: String
    /// Where it was read from, for error messages.
    let location: KEKLocation

    init(bytes: [UInt8], location: KEKLocation) throws {
        precondition(bytes.count == Self.size)
        self.bytes = bytes
        self.location = location
        id = hexString(Array(try sha256(Array("emailsetup key-encryption key id\0".utf8) + bytes).prefix(8)))
    }

    /// Reads the KEK at `location`; nil when the file does not exist.
    /// - Throws: `StorageError` `.keyFile`: a mode that grants group or others anything,
    ///   a symbolic link, or contents that are not 64 hex characters.
    static func read(_ location: KEKLocation) throws -> KeyEncryptionKey? {
        guard var contents = try KeyFiles.readFile(location.path) else { return nil }
        defer { cleanse(&contents) }
        var text = Substring(String(decoding: contents, as: UTF8.self))
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard text.count == size * 2, var key = bytesFromHex(text) else {
            throw StorageError(.keyFile, "\(location) does not hold a key-encryption key (\(size * 2) hex characters and a newline, as `openssl rand -hex 32` writes)")
        }
        defer { cleanse(&key) }
        return try KeyEncryptionKey(bytes: key, location: location)
    }

    /// Makes a new KEK file at `location` (0600, never replacing one), or reads the one
    /// another process made first. A systemd credential is never created.
    static func create(at location: KEKLocation) throws -> KeyEncryptionKey {
        guard location.origin != .systemdCredential else {
            throw StorageError(.keyFile, "\(location) is missing")
        }
        let (directory, name) = location.split
        if location.origin == .keyDirectory { try KeyFiles.prepareDirectory(directory) }
        var key = try secureRandomBytes(size)
        defer { cleanse(&key) }
        var contents = Array((hexString(key) + "\n").utf8)
        defer { cleanse(&contents) }
        if try KeyFiles.createExclusively(directory: directory, name: name, contents: contents) {
            return try KeyEncryptionKey(bytes: key, location: location)
        }
        guard let winner = try read(location) else {
            throw StorageError(.keyFile, "\(location) was created by another process and then disappeared")
        }
        return winner
    }

    /// Whether file contents hold a KEK (64 hex characters and optional newlines).
    static func isValid(_ contents: [UInt8]?) -> Bool {
        guard let contents else { return false }
        var text = Substring(String(decoding: contents, as: UTF8.self))
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text.count == size * 2 && bytesFromHex(text) != nil
    }

    static func associatedData(kind: String, keyID: String) -> [UInt8] {
        Array("emailsetup-kek-v1:\(kind):\(keyID)".utf8)
    }

    /// Wraps `secret` (a data key, or the transport key's PEM) for the row `kind`/`keyID`.
    func wrap(_ secret: [UInt8], kind: String, keyID: String) throws -> String {
        let nonce = try secureRandomBytes(Self.nonceSize)
        let (ciphertext, tag) = try CipherContext.sealAES256GCM(key: bytes, nonce: nonce, plaintext: secret,
                                                                aad: Self.associatedData(kind: kind, keyID: keyID))
        return StrictBase64.encode(nonce + ciphertext + tag)
    }

    /// Unwraps a row made by ``wrap(_:kind:keyID:)``.
    /// - Parameter wrappedBy: the KEK id stored beside the row.
    /// - Throws: `StorageError` `.keyFile` when the row was wrapped by another KEK (one
    ///   line naming both ids and this file); `.secretAuthentication` when the tag does
    ///   not verify (the row was changed); `.secretMalformed` for bad base64.
    func unwrap(_ wrapped: String, kind: String, keyID: String, wrappedBy: String) throws -> [UInt8] {
        guard wrappedBy == id else {
            throw StorageError(.keyFile, "the \(kind) key \(keyID) in the database is wrapped by key-encryption key \(wrappedBy), but \(location) is key-encryption key \(id): every host needs the same KEK file (copy it from a host that works)")
        }
        let payload = try StrictBase64.decode(wrapped, allowingWhitespace: false, what: "wrapped \(kind) key \(keyID)")
        guard payload.count >= Self.nonceSize + Self.tagSize else {
            throw StorageError(.secretMalformed, "wrapped \(kind) key \(keyID) is \(payload.count) bytes, shorter than nonce and tag")
        }
        do {
            return try CipherContext.openAES256GCM(
                key: bytes, nonce: Array(payload[..<Self.nonceSize]),
                ciphertext: Array(payload[Self.nonceSize..<(payload.count - Self.tagSize)]),
                tag: Array(payload[(payload.count - Self.tagSize)...]), aad: Self.associatedData(kind: kind, keyID: keyID))
        } catch let error as StorageError where error.code == .secretAuthentication {
            throw StorageError(.secretAuthentication, "the wrapped \(kind) key \(keyID) in the database does not authenticate under key-encryption key \(id) (\(location)): the row was changed")
        }
    }
}
