import Foundation
import Logging
import Storage

/// Everything a started responder shares across worker threads: configuration,
/// logger, and factories for the per-thread parts (database connection, handler).
final class Runtime: @unchecked Sendable {
    let config: ResponderConfig
    let logger: Logger
    /// Opens stored secrets (v1 sealed, or the original system's format).
    let secrets: SecretOpener
    let vault: KeyringVault
    private let databasePassword: String

    private init(config: ResponderConfig, logger: Logger, secrets: SecretOpener, databasePassword: String) {
        self.config = config
        self.logger = logger
        self.secrets = secrets
        self.vault = KeyringVault(opener: secrets)
        self.databasePassword = databasePassword
    }

    /// Loads the configuration and prepares shared state; throws one clear line.
    static func start(configPath: String?, environment: [String: String]) throws -> Runtime {
        let config = try ResponderConfig.load(path: configPath, environment: environment)
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level) }
        let logger = Logger(label: "emailsetup")
        signal(SIGPIPE, SIG_IGN)
        if config.access.mode == .none {
            logger.warning("auth = none: every request is treated as an administrator; use this for local runs only")
        }
        // Key files that others can read stop start-up here, with one line naming the file.
        let keyring = try SecretKeyring(directory: config.keyDirectory)
        let legacy = try config.legacyKeyFile.map { try LegacySecret.passphrase(fromKeyFile: $0) }
        return Runtime(config: config, logger: logger, secrets: SecretOpener(keyring: keyring, legacyPassphrase: legacy),
                       databasePassword: try config.databasePassword())
    }

    /// The database settings for Storage.
    var databaseConfiguration: DatabaseConfiguration {
        let endpoint: DatabaseConfiguration.Endpoint = config.database.socket.map { .unixSocket(path: $0) }
            ?? .tcp(host: config.database.host ?? "localhost", port: config.database.port)
        return DatabaseConfiguration(endpoint: endpoint, user: config.database.user, password: databasePassword,
                                     database: config.database.name)
    }

    /// Applies the schema migrations (idempotent; safe when several responders start at once).
    func migrate() throws -> [Int] {
        try SettingsStore(configuration: databaseConfiguration, logger: logger).migrate()
    }

    /// A handler with its own database connection, for one worker thread.
    func makeHandler() -> (Request) -> Response {
        let handler = APIHandler(policy: config.access, repository: RepositoryFactory.make(self), vault: vault, logger: logger)
        return { handler.handle($0) }
    }

    /// Prints one line to stderr and exits 2: for start-up problems.
    static func fatal(_ line: String) -> Never {
        FileHandle.standardError.write(Data(("emailsetup: " + line + "\n").utf8))
        exit(2)
    }
}

