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
import OAuth
import Smtp

/// `emailsetup oauth login|status|sign-out --stored`: OAuth 2.0 sign-in for a server
/// with no browser (the device flow, RFC 8628), and what is signed in now.
///
/// ```
/// emailsetup oauth login --stored      # shows a code to enter at microsoft.com/devicelogin, waits
/// emailsetup oauth status --stored     # account, when, access token's expiry (never a token)
/// emailsetup oauth sign-out --stored   # revokes where the provider can, forgets
/// ```
struct OAuthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oauth",
        abstract: "Sign the SMTP sender in with OAuth 2.0, show or end the sign-in.",
        subcommands: [Login.self, Status.self, SignOut.self])

    /// What every subcommand takes: the saved settings, read like `serve` reads them.
    struct Stored: ParsableArguments {
        @Flag(name: .long, help: "Use the saved settings (required: the sign-in belongs to them).")
        var stored = false

        @Option(name: .long, help: "The responder's configuration (default: $EMAILSETUP_CONFIG or \(ResponderConfig.defaultPath)).")
        var config: String?

        func validate() throws {
            guard stored else { throw ValidationError("--stored is required: the sign-in is kept with the saved settings") }
        }

        /// The sign-in flows over the saved settings, as the operator running this.
        func signIn() throws -> (OAuthSignIn, StoredContext) {
            let context: StoredContext
            do {
                context = try StoredContext.open(configPath: config, environment: ProcessInfo.processInfo.environment)
            } catch {
                CLIOutput.stderr("emailsetup oauth: \(error)")
                throw ExitCode(ExitStatus.usage)
            }
            guard OAuthSetup.isOAuth(context.values) else {
                CLIOutput.stderr("emailsetup oauth: the saved sign-in method is not OAuth 2.0; choose XOAUTH2 or OAUTHBEARER and save first")
                throw ExitCode(ExitStatus.usage)
            }
            let vault = context.runtime.vault
            let setup = try OAuthCommand.guarded {
                try OAuthSetup(values: context.values, openSecret: { try vault.openStored($0) }, options: context.runtime.oauthOptions)
            }
            let actor = "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "root")
            return (OAuthSignIn(setup: setup, vault: vault, store: context.store, actor: actor, remoteAddress: nil), context)
        }
    }

    /// `oauth login --stored`: the device flow, polled until approved, denied or expired.
    struct Login: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign in with the device flow: shows a code to enter in any browser, waits for it.")
        @OptionGroup var options: Stored

        func run() throws {
            let (flow, _) = try options.signIn()
            guard flow.setup.grant != .clientCredentials else {
                CLIOutput.stdout("App-only sign-in (client credentials): no person signs in; the client secret is used.")
                return
            }
            let (handle, device) = try OAuthCommand.guarded { try flow.startDevice() }
            CLIOutput.stdout("To sign in, open \(device.verificationURI) and enter the code \(device.userCode)")
            if let complete = device.verificationURIComplete { CLIOutput.stdout("(or open \(complete))") }
            var interval = max(1, device.interval)
            let end = Date().addingTimeInterval(Double(device.expiresIn))
            while Date() < end {
                sleep(UInt32(interval))
                switch try OAuthCommand.guarded({ try flow.poll(handle: handle) }) {
                case .pending(let slowDown): if slowDown { interval += 5 }
                case .signedIn(let account):
                    CLIOutput.stdout("Signed in as \(account); access tokens renew automatically.")
                    return
                }
            }
            CLIOutput.stderr("emailsetup oauth login: the code expired before it was entered; run the command again")
            throw ExitCode(ExitStatus.timeout)
        }
    }

    /// `oauth status --stored`: who is signed in, since when; never a token.
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show who is signed in and when the access token expires.")
        @OptionGroup var options: Stored

        func run() throws {
            let (flow, context) = try options.signIn()
            let account = context.values[SettingsKey.SignIn.account] ?? ""
            if flow.setup.grant == .clientCredentials {
                CLIOutput.stdout("app-only (client credentials) for \(flow.setup.mailbox)")
            } else if account.isEmpty {
                CLIOutput.stdout("not signed in: run emailsetup oauth login --stored, or use Sign in on the settings page")
            } else {
                CLIOutput.stdout("signed in as \(account) since \(context.values[SettingsKey.SignIn.signedInAt] ?? "?")")
            }
            if let cached = try? context.store.cachedAccessToken(key: flow.setup.cacheKey), !cached.sealed.isEmpty,
               let left = cached.secondsLeft {
                CLIOutput.stdout(left > 0 ? "access token: valid for \(Int(left)) s more" : "access token: expired; renewed at the next use")
            } else {
                CLIOutput.stdout("access token: none cached yet")
            }
        }
    }

    /// `oauth sign-out --stored`.
    struct SignOut: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sign-out", abstract: "Revoke (where the provider can) and forget the sign-in.")
        @OptionGroup var options: Stored

        func run() throws {
            let (flow, _) = try options.signIn()
            let revoked = try OAuthCommand.guarded { try flow.signOut() }
            CLIOutput.stdout(revoked ? "Signed out; the provider revoked the token." : "Signed out; the stored token is forgotten.")
        }
    }

    /// Runs `body`; an OAuth failure prints its hint and exits 3 (4 for a timeout).
    static func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as OAuthError {
            CLIOutput.stderr("emailsetup oauth: \(error.code.map { "\($0): " } ?? "")\(error.hint)")
            throw ExitCode(error.kind == .timeout ? ExitStatus.timeout : (error.kind == .invalidInput ? ExitStatus.usage : ExitStatus.smtpFailure))
        }
    }
}
