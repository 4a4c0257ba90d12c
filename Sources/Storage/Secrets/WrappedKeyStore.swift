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
import Logging
import Synchronization

/// The keys of ``SecretKeyring`` kept in the database, shared by every host: AES-256
/// data keys and the RSA transport private key, each wrapped by the key-encryption key
/// (``KeyEncryptionKey``) that every host reads from one file.
///
/// Tables (schema migration 7):
///
/// ```
/// secret_keys         key_id (8 hex, or "transport") · kind ("data" | "transport")
///                     · wrapped (base64 nonce‖ciphertext‖tag) · kek_id · created_at
/// secret_key_current  id = 1 · key_id   the data key new values are sealed with
/// ```
///
/// Nothing is read when the store is made: the KEK and the rows are read when a
/// secret is first sealed or opened, so a request that never touches a secret (a GET
/// of the settings under plain CGI) costs nothing here.
///
/// **First use.** When `secret_key_current` is empty, one transaction initialises it:
/// from the key directory of older versions if it holds `current` (every `data-*.key`
/// and `transport-private.pem` are imported, wrapped, with `INSERT IGNORE`), else with a
/// fresh data key. The row `id = 1` is the unique key two hosts starting at once race
/// on: the second waits for the first's commit and then adopts its keys. A missing KEK
/// file is created (0600) only here, when the database holds no keys yet; with keys in
/// the database a missing KEK file is refused with one line.
///
/// The store has its own connection, opened on first use and used only for keys.
public final class WrappedKeyStore: Sendable {
    /// Where the KEK is read from.
    public let kekLocation: KEKLocation
    /// The key directory of older versions, imported on first use if it holds keys.
    public let importDirectory: String?
    private let logger: Logger
    private let connection: GuardedConnection
    private let kek: Mutex<KeyEncryptionKey?>

    static let transportKeyID = "transport"

    /// - Parameters:
    ///   - configuration: the database (the same as the settings').
    ///   - kek: where the KEK file is.
    ///   - importing: the key directory of an older version (`key_dir`), or nil.
    ///   - logger: an import is logged here (never key material).
    public init(configuration: DatabaseConfiguration, kek: KEKLocation, importing: String?,
                logger: Logger = Logger(label: "emailsetup.storage")) {
        kekLocation = kek
        importDirectory = importing
        self.logger = logger
        connection = GuardedConnection(MariaDBConnection(configuration: configuration, logger: logger))
        self.kek = Mutex(nil)
    }

    /// Reads the KEK file now if it exists, so a file with a bad mode stops start-up
    /// (a missing file is not an error yet: see the type's documentation).
    public func checkKEKFile() throws {
        _ = try loadedKEK(creating: false)
    }

    // MARK: Reading

    /// The current data key id; initialises the tables on first use.
    func currentKeyID() throws -> String {
        if let id = try readCurrent() { return id }
        for attempt in 1...3 {
            do {
                try initialise()
                break
            } catch let error as StorageError where error.isDeadlock && attempt < 3 {
                // Two first starts (on Galera, on two nodes: a certification failure):
                // the other one's keys are there now, or we try once more.
                if try readCurrent() != nil { break }
            }
        }
        guard let id = try readCurrent() else {
            throw StorageError(.keyFile, "secret_key_current is still empty after initialising it")
        }
        return id
    }

    /// The data key `id`, unwrapped; nil when the database does not hold it.
    func dataKey(_ id: String) throws -> [UInt8]? {
        let query = { try self.withConnection { try $0.query("SELECT wrapped, kek_id FROM secret_keys WHERE key_id = ? AND kind = 'data'", [.text(id)]) } }
        var rows = try query()
        // Opening before anything was sealed: an old key directory may still be imported.
        if rows.isEmpty, try readCurrent() == nil {
            _ = try currentKeyID()
            rows = try query()
        }
        guard let row = rows.first else { return nil }
        let kek = try requireKEK()
        var key = try kek.unwrap(try row.text("wrapped"), kind: "data", keyID: id, wrappedBy: try row.text("kek_id"))
        guard key.count == SecretKeyring.dataKeySize else {
            cleanse(&key)
            throw StorageError(.keyFile, "the data key \(id) in the database is \(key.count) bytes, not \(SecretKeyring.dataKeySize)")
        }
        return key
    }

