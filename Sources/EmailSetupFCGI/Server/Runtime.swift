#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DomainCheck
import Logging
import MailDNS
import Storage

/// Everything a started responder shares across worker threads: configuration,
/// logger, and factories for the per-thread parts (database connection, handler).
final class Runtime: Sendable {
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
        smtpSlots = SmtpSlots(capacity: config.smtpSessions)
        let targets = config.notify.compactMap { SettingsChangeNotifier.Target(configuration: $0, message: config.notifyMessage) }
        notifier = SettingsChangeNotifier(targets: targets, timeout: config.notifyTimeout, logger: logger)
    }

    /// Loads the configuration and prepares shared state; throws one clear line.
    /// - Parameter oneRequest: plain CGI: the KEK file is not even opened at start; it
    ///   and the keys are read when a request first needs a secret (README, "CGI start-up").
    static func start(configPath: String?, environment: [String: String], oneRequest: Bool = false) throws -> Runtime {
        let config = try ResponderConfig.load(path: configPath, environment: environment)
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level) }
        let logger = Logger(label: "emailsetup")
        signal(SIGPIPE, SIG_IGN)
        // Connector/C's global set-up must happen once, before worker threads connect.
        try MariaDBLibrary.initialize()
        if config.access.mode == .none {
            logger.warning("auth = none: every request is treated as an administrator; use this for local runs only")
        }
        if let warning = config.databaseTLSWarning { logger.warning("\(warning)") }
        let databasePassword = try config.databasePassword()
        // Keys live in the database, wrapped by the KEK; nothing is read here under CGI
        // (a GET never needs them). Otherwise a KEK file that others can read stops
        // start-up here, with one line naming it.
        let keys = WrappedKeyStore(configuration: databaseConfiguration(config, password: databasePassword),
                                   kek: config.kekLocation, importing: config.keyDirectory, logger: logger)
        if !oneRequest { try keys.checkKEKFile() }
        let legacy = try config.legacyKeyFile.map { try LegacySecret.passphrase(fromKeyFile: $0) }
        return Runtime(config: config, logger: logger, secrets: SecretOpener(keyring: SecretKeyring(sharedKeys: keys), legacyPassphrase: legacy),
                       databasePassword: databasePassword)
    }

    /// The database settings for Storage.
    var databaseConfiguration: DatabaseConfiguration {
        Self.databaseConfiguration(config, password: databasePassword)
    }

    private static func databaseConfiguration(_ config: ResponderConfig, password databasePassword: String) -> DatabaseConfiguration {
        let endpoint: DatabaseConfiguration.Endpoint = config.database.socket.map { .unixSocket(path: $0) }
            ?? .tcp(host: config.database.host ?? "localhost", port: config.database.port)
        return DatabaseConfiguration(endpoint: endpoint, user: config.database.user, password: databasePassword,
                                     database: config.database.name, readTimeout: TimeInterval(config.database.timeout),
                                     writeTimeout: TimeInterval(config.database.timeout), tls: config.database.tls)
    }

    /// Applies the schema migrations (idempotent; safe when several responders start at once).
    func migrate() throws -> [Int] {
        try SettingsStore(configuration: databaseConfiguration, logger: logger).migrate()
    }

    /// True once the schema migrations ran in this process.
    private let migrated = ManagedFlag()
    /// Notifications run here, off the request path, so a slow target never delays an answer.
    private let notifications = DispatchQueue(label: "emailsetup.notify")
    private let pendingNotifications = DispatchGroup()

    /// Applies migrations at start; when the database is away, the first request
    /// that reaches it applies them instead (see `makeHandler`).
    func migrateAtStart() {
        do {
            let applied = try migrate()
            migrated.set()
            if !applied.isEmpty { logger.info("schema migrations applied", metadata: ["versions": "\(applied)"]) }
        } catch let error as StorageError where error.setting != nil {
            logger.error("\(error.message)") // one line naming the setting to fix (db_ssl_ca, db_host…)
            return
        } catch {
            logger.warning("database unreachable at start; migrations will run on the first request that reaches it",
                           metadata: ["error": "\(error)"])
            return
        }
        prepareKeysAtStart()
    }

    /// Reads the KEK and the keys (importing an old key directory, or making the first
    /// keys) so a responder whose KEK does not open them stops now with one line; when
    /// the database is away they are read by the first request that needs them.
    func prepareKeysAtStart() {
        do {
            try secrets.keyring.prepare()
        } catch let error as StorageError where error.code == .unavailable {
            logger.warning("database unreachable at start; keys will be read when first needed", metadata: ["error": "\(error)"])
        } catch {
            Self.fatal("\(error)")
        }
    }

    /// The settings read behind GET (and save, restore, history), shared by all worker
    /// threads of this process: concurrent requests share one MariaDB read that started
    /// after each of them arrived, so answers stay read-your-writes across responders
    /// while the database sees at most one such read in flight per process (see
    /// `ReadCoalescer`). CGI mode answers one request per process, so there it never
    /// has company; it costs an uncontended lock.
    let settingsReads = ReadCoalescer<(SettingsSnapshot, Int?)>()
    /// Database outages logged once, then as counts, for all workers together.
    let storageOutage = StorageOutageLog(logger: Logger(label: "emailsetup"))

    /// `public_url`, endpoint override and CA file, for every OAuth 2.0 request.
    var oauthOptions: OAuthOptions {
        OAuthOptions(publicURL: config.publicURL, baseOverride: config.oauthBaseOverride, caFile: config.oauthCAFile)
    }

    /// DNS servers, CA file and ports for discovery.
    var discoverySetup: DiscoverySetup {
        DiscoverySetup(dnsServers: config.dnsServers.map(\.description), caFile: config.discoveryCAFile,
                       autoconfigPort: config.discoveryAutoconfigPort, probes: config.discoveryProbes,
                       deniedNetworks: config.smtpDeniedNetworks)
    }

    /// The SMTP sessions this process may run at once (`smtp_sessions`), shared by every
    /// worker: a test email beyond them is answered 503 at once.
    let smtpSlots: SmtpSlots

    /// The threads that run SMTP sessions for the FastCGI workers, one database
    /// connection each (for the audit row written when a session ends).
    func makeSmtpPool() -> SmtpWorkPool {
        SmtpWorkPool(threads: smtpSlots.capacity, logger: logger) { [self] in
            MariaDBLibrary.threadDidStart()
            return RepositoryFactory.make(self)
        }
    }

    /// A handler with its own database connection, for one worker thread; its GET
    /// reads go through the process's `settingsReads`.
    /// - Parameter synchronousNotifications: CGI mode, where the process exits right
    ///   after answering, so notifications are sent before returning.
    func makeHandler(synchronousNotifications: Bool = false) -> (Request) -> Response {
        MariaDBLibrary.threadDidStart()
        let store = RepositoryFactory.make(self)
        let repository = OutageObservingRepository(base: CoalescingSettingsRepository(base: store, reads: settingsReads), outage: storageOutage)
        var handler = APIHandler(policy: config.access, repository: repository, vault: vault, logger: logger)
        handler.storageOutage = storageOutage
        handler.limits = TestRateLimits(perUser: config.testRateLimitPerUser, total: config.testRateLimitTotal)
        handler.smtpCapacity = smtpSlots
        handler.oauthStore = store
        handler.oauthOptions = oauthOptions
        handler.sessionLimit = config.smtpSessionLimit
        handler.deniedNetworks = config.smtpDeniedNetworks
        handler.domainCheckDNS = try? config.dnsResolver()  // dns_servers was checked at start-up
        handler.discovery = discoverySetup
        if !notifier.targets.isEmpty {
            let notifier = self.notifier
            if synchronousNotifications {
                handler.settingsCommitted = { version in notifier.notify(version: version) }
            } else {
                let queue = notifications, group = pendingNotifications
                handler.settingsCommitted = { version in queue.async(group: group) { notifier.notify(version: version) } }
            }
        }
        let finalHandler = handler
        return { [self] request in
            if !migrated.isSet, (try? store.migrate()) != nil { migrated.set() }
            return finalHandler.handle(request)
        }
    }

    /// Waits (bounded) for notifications still on their way, before the process exits.
    func finishNotifications() {
        _ = pendingNotifications.wait(timeout: .now() + config.notifyTimeout + 0.5)
    }

    /// Every committed save and restore is announced to these targets (built once in
    /// `init`: every worker thread reads it).
    let notifier: SettingsChangeNotifier

    /// Prints one line to stderr and exits 2: for start-up problems.
    static func fatal(_ line: String) -> Never {
        StandardStreams.error("emailsetup: " + line + "\n")
        exit(2)
    }
}

