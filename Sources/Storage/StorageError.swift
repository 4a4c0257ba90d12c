/// The one error type of the Storage module: what failed, with the database's own
/// numbers when MariaDB said something, shaped for the responder to map to HTTP.
///
/// `code` wraps a private enum (as postgres-nio's `PSQLError` does) so new codes
/// can be added without breaking callers that switch over the known ones.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case unavailable          // cannot reach the database (connect, lost connection, timeout)
            case query                // the database refused a statement
            case conflict             // optimistic concurrency: If-Match did not match
            case notFound             // e.g. a history version that does not exist
            case migration            // schema migration failed
            case configuration        // bad database or key configuration
            case keyFile              // a key file missing, unreadable, or readable by group/others
            case secretMalformed      // a sealed/encrypted value that does not parse
            case secretUnknownKey     // a sealed value names a key id we do not have
            case secretAuthentication // decryption failed (tampered, wrong key)
            case crypto               // OpenSSL failed at something that should not fail
            case transportNonce       // a transport nonce that is unknown, expired or already used
        }
        let base: Base
        init(_ base: Base) { self.base = base }

        public static let unavailable = Code(.unavailable)
        public static let query = Code(.query)
        public static let conflict = Code(.conflict)
        public static let notFound = Code(.notFound)
        public static let migration = Code(.migration)
        public static let configuration = Code(.configuration)
        public static let keyFile = Code(.keyFile)
        public static let secretMalformed = Code(.secretMalformed)
        public static let secretUnknownKey = Code(.secretUnknownKey)
        public static let secretAuthentication = Code(.secretAuthentication)
        public static let crypto = Code(.crypto)
        /// A transport ciphertext's nonce is unknown, expired or already used
        /// (``SettingsStore/issueTransportNonce(lifetime:)``); ``StorageError/field`` names the field.
        public static let transportNonce = Code(.transportNonce)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// MariaDB's error number (`mysql_errno`), when the database reported one.
    public var mariadbErrno: UInt32?
    /// MariaDB's SQLSTATE, when the database reported one.
    public var sqlState: String?
    /// A sentence for logs and operators. Never contains secret values.
    public var message: String
    /// For `.conflict`: the version that is current in the database.
    public var currentVersion: Int?
    /// The input field the error concerns, when one does (e.g. `smtp_password` for
    /// `.transportNonce`).
    public var field: String?
    /// The responder setting to change (e.g. `db_ssl_ca`) when the failure comes from the
    /// configuration rather than the moment, as an untrusted database certificate does;
    /// `message` is then the one line for the operator (logged at start, sent with the 503).
    public var setting: String?

    /// Makes an error; see the properties for the meaning of each argument.
    public init(_ code: Code, _ message: String, mariadbErrno: UInt32? = nil, sqlState: String? = nil, currentVersion: Int? = nil,
                field: String? = nil, setting: String? = nil) {
        self.code = code
        self.message = message
        self.mariadbErrno = mariadbErrno
        self.sqlState = sqlState
        self.currentVersion = currentVersion
        self.field = field
        self.setting = setting
    }

    public var description: String {
        var s = "\(code): \(message)"
        if let e = mariadbErrno { s += " (errno \(e)" + (sqlState.map { ", SQLSTATE \($0)" } ?? "") + ")" }
        return s
    }
}