    /// The transport private key PEM, made (RSA-3072) and stored on first use.
    func transportKeyPEM() throws -> [UInt8] {
        _ = try currentKeyID()   // an import brings the transport key along
        if let pem = try readTransport() { return pem }
        let key = try RSATransportKey.generate(bits: SecretKeyring.transportKeyBits)
        var pem = try key.privateKeyPEM()
        defer { cleanse(&pem) }
        let kek = try requireKEK()
        let wrapped = try kek.wrap(pem, kind: "transport", keyID: Self.transportKeyID)
        try withConnection {
            try $0.execute("""
                INSERT IGNORE INTO secret_keys (key_id, kind, wrapped, kek_id, created_at)
                VALUES (?, 'transport', ?, ?, UTC_TIMESTAMP(6))
                """, [.text(Self.transportKeyID), .text(wrapped), .text(kek.id)])
        }
        // Another host may have stored its own first: everyone serves the stored one.
        guard let stored = try readTransport() else {
            throw StorageError(.keyFile, "the transport key was stored and then disappeared from secret_keys")
        }
        return stored
    }

    /// The data key ids in the database, sorted.
    func keyIDs() throws -> [String] {
        try withConnection { try $0.query("SELECT key_id FROM secret_keys WHERE kind = 'data' ORDER BY key_id") }.map { try $0.text("key_id") }
    }

    private func readCurrent() throws -> String? {
        let rows = try withConnection { try $0.query("SELECT key_id FROM secret_key_current WHERE id = 1") }
        return try rows.first?.text("key_id")
    }

    private func readTransport() throws -> [UInt8]? {
        let rows = try withConnection {
            try $0.query("SELECT wrapped, kek_id FROM secret_keys WHERE key_id = ? AND kind = 'transport'", [.text(Self.transportKeyID)])
        }
        guard let row = rows.first else { return nil }
        return try requireKEK().unwrap(try row.text("wrapped"), kind: "transport", keyID: Self.transportKeyID, wrappedBy: try row.text("kek_id"))
    }

    // MARK: First use

    /// Fills empty tables: imports the old key directory, or makes a first data key.
    private func initialise() throws {
        let kek = try loadedKEK(creating: true)!
        let imported = try importDirectory.flatMap { try SecretKeyring.readDirectoryForImport($0) }
        try withConnection { db in
            try db.withTransaction {
                if var imported {
                    defer { imported.cleanse() }
                    for id in imported.dataKeys.keys.sorted() {
                        try Self.insert(db, kind: "data", id: id, wrapped: try kek.wrap(imported.dataKeys[id]!, kind: "data", keyID: id), kek: kek)
                    }
                    if let pem = imported.transportPEM {
                        try Self.insert(db, kind: "transport", id: Self.transportKeyID,
                                        wrapped: try kek.wrap(pem, kind: "transport", keyID: Self.transportKeyID), kek: kek)
                    }
                    let won = try db.execute("INSERT IGNORE INTO secret_key_current (id, key_id) VALUES (1, ?)", [.text(imported.currentID)])
                    if won.affectedRows == 1 {
                        logger.notice("key directory imported into the database; its key files are no longer read", metadata: [
                            "key_dir": "\(importDirectory ?? "")", "data_keys": "\(imported.dataKeys.count)",
                            "transport_key": "\(imported.transportPEM != nil)", "kek_id": "\(kek.id)",
                        ])
                    }
                } else {
                    let id = hexString(try secureRandomBytes(SealedSecret.keyIDLength / 2))
                    let won = try db.execute("INSERT IGNORE INTO secret_key_current (id, key_id) VALUES (1, ?)", [.text(id)])
                    // Lost the race: the winner's key is current; ours is never stored.
                    guard won.affectedRows == 1 else { return }
                    var key = try secureRandomBytes(SecretKeyring.dataKeySize)
                    defer { cleanse(&key) }
                    try Self.insert(db, kind: "data", id: id, wrapped: try kek.wrap(key, kind: "data", keyID: id), kek: kek)
                }
            }
        }
    }

    private static func insert(_ db: MariaDBConnection, kind: String, id: String, wrapped: String, kek: KeyEncryptionKey) throws {
        try db.execute("""
            INSERT IGNORE INTO secret_keys (key_id, kind, wrapped, kek_id, created_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))
            """, [.text(id), .text(kind), .text(wrapped), .text(kek.id)])
    }

    // MARK: Rotation (inside the caller's transaction)

