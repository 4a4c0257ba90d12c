import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
        subcommands: [ServeCommand.self, SendCommand.self, CheckCommand.self, DiscoverCommand.self, OAuthCommand.self, MigrateCommand.self, RotateKeyCommand.self, RotateKEKCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    /// Parses, runs, and exits with DESIGN.md's statuses: 2 for every usage error
    /// (ArgumentParser's own would be 64), with ArgumentParser's usual message on
    /// stderr; `--help` exits 0 and an `ExitCode` thrown by a subcommand passes through.
    ///
    /// With no arguments (plain CGI, spawn-fcgi, systemd) it runs `serve` without
    /// ArgumentParser: parsing even an empty command line reflects over every
    /// command's options, ~13 % of a CGI request's CPU (README, "CGI start-up").
    package static func main() {
        let environment = ProcessInfo.processInfo.environment
        let arguments = effectiveArguments(Array(CommandLine.arguments.dropFirst()), environment: environment)
        do {
            if arguments.isEmpty {
                try ServeCommand.serve(socket: nil, listen: nil, threads: nil, config: nil, environment: environment)
                return
            }
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let status as ExitCode {
            // Directly: `exit(withError:)` would build a message (reflection) for nothing.
            terminate(status.rawValue)
        } catch {
            finish(with: error)
        }
    }

    /// Exits for `error`: usage errors print `fullMessage(for:)` and exit 2; the rest
    /// (help, `ExitCode`, other failures) as ArgumentParser's `exit(withError:)` does.
    static func finish(with error: Error) -> Never {
        if let status = usageStatus(for: error) {
            StandardStreams.error(fullMessage(for: error) + "\n")
            terminate(status)
        }
        exit(withError: error)
    }

    /// 2 when `error` is a parse or validation error (what ArgumentParser maps to 64);
    /// nil for everything else, including an `ExitCode` a subcommand chose.
    static func usageStatus(for error: Error) -> Int32? {
        if error is ExitCode { return nil }
        return exitCode(for: error) == .validationFailure ? ExitStatus.usage : nil
    }

    /// The arguments to parse. A CGI server may put the words of a query string that
    /// has no "=" into argv (RFC 3875 section 4.4, e.g. Apache for `?a+b`); those are
    /// the client's words, never options, so a CGI request then runs as with no
    /// arguments (`serve`) — a request must not be able to run `send`.
    ///
    /// - Parameters:
    ///   - arguments: argv without the program name.
    ///   - environment: the process environment (`GATEWAY_INTERFACE`, `QUERY_STRING`).
    static func effectiveArguments(_ arguments: [String], environment: [String: String]) -> [String] {
        guard !arguments.isEmpty, environment["GATEWAY_INTERFACE"] != nil,
              let query = environment["QUERY_STRING"], !query.isEmpty, !query.contains("=") else { return arguments }
        let raw = query.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        let decoded = raw.map { $0.percentDecoded ?? $0 }
        return arguments == decoded || arguments == raw ? [] : arguments
    }
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

/// The C library's exit, named apart from ArgumentParser's `exit(withError:)`.
private func terminate(_ status: Int32) -> Never { exit(status) }
