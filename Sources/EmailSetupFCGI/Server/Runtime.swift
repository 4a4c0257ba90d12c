import Foundation
import Logging
import Storage

/// Everything a started responder shares across worker threads: configuration,
/// logger, and factories for the per-thread parts (database connection, handler).
final class Runtime: @unchecked Sendable {
    let config: ResponderConfig
    let logger: Logger
    private let databasePassword: String

    private init(config: ResponderConfig, logger: Logger, databasePassword: String) {
        self.config = config
        self.logger = logger
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
        return Runtime(config: config, logger: logger, databasePassword: try config.databasePassword())
    }

    /// The database settings for Storage.
    var databaseConfiguration: DatabaseSettingsForStorage {
        DatabaseSettingsForStorage(config: config.database, password: databasePassword)
    }

    /// A handler with its own database connection, for one worker thread.
    func makeHandler() -> (Request) -> Response {
        let handler = APIHandler(policy: config.access, repository: RepositoryFactory.make(self), logger: logger)
        return { handler.handle($0) }
    }

    /// Prints one line to stderr and exits 2: for start-up problems.
    static func fatal(_ line: String) -> Never {
        FileHandle.standardError.write(Data(("emailsetup: " + line + "\n").utf8))
        exit(2)
    }
}

/// Database settings plus the password read from its file.
struct DatabaseSettingsForStorage: Sendable {
    var config: ResponderConfig.DatabaseSettings
    var password: String
}
