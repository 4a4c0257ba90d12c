// Process-wide and per-thread set-up of MariaDB Connector/C (see MariaDBHandles.swift
// for the threading rules).
import CMariaDB

/// Process-wide and per-thread set-up of the MariaDB client library.
///
/// ```swift
/// try MariaDBLibrary.initialize()          // once, in main, before starting workers
/// Thread {
///     MariaDBLibrary.threadDidStart()
///     defer { MariaDBLibrary.threadWillExit() }
///     let store = SettingsStore(configuration: configuration)
///     // … serve requests with `store` on this thread only …
/// }.start()
/// ```
public enum MariaDBLibrary {
    private static let initialization: Result<Void, StorageError> = {
        // mysql_library_init is a macro for mysql_server_init.
        if mysql_server_init(0, nil, nil) != 0 {
            return .failure(StorageError(.configuration, "mysql_library_init: the MariaDB client library failed to initialise"))
        }
        return .success(())
    }()

    /// Initialises Connector/C once per process. Safe to call many times and from
    /// any thread (the first call does the work; the others wait for it).
    public static func initialize() throws {
        try initialization.get()
    }

    /// Per-thread set-up (`mysql_thread_init`); call first thing on a worker thread.
    public static func threadDidStart() {
        _ = mysql_thread_init()
    }

    /// Per-thread clean-up (`mysql_thread_end`); call last thing on a worker thread,
    /// after every connection the thread used has been closed.
    public static func threadWillExit() {
        mysql_thread_end()
    }
}
