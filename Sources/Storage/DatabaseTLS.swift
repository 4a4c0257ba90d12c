// TLS to MariaDB: what the configuration asks for, and how a refused connection is
// put into one line that names the setting to fix. Plain Swift; the Connector/C
// options themselves are set in MariaDBHandles.swift.

extension DatabaseConfiguration {
    /// TLS to the database server (`db_ssl_ca`, `db_ssl_cert`, `db_ssl_key`,
    /// `db_ssl_verify` in the responder's configuration). When a configuration has one,
    /// the connection is encrypted or not made at all: a server that does not offer TLS
    /// is refused, never used in clear.
    ///
    /// What is checked, with Connector/C 3.3 (the one Debian 12 ships):
    ///
    /// | `caFile` | `verifyServer` | checked |
    /// |---|---|---|
    /// | set | true | chain to `caFile`, and the host name connected to is in the certificate |
    /// | set | false | chain to `caFile` only (Connector/C 3.3 checks it whenever a CA is given) |
    /// | nil | true | chain to the system's trust store, and the host name |
    /// | nil | false | nothing: encrypted, but anyone in the path can pose as the server |
    ///
    /// ```swift
    /// var configuration = DatabaseConfiguration(endpoint: .tcp(host: "db1.example.com", port: 3306), ...)
    /// configuration.tls = .init(caFile: "/etc/emailsetup/db-ca.pem")
    /// ```
    public struct TLS: Sendable, Equatable {
        /// PEM file of the CA certificate(s) that signed the server's certificate; nil:
        /// the system's trust store.
        public var caFile: String?
        /// PEM client certificate, for accounts created `REQUIRE X509` (or `SUBJECT`/`ISSUER`).
        public var certificateFile: String?
        /// The client certificate's private key (PEM, unencrypted).
        public var keyFile: String?
        /// Check the server's certificate (see the table above); on unless turned off.
        public var verifyServer: Bool

        /// Makes a TLS setting.
        /// - Parameters:
        ///   - caFile: CA certificates (PEM) for the server's certificate; nil: the system's.
        ///   - certificateFile: client certificate (PEM), or nil.
        ///   - keyFile: the client certificate's key (PEM), or nil.
        ///   - verifyServer: check chain and host name (default true).
        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, verifyServer: Bool = true) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.verifyServer = verifyServer
        }
    }

    /// `host:port` (or the socket path) for messages.
    var placeDescription: String {
        switch endpoint {
        case .unixSocket(let path): return "unix:\(path)"
        case .tcp(let host, let port): return "\(host):\(port)"
        }
    }

    /// The host name the server's certificate must hold.
    var hostName: String {
        switch endpoint {
        case .unixSocket: return "localhost"
        case .tcp(let host, _): return host
        }
    }
}

/// Rewrites a failed connect into one line for the operator, naming the setting to
/// change (``StorageError/setting``); other errors pass unchanged. The texts matched
/// are Connector/C 3.3's (libmariadb/secure/openssl.c, plugins/auth/my_auth.c) and
/// OpenSSL's `X509_verify_cert_error_string`.
enum DatabaseTLSFailure {
    /// The line for a connect that failed with `error` under `configuration`.
    static func explain(_ error: StorageError, configuration c: DatabaseConfiguration) -> StorageError {
        let text = error.message
        var explained = error
        if error.mariadbErrno == 2026 {
            let reason = text.droppingPrefix("mysql_real_connect: ").droppingPrefix("TLS/SSL error: ").droppingPrefix("SSL connection error: ")
            if text.contains("Validation of SSL server certificate failed") {
                explained.message = "database TLS: the certificate of \(c.placeDescription) is not issued for \"\(c.hostName)\": "
                    + "set db_host to a name the certificate holds, or db_ssl_verify = no to skip the host-name check"
                explained.setting = "db_host"
            } else if text.contains("server does not support it") {
                explained.message = "database TLS: \(c.placeDescription) does not offer TLS: turn TLS on in the server "
                    + "(ssl_cert, ssl_key) or remove the db_ssl_ settings"
                explained.setting = "db_ssl_ca"
            } else if Self.isUntrusted(reason) {
                let ca = c.tls?.caFile.map { "db_ssl_ca = \($0)" } ?? "the system's trust store (db_ssl_ca is not set)"
                explained.message = "database TLS: the certificate of \(c.placeDescription) is not trusted by \(ca) (\(reason)): "
                    + "set db_ssl_ca to the CA certificate that signed the server's"
                explained.setting = "db_ssl_ca"
            } else if c.tls != nil {
                explained.message = "database TLS: cannot set up TLS with \(c.placeDescription): \(reason) "
                    + "(check db_ssl_ca, db_ssl_cert and db_ssl_key)"
            }
        } else if error.mariadbErrno == 1045, case .tcp = c.endpoint {
            // The server says no more than "access denied" for an account that needs
            // TLS or a client certificate: say what to try after the password.
            explained.message = text + (c.tls == nil
                ? "; if the account or server requires TLS (REQUIRE SSL, require_secure_transport), set db_ssl_ca"
                : (c.tls?.certificateFile == nil
                    ? "; if the account requires a client certificate (REQUIRE X509), set db_ssl_cert and db_ssl_key" : ""))
        }
        return explained
    }

    /// The connection was made but is not encrypted: Connector/C 3.3 falls back to
    /// plain text when the server offers no TLS and the host name is not checked.
    static func notEncrypted(configuration c: DatabaseConfiguration) -> StorageError {
        StorageError(.unavailable, "database TLS: \(c.placeDescription) does not offer TLS, and db_ssl_ settings require it: "
                     + "turn TLS on in the server (ssl_cert, ssl_key) or remove the db_ssl_ settings", setting: "db_ssl_ca")
    }

    /// Whether `reason` is a certificate-chain verdict (OpenSSL's wording) rather than
    /// a failure to load our own files or to talk.
    private static func isUntrusted(_ reason: String) -> Bool {
        let verdicts = ["self-signed", "self signed", "issuer certificate", "certificate has expired", "not yet valid",
                        "unable to verify", "certificate verify failed", "certificate signature failure", "revoked",
                        "unsuitable certificate purpose", "certificate rejected", "certificate not trusted"]
        let lower = reason.lowercased()
        return verdicts.contains { lower.contains($0) }
    }
}

private extension String {
    func droppingPrefix(_ prefix: String) -> String { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self }
}
