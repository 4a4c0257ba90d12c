#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Storage

// The db_ssl_* settings (issue 17, "Database over TLS"), apart from the rest of the
// configuration so that ResponderConfig.swift keeps one line per setting.
extension ResponderConfig {
    /// `db_ssl_ca`, `db_ssl_cert`, `db_ssl_key`, `db_ssl_verify`: any of them turns TLS
    /// on; the server is verified unless `db_ssl_verify = no` (docs/DECISIONS.md,
    /// "Database over TLS").
    static func databaseTLS(_ value: (String) -> String, _ problem: (String, String) -> Problem,
                            socket: String?) throws -> DatabaseConfiguration.TLS? {
        let keys = ["db_ssl_ca", "db_ssl_cert", "db_ssl_key", "db_ssl_verify"]
        guard let first = keys.first(where: { !value($0).isEmpty }) else { return nil }
        if socket != nil {
            throw problem(first, "TLS needs db_host: a unix socket (db_socket) is local and not encrypted; leave db_socket empty and set db_host and db_port")
        }
        var files: [String: String] = [:]
        for key in keys.dropLast() where !value(key).isEmpty {
            guard FileManager.default.isReadableFile(atPath: value(key)) else { throw problem(key, "cannot read this file") }
            files[key] = value(key)
        }
        if (files["db_ssl_cert"] == nil) != (files["db_ssl_key"] == nil) {
            let missing = files["db_ssl_cert"] == nil ? "db_ssl_cert" : "db_ssl_key"
            throw problem(missing == "db_ssl_cert" ? "db_ssl_key" : "db_ssl_cert", "a client certificate needs both db_ssl_cert and db_ssl_key; set \(missing) too")
        }
        let verify: Bool
        switch value("db_ssl_verify").lowercased() {
        case "", "yes": verify = true
        case "no": verify = false
        default: throw problem("db_ssl_verify", "must be yes or no (yes unless the server's certificate cannot name the host connected to)")
        }
        return DatabaseConfiguration.TLS(caFile: files["db_ssl_ca"], certificateFile: files["db_ssl_cert"], keyFile: files["db_ssl_key"],
                                         verifyServer: verify)
    }

    /// The warning logged at start when the database server is not fully verified, nil
    /// when it is (or TLS is off).
    var databaseTLSWarning: String? {
        guard let tls = database.tls, !tls.verifyServer else { return nil }
        return tls.caFile != nil
            ? "db_ssl_verify = no: database TLS verification is off for the host name: the server's certificate is checked against db_ssl_ca but may name any host"
            : "db_ssl_verify = no: database TLS verification is off: the connection is encrypted but the server is not verified; anyone in the path can pose as it (set db_ssl_ca)"
    }
}
