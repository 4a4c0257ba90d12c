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
    /// A pthread mutex (not `Mutex`, whose `withLock` wants a `sending` result).
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let connection: Connection

    init(_ connection: Connection) {
        self.connection = connection
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` with the connection, holding the lock.
    func use<R>(_ body: (Connection) throws -> R) rethrows -> R {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(connection)
    }
}
