import ArgumentParser

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve FastCGI (or answer one CGI request).")
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply database schema migrations.")
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
struct RotateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-key", abstract: "Make a new data key and re-seal every stored secret.")
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
