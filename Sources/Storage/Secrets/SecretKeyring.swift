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
import Synchronization

/// The server's keys for password secrets: the RSA key pair the browser encrypts
/// passwords to (transport), and the AES-256 data keys that seal them at rest (see
/// ``SealedSecret``). They live either in the database, wrapped by the key-encryption
/// key every host shares (``init(sharedKeys:)``, what the responder uses; see
/// ``WrappedKeyStore``), or in one key directory (``init(directory:loadingTransportKeyAtStart:)``,
/// the layout of older versions, still read to import it and kept for tools and tests).
///
/// A database keyring reads nothing when made: the KEK and the keys are read by the
/// first seal, open or public-key request, the current key id again by every seal
/// (one primary-key read, so a rotation by any host is followed at once), and a key
/// id it does not know yet from the database when a value names it (no restart).
///
/// ## Key directory layout
///
/// ```
/// <directory>/                 mode 0700, made on first use (only the last component)
///   transport-private.pem      0600  RSA-3072 private key, unencrypted PKCS#8 PEM
///   data-<key-id>.key          0600  one AES-256 data key: 64 lowercase hex characters + "\n"
///   current                    0600  the key id new values are sealed with: "<key-id>\n"
///   .tmp-<random>              transient: every file is written here first
/// ```
///
/// A key id is 8 lowercase hex characters, drawn at random. The public key is not
/// stored: ``publicKeyPEM`` derives it from the private key.
///
/// The transport key is read (or made) when the keyring opens, or, with
/// `loadingTransportKeyAtStart: false`, when first needed: parsing an RSA-3072 key
/// costs a plain CGI process (one request) time that only the public-key endpoint
/// and a save with a password need.
///
/// ## Safety rules
///
/// - Every key file is written to a temporary file opened with
///   `O_CREAT|O_EXCL` and mode 0600, fsynced, then put in place: with `link(2)` for a
///   file that must not already exist (which fails instead of replacing), with
///   `rename(2)` for `current`. A crash leaves the old or the new file, never half of
///   one.
/// - Two processes starting at once on an empty directory both generate keys; exactly
///   one `link` wins each file, and the loser discards its own and re-reads the
///   winner's. Both end with the same key pair and the same current data key.
/// - Loading refuses (`StorageError` `.keyFile`, one line naming the file and its mode)
///   a directory or key file that grants anything to group or others, a symbolic link,
///   or a file that cannot be read. Modes are checked on the opened descriptor.
/// - Rotation never deletes: ``rotate()`` adds a key and repoints `current`; old keys
///   stay readable until ``retireKeys(except:)`` is called after the re-sealed values
///   are committed.
///
/// One keyring may be shared by all threads of a process.
///
/// ```swift
/// let keyring = try SecretKeyring(directory: "/var/lib/emailsetup/keys")
/// let opened = try keyring.openTransportSecret(base64: body.smtpPassword)
/// let stored = try keyring.seal(opened.secret)   // "v1:3f9a0c1e:…"
/// let again = try keyring.open(stored)           // == opened.secret
/// ```
public final class SecretKeyring: Sendable {
    /// The size of the RSA transport key generated on first use.
    public static let transportKeyBits = 3072
    /// The longest password accepted from the browser, in UTF-8 bytes. (RSA-3072 with
    /// OAEP/SHA-256 carries at most 318 bytes anyway; this bounds other key sizes.)
    public static let maximumPasswordBytes = 1024
    /// RSA keys smaller than this are refused when loaded.
    static let minimumTransportKeyBits = 2048

    static let transportKeyFileName = "transport-private.pem"
    static let currentFileName = "current"
    static let dataKeySize = 32

    static func dataKeyFileName(_ keyID: String) -> String { "data-\(keyID).key" }

    /// The key id in a data key file name, or nil if the name is not one.
    static func keyID(fromFileName name: String) -> String? {
        guard name.hasPrefix("data-"), name.hasSuffix(".key") else { return nil }
        let id = String(name.dropFirst(5).dropLast(4))
        return SealedSecret.isValidKeyID(id) ? id : nil
    }

    /// The key directory this keyring reads and writes; for a database keyring, the
    /// directory it imports from ("" if none).
    public let directory: String
    /// Where the keys are.
    private enum Backend: Sendable {
        case directory
        case database(WrappedKeyStore)
    }
    private let backend: Backend
    /// The transport public key as SubjectPublicKeyInfo PEM
    /// (`-----BEGIN PUBLIC KEY-----`), for `GET /api/setup/email_public_key`; WebCrypto
    /// imports it with `importKey("spki", …, {name: "RSA-OAEP", hash: "SHA-256"}, …)`.
    /// Throws what opening the keyring throws for the transport key when it is read
    /// on first use.
    public var publicKeyPEM: String {
        get throws { try transport().publicKeyPEM }
    }

