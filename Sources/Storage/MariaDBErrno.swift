// The MariaDB error numbers the storage acts on, and how they classify a
// StorageError; plain Swift (the numbers are read in MariaDBHandles.swift).

/// Client error numbers (errmsg.h) and server error numbers (mysqld_error.h) we act on.
enum MariaDBErrno {
    /// The connection is gone or unusable: drop it, and the next unit of work reconnects.
    static let connectionLost: Set<UInt32> = [
        1053, // ER_SERVER_SHUTDOWN
        1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, // ER_ABORTING_CONNECTION, ER_NET_*
        1927, // ER_CONNECTION_KILLED
        4031, // ER_CLIENT_INTERACTION_TIMEOUT
        2001, 2002, 2003, 2004, 2005, // cannot create socket / connect / unknown host
        2006, // CR_SERVER_GONE_ERROR
        2011, 2012, // CR_TCP_CONNECTION, CR_SERVER_HANDSHAKE_ERR
        2013, // CR_SERVER_LOST
        2014, // CR_COMMANDS_OUT_OF_SYNC: protocol state unknown, start over
        2026, // CR_SSL_CONNECTION_ERROR
        2027, // CR_MALFORMED_PACKET
        2055, // CR_SERVER_LOST_EXTENDED
    ]
    /// The server is there but cannot do it now; the statement (1205) or the whole
    /// transaction (1213) was rolled back and may be retried later. On a Galera
    /// cluster 1213 is also a certification failure at COMMIT (another node committed a
    /// conflicting write first), and a node outside the primary component answers 1047
    /// until it has rejoined: both leave the connection usable, both are `.unavailable`
    /// (503 with Retry-After) unless the store's bounded retry resolves them first.
    static let busy: Set<UInt32> = Set<UInt32>([
        1040, // ER_CON_COUNT_ERROR: too many connections
        1205, // ER_LOCK_WAIT_TIMEOUT (also a wsrep_sync_wait that timed out)
        1213, // ER_LOCK_DEADLOCK (also Galera: certification failure, "wsrep aborted transaction")
    ]).union(clusterNotReady)
    /// Galera: this node cannot serve now (not in the primary component, still joining,
    /// or it left the cluster during COMMIT, which was then not applied anywhere).
    static let clusterNotReady: Set<UInt32> = [
        1047, // ER_UNKNOWN_COM_ERROR, as wsrep uses it: "WSREP has not yet prepared node for application use"
        1180, // ER_ERROR_DURING_COMMIT: the cluster refused the commit (node left the primary component)
    ]
    /// The server does not know a session variable (a MariaDB or MySQL built without wsrep).
    static let unknownSystemVariable: UInt32 = 1193
    /// The configuration is wrong: account, password or database.
    static let configuration: Set<UInt32> = [
        1044, // ER_DBACCESS_DENIED_ERROR
        1045, // ER_ACCESS_DENIED_ERROR
        1049, // ER_BAD_DB_ERROR
        1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
        2059, // CR_AUTH_PLUGIN_CANNOT_LOAD
    ]
    static let deadlock: UInt32 = 1213
}

extension StorageError {
    /// True when the error says the connection is unusable; the connection drops it.
    var meansConnectionLost: Bool {
        guard let e = mariadbErrno else { return false }
        return MariaDBErrno.connectionLost.contains(e)
    }

    /// True for InnoDB deadlocks: the server rolled the whole transaction back, so the
    /// transaction may be run again from the start.
    var isDeadlock: Bool { mariadbErrno == MariaDBErrno.deadlock }
}
