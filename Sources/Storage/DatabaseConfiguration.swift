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

/// Where and how to reach MariaDB: built by the responder from its configuration file
/// (and by the tests from the environment), handed to every ``MariaDBConnection``.
///
/// The timeouts bound how long a request can hang while the database is away:
/// connecting gives up after `connectTimeout`, and a connection that stops answering
/// fails after `readTimeout`/`writeTimeout`. Lock waits inside the server are bounded
/// by `lockWaitTimeout`, which must stay below `readTimeout` so that a busy database
/// answers "busy" instead of looking like a lost connection.
///
/// ```swift
/// let configuration = DatabaseConfiguration(
///     endpoint: .unixSocket(path: "/run/mysqld/mysqld.sock"),
///     user: "emailsetup", password: try String(contentsOfFile: passwordFile),
///     database: "emailsetup")
/// let store = SettingsStore(configuration: configuration)
/// ```
public struct DatabaseConfiguration: Sendable, Equatable {
    /// How to reach the server.
    public enum Endpoint: Sendable, Equatable {
        /// A unix domain socket path (the usual local installation).
        case unixSocket(path: String)
        /// A TCP host name or address and port (3306 by default on servers).
        case tcp(host: String, port: Int)
    }

    /// How to reach the server.
    public var endpoint: Endpoint
    /// The MariaDB account name.
    public var user: String
    /// The account's password (read from the password file by the caller). Never logged.
    public var password: String
    /// The database (schema) holding `information` and the project's tables.
    public var database: String
    /// Seconds to wait for a connection; MariaDB takes whole seconds (minimum 1).
    public var connectTimeout: TimeInterval
    /// Seconds to wait for any answer from the server on an open connection.
    public var readTimeout: TimeInterval
    /// Seconds to wait for the server to accept what we send.
    public var writeTimeout: TimeInterval
    /// Seconds a statement may wait for a row lock (`innodb_lock_wait_timeout`); whole
    /// seconds, minimum 1, kept below `readTimeout`.
    public var lockWaitTimeout: Int
    /// TLS to the server (``TLS``); nil: an unencrypted connection, fine over a unix
    /// socket or loopback, not between hosts.
    public var tls: TLS?

    /// Makes a configuration; the timeouts default to values that let a request fail
    /// within about two seconds when the database is unreachable.
    /// - Parameters:
    ///   - endpoint: unix socket path or TCP host and port.
    ///   - user: MariaDB account.
    ///   - password: the account's password.
    ///   - database: schema name.
    ///   - connectTimeout: seconds to connect (default 1).
    ///   - readTimeout: seconds to wait for an answer (default 2).
    ///   - writeTimeout: seconds to wait for a write (default 2).
    ///   - lockWaitTimeout: seconds a statement waits for a row lock (default 1).
    ///   - tls: TLS to the server, or nil (default) for none.
    public init(endpoint: Endpoint, user: String, password: String, database: String,
                connectTimeout: TimeInterval = 1, readTimeout: TimeInterval = 2,
                writeTimeout: TimeInterval = 2, lockWaitTimeout: Int = 1, tls: TLS? = nil) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        self.lockWaitTimeout = lockWaitTimeout
        self.tls = tls
    }
}

extension DatabaseConfiguration: CustomStringConvertible {
    /// Describes the endpoint, user, database and TLS — never the password.
    public var description: String {
        let security = tls.map { $0.verifyServer ? " (TLS)" : $0.caFile != nil ? " (TLS, host name not checked)" : " (TLS, server not verified)" } ?? ""
        return "\(user)@\(placeDescription)/\(database)\(security)"
    }
}