    /// The transport key pair, once read or made.
    private struct Transport {
        let key: RSATransportKey
        let publicKeyPEM: String
    }
    private let loadedTransport: Mutex<Transport?>

    /// The transport key, read (or made) on first use.
    private func transport() throws -> Transport {
        try loadedTransport.withLock { loaded in
            if let loaded { return loaded }
            let transport: Transport
            switch backend {
            case .directory:
                transport = try Self.loadTransport(in: directory)
            case .database(let store):
                var pem = try store.transportKeyPEM()
                defer { cleanse(&pem) }
                let key = try Self.parseTransportKey(pem, path: "secret_keys (transport)")
                transport = Transport(key: key, publicKeyPEM: try key.publicKeyPEM())
            }
            loaded = transport
            return transport
        }
    }

    private static func loadTransport(in directory: String) throws -> Transport {
        let key = try loadOrCreateTransportKey(in: directory)
        return Transport(key: key, publicKeyPEM: try key.publicKeyPEM())
    }
    /// What a rotation or a lookup changes, behind one lock.
    private struct Keys {
        /// Data keys by id.
        var dataKeys: [String: [UInt8]]
        /// The id in `current` as last read.
        var currentID: String
    }
    private let keys: Mutex<Keys>

    /// Opens the key directory, creating the directory and any missing keys.
    ///
    /// - Parameters:
    ///   - directory: the key directory; its parent must exist.
    ///   - loadingTransportKeyAtStart: false to read (or make) the RSA transport key
    ///     only when first used (plain CGI, where most requests never use it); its
    ///     errors are then thrown there.
    /// - Throws: `StorageError` `.keyFile` for a directory or key file with a mode that
    ///   grants group or others anything, a file that cannot be read or parsed, or a
    ///   `current` that names a missing data key.
    ///
    /// ```swift
    /// let keyring = try SecretKeyring(directory: config.keyDirectory)
    /// ```
    public init(directory: String, loadingTransportKeyAtStart: Bool = true) throws {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.directory = trimmed
        backend = .directory
        try KeyFiles.prepareDirectory(trimmed)
        loadedTransport = Mutex(loadingTransportKeyAtStart ? try Self.loadTransport(in: trimmed) : nil)
        let current = try Self.loadOrCreateCurrent(in: trimmed)
        let keys = try Self.loadAllDataKeys(in: trimmed)
        guard keys[current] != nil else {
            throw StorageError(.keyFile, "key file \(trimmed)/\(Self.dataKeyFileName(current)) is missing, but \(trimmed)/\(Self.currentFileName) names key \(current)")
        }
        self.keys = Mutex(Keys(dataKeys: keys, currentID: current))
    }

    /// A keyring over keys in the database, wrapped by the KEK every host shares.
    /// Reads nothing now (see the type's documentation); call ``prepare()`` to read
    /// everything at once where start-up should fail on a bad key.
    ///
    /// ```swift
    /// let keyring = SecretKeyring(sharedKeys: WrappedKeyStore(configuration: db, kek: location, importing: keyDir))
    /// ```
    public init(sharedKeys store: WrappedKeyStore) {
        directory = store.importDirectory ?? ""
        backend = .database(store)
        loadedTransport = Mutex(nil)
        keys = Mutex(Keys(dataKeys: [:], currentID: ""))
    }

    /// Reads the KEK, the current data key (importing the old key directory or making
    /// a first key if the database has none) and the transport key now, so a
    /// responder that cannot use its keys stops at start with one line.
    public func prepare() throws {
        _ = try currentKey()
        _ = try transport()
    }

    /// The database store, or a `.configuration` error for a directory keyring.
    private func sharedStore(_ what: String) throws -> WrappedKeyStore {
        guard case .database(let store) = backend else {
            throw StorageError(.configuration, "\(what) needs a keyring whose keys are in the database")
        }
        return store
    }

    // MARK: Transport

