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
import Smtp

/// `emailsetup check`: connect, negotiate TLS, say EHLO, authenticate and quit — send nothing.
///
/// ```
/// emailsetup check --stored --json
/// emailsetup check --host smtp.example.com --security starttls --user app --password-env SMTP_PASSWORD --from app@example.com --json
/// ```
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Connect, negotiate TLS, authenticate and quit; send nothing.",
        discussion: """
        With --stored the saved settings are checked, read with the responder's configuration (--config FILE, else $EMAILSETUP_CONFIG, else \(ResponderConfig.defaultPath)); only --helo and the timeouts may be given to override them.

        \(SmtpOptions.exitStatusHelp)

        With --json, prints one object: {"ok":true,"server":…,"timings_ms":…,"transcript":[…]}, or on failure {"ok":false,"stage":…,"kind":…,"code":…,"enhanced_code":…,"hint":…,"certificate":…,"transcript":[…]}, with "suggestion":{"port":…,"smtp_connection_type":…,"verified":…} when a failure at connect, greeting, TLS or STARTTLS made it try the usual ports and connection securities (465, 587, 25, 2525; without signing in) and one works.
        """
    )

    @OptionGroup var options: SmtpOptions

    func run() throws {
        let settings: SmtpSettings
        do { settings = try options.settings() } catch let usage as CLIUsage {
            CLIOutput.stderr("emailsetup check: \(usage)")
            throw ExitCode(ExitStatus.usage)
        }
        let started = Date()
        do {
            let report = try SmtpClient.check(settings)
            if options.json {
                CLIOutput.json(report, with: [("ok", true)])
            } else {
                let server = report.server
                CLIOutput.stdout("check passed: \(settings.host):\(settings.port) (\(server.remoteAddress))")
                CLIOutput.stdout("greeting: \(server.greeting)")
                if let version = server.tlsVersion { CLIOutput.stdout("TLS: \(version) \(server.cipher ?? "")") }
                if let cert = server.certificate {
                    CLIOutput.stdout("certificate: \(cert.subject), issuer \(cert.issuer), valid until \(cert.notAfter)")
                    CLIOutput.stdout("  SHA-256 \(cert.sha256Fingerprint)")
                }
                CLIOutput.stdout("auth: \(server.authMechanism ?? "none")")
                CLIOutput.stdout("extensions: \(server.capabilities.keywords.keys.sorted().joined(separator: " "))")
                let timings = report.timingsMilliseconds.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value.rounded())) ms" }
                CLIOutput.stdout("timings: \(timings.joined(separator: ", "))")
                CLIOutput.stdout("transcript:")
                for line in report.transcript.lines { CLIOutput.stdout("  " + line) }
            }
        } catch let error as SmtpError {
            let error = SmtpAdvice.advise(error, settings: settings, startedAt: started)
            if options.json { CLIOutput.json(CLIOutput.diagnosis(error)) } else { CLIOutput.describe(error, transcript: true) }
            throw ExitCode(CLIOutput.exitStatus(for: [error]))
        }
    }
}
