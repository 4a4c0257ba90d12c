import Storage

/// Makes the per-thread settings repository. (Wired to Storage's SettingsStore.)
enum RepositoryFactory {
    static func make(_ runtime: Runtime) -> SettingsRepository { Unavailable() }

    private final class Unavailable: SettingsRepository {
        func loadSettings() throws -> SettingsSnapshot { throw StorageError(.unavailable, "storage not wired yet") }
        func saveSettings(_ values: [String: String], expectedVersion: Int?, actor: String, remoteAddress: String?) throws -> Int {
            throw StorageError(.unavailable, "storage not wired yet")
        }
    }
}