    /// Opens what a client encrypted with ``publicKeyPEM`` for one secret field:
    /// RSA-OAEP with SHA-256 (OAEP and MGF1 digests), standard base64, over the
    /// JSON framing of ``TransportPlaintext`` (the nonce and the secret).
    ///
    /// The nonce is only parsed here; the caller consumes it in the transaction
    /// that saves the secret (``SettingsStore/save(values:expectedVersion:actor:remoteAddress:consumingNonces:)``).
    ///
    /// - Parameter base64: the ciphertext; whitespace and line breaks are ignored.
    /// - Throws: what ``decryptTransportPlaintext(base64:)`` throws, and
    ///   `.secretMalformed` when the plaintext is not the framing.
    ///
    /// ```swift
    /// let opened = try keyring.openTransportSecret(base64: json["smtp_password"])
    /// let stored = try keyring.seal(opened.secret)   // and consume opened.nonce with the save
    /// ```
    public func openTransportSecret(base64: String) throws -> TransportPlaintext {
        let text = try decryptTransportPlaintext(base64: base64)
        var bytes = Array(text.utf8)
        defer { cleanse(&bytes) }
        return try TransportPlaintext.parse(bytes)
    }

    /// Decrypts a value a client encrypted with ``publicKeyPEM`` using RSA-OAEP
    /// with SHA-256 (OAEP and MGF1 digests), sent as standard base64, without
    /// looking inside: ``openTransportSecret(base64:)`` is what the API uses.
    ///
    /// - Parameter base64: the ciphertext; whitespace and line breaks are ignored.
    /// - Returns: the plaintext.
    /// - Throws: `StorageError`:
    ///   - `.secretMalformed` when it is not base64 or is truncated base64, when it
    ///     decodes to the wrong length for this key (384 bytes for RSA-3072), or when
    ///     the plaintext is not UTF-8, contains NUL, or is longer than
    ///     ``maximumPasswordBytes``;
    ///   - `.secretAuthentication` when decryption fails (another key, other OAEP
    ///     parameters, or a changed ciphertext).
    public func decryptTransportPlaintext(base64: String) throws -> String {
        let ciphertext = try StrictBase64.decode(base64, allowingWhitespace: true, what: "the encrypted value")
        let transportKey = try transport().key
        let expected = transportKey.ciphertextSize
        guard ciphertext.count == expected else {
            throw StorageError(.secretMalformed, "the encrypted value is \(ciphertext.count) bytes; RSA-\(transportKey.bits) ciphertexts are exactly \(expected) bytes (truncated, or encrypted for a key of another size)")
        }
        var plaintext = try transportKey.decryptOAEPSHA256(ciphertext)
        defer { cleanse(&plaintext) }
        guard plaintext.count <= Self.maximumPasswordBytes else {
            throw StorageError(.secretMalformed, "the decrypted value is \(plaintext.count) bytes; at most \(Self.maximumPasswordBytes) are accepted")
        }
        guard let text = strictUTF8(plaintext) else {
            throw StorageError(.secretMalformed, "the decrypted value is not valid UTF-8")
        }
        guard !plaintext.contains(0) else {
            throw StorageError(.secretMalformed, "the decrypted value contains a NUL character")
        }
        return text
    }

    // MARK: At rest

    /// Seals a password with the current data key (re-read from `current`, so a
    /// rotation by another process is followed). The empty string stays empty.
    ///
    /// - Returns: `v1:<key-id>:<base64(nonce‖ciphertext‖tag)>`, different on every call.
    /// - Throws: `StorageError` `.keyFile` if the current key cannot be read, `.crypto`
    ///   if OpenSSL fails.
    ///
    /// ```swift
    /// let stored = try keyring.seal("S3cret pass")   // store in information.smtp_password
    /// ```
    public func seal(_ plaintext: String) throws -> String {
        if plaintext.isEmpty { return "" }
        let (id, key) = try currentKey()
        return try SealedSecret.seal(Array(plaintext.utf8), keyID: id, key: key).description
    }

    /// Opens a value made by ``seal(_:)`` with whichever known key it names. The empty
    /// string stays empty.
    ///
    /// - Throws: `StorageError` `.secretMalformed` (wrong prefix, bad base64, too
    ///   short), `.secretUnknownKey` (no data key with that id in the directory),
    ///   `.secretAuthentication` (the tag does not verify: changed, or relabelled).
    ///
    /// ```swift
    /// let password = try keyring.open(row["smtp_password"])
    /// ```
    public func open(_ stored: String) throws -> String {
        if stored.isEmpty { return "" }
        let sealed = try SealedSecret(parsing: stored)
        return try sealed.open(key: try key(for: sealed.keyID))
    }

