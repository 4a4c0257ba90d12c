import ArgumentParser

/// `emailsetup check`: placeholder until the Smtp issue lands.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Connect, negotiate TLS, authenticate and quit; send nothing.")
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
