import Logging
import Storage

/// Makes the per-thread settings repository: Storage's `SettingsStore`, which
/// owns one MariaDB connection (opened lazily, reopened after an outage) and prunes
/// history and audit as configured (`history_keep`, `audit_keep_days`).
enum RepositoryFactory {
    static func make(_ runtime: Runtime) -> SettingsStore {
        SettingsStore(configuration: runtime.databaseConfiguration, logger: runtime.logger, retention: runtime.retention)
    }
}

extension Runtime {
    /// The configured retention; the last known good is proven by `test.send`.
    var retention: RetentionPolicy {
        RetentionPolicy(historyKeep: config.historyKeep, auditKeepDays: config.auditKeepDays, provenBy: "test.send")
    }
}

extension SettingsStore: SettingsRepository {
    func loadSettings() throws -> SettingsSnapshot {
        let stored = try load()
        return SettingsSnapshot(values: stored.values, version: stored.version)
    }

    func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?,
                      consumingNonces nonces: [String: String]) throws -> Int {
        try save(values: values, expectedVersion: expectedVersion, actor: actor, remoteAddress: remoteAddress, consumingNonces: nonces)
    }

    func versionsWithSuccessfulTests(limit: Int) throws -> [Int] {
        try versionsWithSuccess(action: "test.send", limit: limit)
    }

    func loadSettingsWithLastKnownGood() throws -> (SettingsSnapshot, Int?) {
        let (stored, good) = try loadWithLastSuccess(action: "test.send")
        return (SettingsSnapshot(values: stored.values, version: stored.version), good)
    }
}

extension SettingsStore: OAuthTokenStore {}