    // MARK: Rotation

    /// The id of the key new values are sealed with, as `current` says now.
    public func currentKeyID() throws -> String {
        try currentKey().id
    }

    /// Makes a new data key and makes it current. Old keys stay on disk and keep
    /// opening the values sealed with them.
    ///
    /// Safe to repeat after an interruption: a crash before `current` is replaced
    /// leaves an unused key file (removed by a later ``retireKeys(except:)``); a crash
    /// after leaves a new current key with every old key still readable.
    ///
    /// - Returns: the new key id.
    ///
    /// ```swift
    /// let newID = try keyring.rotate()
    /// // in one DB transaction: value = try keyring.reseal(value) for every secret; commit
    /// try keyring.retireKeys(except: [newID])
    /// ```
    public func rotate() throws -> String {
        _ = try sharedDirectory("rotate()")
        return try keys.withLock { keys in
            let (id, key) = try Self.createDataKey(in: directory)
            try KeyFiles.replace(directory: directory, name: Self.currentFileName, contents: Array("\(id)\n".utf8))
            keys.dataKeys[id] = key
            keys.currentID = id
            return id
        }
    }

    /// Makes a new data key current inside the caller's transaction on `db` (a
    /// database keyring): other hosts see it when that transaction commits, and this
    /// keyring seals with it from now on. Use with ``reseal(_:to:)`` and
    /// ``retireKeys(on:keeping:)`` in the same transaction.
    /// - Returns: the new key id.
    public func rotate(on db: MariaDBConnection) throws -> String {
        let store = try sharedStore("rotate(on:)")
        let (id, key) = try store.rotate(on: db)
        keys.withLock { $0.dataKeys[id] = key }
        return id
    }

    /// Deletes, inside the caller's transaction on `db`, every data key in the
    /// database except `keep`. Only once every stored value is sealed with a kept key.
    /// - Returns: the ids deleted, sorted.
    public func retireKeys(on db: MariaDBConnection, keeping keep: Set<String>) throws -> [String] {
        try sharedStore("retireKeys(on:keeping:)").retire(on: db, keeping: keep)
    }

    /// Re-wraps every key in the database under the KEK in `newKEKFile` (one
    /// transaction), for `emailsetup rotate-kek`.
    /// - Returns: the new KEK's id and how many rows were re-wrapped.
    /// - Throws: `.keyFile` when the new file is missing, has a bad mode or contents.
    public func rewrapKeys(withKEKFile newKEKFile: String) throws -> (kekID: String, rewrapped: Int) {
        let store = try sharedStore("rewrapKeys(withKEKFile:)")
        let location = KEKLocation(path: newKEKFile, origin: .configured)
        guard let newKEK = try KeyEncryptionKey.read(location) else {
            throw StorageError(.keyFile, "\(location) does not exist (make one with: (umask 077; openssl rand -hex 32 > \(newKEKFile)))")
        }
        _ = try currentKey()
        return (newKEK.id, try store.rewrap(with: newKEK))
    }

    /// Opens `stored` with whichever key it names and seals it with the key `id`
    /// (one this keyring knows: after ``rotate(on:)``, the new one). A value already
    /// under `id` is checked and returned unchanged; "" stays "".
    public func reseal(_ stored: String, to id: String) throws -> String {
        if stored.isEmpty { return "" }
        let sealed = try SealedSecret(parsing: stored)
        let plaintext = try sealed.open(key: try key(for: sealed.keyID))
        if sealed.keyID == id { return stored }
        return try SealedSecret.seal(Array(plaintext.utf8), keyID: id, key: try key(for: id)).description
    }

    /// Seals `plaintext` with the key `id` (see ``reseal(_:to:)``).
    public func seal(_ plaintext: String, with id: String) throws -> String {
        if plaintext.isEmpty { return "" }
        return try SealedSecret.seal(Array(plaintext.utf8), keyID: id, key: try key(for: id)).description
    }

    /// Opens `stored` with whichever key it names and seals it with the current key.
    /// A value already sealed with the current key is checked and returned unchanged;
    /// the empty string stays empty.
    ///
    /// - Throws: what ``open(_:)`` throws.
    public func reseal(_ stored: String) throws -> String {
        if stored.isEmpty { return "" }
        let sealed = try SealedSecret(parsing: stored)
        let currentID = try currentKeyID()
        let plaintext = try sealed.open(key: try key(for: sealed.keyID))
        if sealed.keyID == currentID { return stored }
        return try seal(plaintext)
    }

