import ArgumentParser

/// `emailsetup`: the FastCGI responder and its command-line tools, in one executable.
///
/// Started with no subcommand it behaves as `serve` on an inherited socket (fd 0),
/// or, when fd 0 is not a socket, answers one request as plain CGI.
/// `Sources/EmailSetupMain/main.swift` runs it; `package` so that only that
/// executable (and nothing outside this package) sees it.
package struct EmailSetupCommand: ParsableCommand {
    package init() {}

    package static let configuration = CommandConfiguration(
        commandName: "emailsetup",
        abstract: "SMTP settings backend: FastCGI responder, SMTP client and maintenance tools.",
        subcommands: [ServeCommand.self, SendCommand.self, CheckCommand.self, MigrateCommand.self, RotateKeyCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}

/// Exit statuses shared by every subcommand (DESIGN.md "Command line").
enum ExitStatus {
    /// All delivered / check passed.
    static let ok: Int32 = 0
    /// Bad usage or input.
    static let usage: Int32 = 2
    /// An SMTP failure.
    static let smtpFailure: Int32 = 3
    /// A timeout.
    static let timeout: Int32 = 4
}
