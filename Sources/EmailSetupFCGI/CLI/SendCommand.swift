import ArgumentParser

/// `emailsetup send`: placeholder until the Smtp issue lands.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send", abstract: "Send email with the given or stored settings.")
    func run() throws { throw ExitCode(ExitStatus.usage) }
}