    /// Deletes every data key file except the current key and the ids in `keep`.
    ///
    /// Call it only after the transaction that re-sealed every stored value has
    /// committed, passing the key ids that committed values still use (see
    /// ``SealedSecret/keyID``): a value whose key is deleted can never be opened again.
    ///
    /// - Parameter keep: key ids to keep besides the current one.
    /// - Returns: the ids deleted, sorted.
    public func retireKeys(except keep: Set<String>) throws -> [String] {
        _ = try sharedDirectory("retireKeys(except:)")
        return try keys.withLock { keys in
            let current = try Self.readCurrent(in: directory)
            var removed: [String] = []
            for name in try KeyFiles.names(in: directory) {
                guard let id = Self.keyID(fromFileName: name), id != current, !keep.contains(id) else { continue }
                try KeyFiles.remove(directory: directory, name: name)
                if var key = keys.dataKeys.removeValue(forKey: id) { cleanse(&key) }
                removed.append(id)
            }
            keys.currentID = current
            return removed.sorted()
        }
    }

    /// The ids of the data keys in the directory now, sorted.
    public func keyIDs() throws -> [String] {
        if case .database(let store) = backend { return try store.keyIDs() }
        return try KeyFiles.names(in: directory).compactMap(Self.keyID(fromFileName:)).sorted()
    }

    // MARK: Key lookup

    /// The current key, following `current` on disk.
    private func currentKey() throws -> (id: String, key: [UInt8]) {
        let databaseID: String?
        if case .database(let store) = backend { databaseID = try store.currentKeyID() } else { databaseID = nil }
        return try keys.withLock { keys in
            let id = try databaseID ?? Self.readCurrent(in: directory)
            if let key = keys.dataKeys[id] {
                keys.currentID = id
                return (id, key)
            }
            guard let key = try readKey(id) else {
                if databaseID != nil {
                    throw StorageError(.keyFile, "secret_key_current names data key \(id), which is not in secret_keys")
                }
                throw StorageError(.keyFile, "key file \(directory)/\(Self.dataKeyFileName(id)) is missing, but \(directory)/\(Self.currentFileName) names key \(id)")
            }
            keys.dataKeys[id] = key
            keys.currentID = id
            return (id, key)
        }
    }

    /// The key with this id, from memory or (made by another process since) from disk.
    private func key(for id: String) throws -> [UInt8] {
        try keys.withLock { keys in
            if let key = keys.dataKeys[id] { return key }
            guard let key = try readKey(id) else {
                if case .database = backend {
                    throw StorageError(.secretUnknownKey, "sealed secret names data key \(id), which is not in the database's secret_keys (retired, or sealed by another installation)")
                }
                throw StorageError(.secretUnknownKey, "sealed secret names data key \(id), which is not in \(directory) (retired, or sealed by another installation)")
            }
            keys.dataKeys[id] = key
            return key
        }
    }

    /// A data key from the backend (a miss in memory: made by another process since).
    private func readKey(_ id: String) throws -> [UInt8]? {
        switch backend {
        case .directory: return try Self.readDataKey(id, in: directory)
        case .database(let store): return try store.dataKey(id)
        }
    }

    private func sharedDirectory(_ what: String) throws -> String {
        guard case .directory = backend else {
            throw StorageError(.configuration, "\(what) works on a key directory; a database keyring rotates with rotate(on:)")
        }
        return directory
    }

    // MARK: Import

    /// What an old key directory holds, read for ``WrappedKeyStore``'s import.
    struct DirectoryKeys {
        var currentID: String
        var dataKeys: [String: [UInt8]]
        var transportPEM: [UInt8]?

        mutating func cleanse() {
            for id in dataKeys.keys { Storage.cleanse(&dataKeys[id]!) }
            if transportPEM != nil { Storage.cleanse(&transportPEM!) }
        }
    }

    /// Reads a key directory made by an older version without creating or changing
    /// anything; nil when it holds no `current` (nothing to import). Modes are checked
    /// as on every load: a key file readable by others is refused, naming it.
    static func readDirectoryForImport(_ directory: String) throws -> DirectoryKeys? {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let current = try readCurrentIfPresent(in: trimmed) else { return nil }
        let keys = try loadAllDataKeys(in: trimmed)
        guard keys[current] != nil else {
            throw StorageError(.keyFile, "key file \(trimmed)/\(dataKeyFileName(current)) is missing, but \(trimmed)/\(currentFileName) names key \(current)")
        }
        let path = trimmed + "/" + transportKeyFileName
        let pem = try KeyFiles.readFile(path)
        if let pem { _ = try parseTransportKey(pem, path: path) }
        return DirectoryKeys(currentID: current, dataKeys: keys, transportPEM: pem)
    }

