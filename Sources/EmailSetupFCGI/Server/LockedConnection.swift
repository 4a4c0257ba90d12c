import Foundation

/// A thread's database connection (a repository or store) handed to a closure that
/// must be `Sendable` — an access-token source the Smtp module calls during AUTH —
/// with every use under one lock, so no two threads ever share the connection at once.
///
/// ```swift
/// let connection = LockedConnection(repository)
/// settings.accessToken = { try connection.use { try AccessTokenSource(…, store: $0).token() } }
/// ```
// @unchecked: wraps a MariaDB connection (C handle) that is only ever used under `lock`.
final class LockedConnection<Connection>: @unchecked Sendable {
    private let lock = NSLock()
    private let connection: Connection

    init(_ connection: Connection) { self.connection = connection }

    /// Runs `body` with the connection, holding the lock.
    func use<R>(_ body: (Connection) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(connection)
    }
}
