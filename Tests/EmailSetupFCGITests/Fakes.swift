@testable import EmailSetupFCGI
import Logging
import Storage

/// An in-memory settings repository for the handler's unit tests (the real one
/// is tested against MariaDB in StorageTests and the end-to-end tests).
final class MemorySettingsRepository: SettingsRepository {
    var values: [String: String] = [:]
    var version = 0
    var saves: [(values: [String: String], actor: String)] = []
    var failWith: StorageError?

    func loadSettings() throws -> SettingsSnapshot {
        if let failWith { throw failWith }
        return SettingsSnapshot(values: values, version: version)
    }

    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> Int {
        if let failWith { throw failWith }
        if let expectedVersion, expectedVersion != version {
            throw StorageError(.conflict, "stale", currentVersion: version)
        }
        self.values.merge(values) { $1 }
        version += 1
        saves.append((values, actor))
        return version
    }
}

extension Logger {
    static let quiet: Logger = {
        var logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        logger.logLevel = .critical
        return logger
    }()
}

extension Response {
    /// The parsed JSON body.
    var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }
    /// The message of one field in an error envelope.
    func error(_ field: String) -> String? { json["errors"]?[field]?.stringValue }
    /// A member of `data` as a string.
    func data(_ field: String) -> String? { json["data"]?[field]?.stringValue }
}

func post(_ path: String, _ body: String, user: String? = "admin", headers: [String: String] = [:]) -> Request {
    var h = ["x-requested-with": "EmailSetup", "host": "127.0.0.1:8080", "content-type": "application/json"]
    h.merge(headers) { $1 }
    return Request(method: "POST", path: path, headers: h, body: Array(body.utf8), remoteUser: user, remoteAddress: "127.0.0.1")
}

func get(_ path: String, user: String? = "admin") -> Request {
    Request(method: "GET", path: path, headers: ["host": "127.0.0.1:8080"], remoteUser: user, remoteAddress: "127.0.0.1")
}