    // MARK: Loading and creating

    private static func loadOrCreateTransportKey(in directory: String) throws -> RSATransportKey {
        let path = directory + "/" + transportKeyFileName
        if let pem = try KeyFiles.readFile(path) {
            return try parseTransportKey(pem, path: path)
        }
        let key = try RSATransportKey.generate(bits: transportKeyBits)
        var pem = try key.privateKeyPEM()
        defer { cleanse(&pem) }
        if try KeyFiles.createExclusively(directory: directory, name: transportKeyFileName, contents: pem) {
            return key
        }
        // Another process created it first: use theirs, so both serve the same key.
        guard let winner = try KeyFiles.readFile(path) else {
            throw StorageError(.keyFile, "key file \(path) was created by another process and then disappeared")
        }
        return try parseTransportKey(winner, path: path)
    }

    private static func parseTransportKey(_ pem: [UInt8], path: String) throws -> RSATransportKey {
        let key = try RSATransportKey.parse(privateKeyPEM: pem, path: path)
        guard key.bits >= minimumTransportKeyBits else {
            throw StorageError(.keyFile, "key file \(path) holds an RSA-\(key.bits) key; at least \(minimumTransportKeyBits) bits are required")
        }
        return key
    }

    /// Reads `current`, or on first start makes the first data key and `current`.
    private static func loadOrCreateCurrent(in directory: String) throws -> String {
        if let id = try readCurrentIfPresent(in: directory) { return id }
        let (id, _) = try createDataKey(in: directory)
        if try KeyFiles.createExclusively(directory: directory, name: currentFileName, contents: Array("\(id)\n".utf8)) {
            return id
        }
        // Another process made `current` first. Our key was never used: drop it.
        try KeyFiles.remove(directory: directory, name: dataKeyFileName(id))
        return try readCurrent(in: directory)
    }

    private static func readCurrent(in directory: String) throws -> String {
        guard let id = try readCurrentIfPresent(in: directory) else {
            throw StorageError(.keyFile, "key file \(directory)/\(currentFileName) is missing")
        }
        return id
    }

    private static func readCurrentIfPresent(in directory: String) throws -> String? {
        let path = directory + "/" + currentFileName
        guard let bytes = try KeyFiles.readFile(path) else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        guard SealedSecret.isValidKeyID(text) else {
            throw StorageError(.keyFile, "key file \(path) does not hold a key id (\(SealedSecret.keyIDLength) lowercase hex characters and a newline)")
        }
        return text
    }

    /// Makes `data-<new id>.key` with 32 random bytes; a new id if one is taken.
    private static func createDataKey(in directory: String) throws -> (id: String, key: [UInt8]) {
        for _ in 0..<8 {
            let id = hexString(try secureRandomBytes(SealedSecret.keyIDLength / 2))
            let key = try secureRandomBytes(dataKeySize)
            var contents = Array((hexString(key) + "\n").utf8)
            defer { cleanse(&contents) }
            if try KeyFiles.createExclusively(directory: directory, name: dataKeyFileName(id), contents: contents) {
                return (id, key)
            }
        }
        throw StorageError(.crypto, "could not find an unused data key id in \(directory) after 8 random tries")
    }

    private static func readDataKey(_ id: String, in directory: String) throws -> [UInt8]? {
        let path = directory + "/" + dataKeyFileName(id)
        guard var bytes = try KeyFiles.readFile(path) else { return nil }
        defer { cleanse(&bytes) }
        var text = Substring(String(decoding: bytes, as: UTF8.self))
        if text.hasSuffix("\n") { text.removeLast() }
        guard text.count == dataKeySize * 2, let key = bytesFromHex(text) else {
            throw StorageError(.keyFile, "key file \(path) does not hold a data key (\(dataKeySize * 2) hex characters and a newline)")
        }
        return key
    }

    private static func loadAllDataKeys(in directory: String) throws -> [String: [UInt8]] {
        var keys: [String: [UInt8]] = [:]
        for name in try KeyFiles.names(in: directory) {
            guard let id = keyID(fromFileName: name) else { continue }
            // A file listed a moment ago may have been retired by another process since.
            if let key = try readDataKey(id, in: directory) { keys[id] = key }
        }
        return keys
    }
}