    /// Adds a new data key and makes it current, on `db` inside the caller's
    /// transaction (nothing is visible to other hosts before it commits).
    func rotate(on db: MariaDBConnection) throws -> (id: String, key: [UInt8]) {
        let kek = try requireKEK()
        _ = try db.query("SELECT key_id FROM secret_key_current WHERE id = 1 FOR UPDATE")
        for _ in 0..<8 {
            let id = hexString(try secureRandomBytes(SealedSecret.keyIDLength / 2))
            let key = try secureRandomBytes(SecretKeyring.dataKeySize)
            let inserted = try db.execute("""
                INSERT IGNORE INTO secret_keys (key_id, kind, wrapped, kek_id, created_at) VALUES (?, 'data', ?, ?, UTC_TIMESTAMP(6))
                """, [.text(id), .text(try kek.wrap(key, kind: "data", keyID: id)), .text(kek.id)])
            guard inserted.affectedRows == 1 else { continue }
            try db.execute("""
                INSERT INTO secret_key_current (id, key_id) VALUES (1, ?) ON DUPLICATE KEY UPDATE key_id = VALUES(key_id)
                """, [.text(id)])
            return (id, key)
        }
        throw StorageError(.crypto, "could not find an unused data key id in secret_keys after 8 random tries")
    }

    /// Deletes every data key except `keep`, on `db` inside the caller's transaction.
    /// - Returns: the ids deleted, sorted.
    func retire(on db: MariaDBConnection, keeping keep: Set<String>) throws -> [String] {
        var removed: [String] = []
        for row in try db.query("SELECT key_id FROM secret_keys WHERE kind = 'data' ORDER BY key_id FOR UPDATE") {
            let id = try row.text("key_id")
            guard !keep.contains(id) else { continue }
            try db.execute("DELETE FROM secret_keys WHERE key_id = ? AND kind = 'data'", [.text(id)])
            removed.append(id)
        }
        return removed
    }

    /// Re-wraps every key under `newKEK` in one transaction on the store's connection.
    /// Rows already under `newKEK` are left as they are, so an interrupted run can be
    /// repeated (then even with the old KEK file already replaced).
    /// - Returns: how many rows were re-wrapped.
    func rewrap(with newKEK: KeyEncryptionKey) throws -> Int {
        try withConnection { db in
            try db.withTransaction {
                var count = 0
                for row in try db.query("SELECT key_id, kind, wrapped, kek_id FROM secret_keys ORDER BY key_id FOR UPDATE") {
                    let (id, kind, wrappedBy) = (try row.text("key_id"), try row.text("kind"), try row.text("kek_id"))
                    if wrappedBy == newKEK.id { continue }
                    var secret = try requireKEK().unwrap(try row.text("wrapped"), kind: kind, keyID: id, wrappedBy: wrappedBy)
                    defer { cleanse(&secret) }
                    try db.execute("UPDATE secret_keys SET wrapped = ?, kek_id = ? WHERE key_id = ?",
                                   [.text(try newKEK.wrap(secret, kind: kind, keyID: id)), .text(newKEK.id), .text(id)])
                    count += 1
                }
                return count
            }
        }
    }

    // MARK: KEK and connection

    private func requireKEK() throws -> KeyEncryptionKey {
        guard let kek = try loadedKEK(creating: false) else {
            throw StorageError(.keyFile, "\(kekLocation) does not exist, but the database holds keys wrapped by a key-encryption key: copy the KEK file from a host that works (every host needs the same one)")
        }
        return kek
    }

    private func loadedKEK(creating: Bool) throws -> KeyEncryptionKey? {
        try kek.withLock { loaded in
            if let loaded { return loaded }
            let read = try KeyEncryptionKey.read(kekLocation)
            let found = try read ?? (creating ? KeyEncryptionKey.create(at: kekLocation) : nil)
            loaded = found
            return found
        }
    }

    private func withConnection<T>(_ body: (MariaDBConnection) throws -> T) throws -> T {
        try connection.use(body)
    }
}

/// The store's connection, used by one thread at a time.
// @unchecked: wraps a MariaDB connection (C handle) that is only ever used under `lock`.
private final class GuardedConnection: @unchecked Sendable {
    /// A pthread mutex (not `Mutex`, whose `withLock` wants a `sending` result).
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let connection: MariaDBConnection

    init(_ connection: MariaDBConnection) {
        self.connection = connection
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func use<R>(_ body: (MariaDBConnection) throws -> R) throws -> R {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(connection)
    }
}
