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
import Logging
import OAuth
import Smtp
import Storage

/// The SMTP settings saved in the database, for `send --stored` and `check --stored`.
///
/// Read the way the responder reads them: its configuration file (`--config`, else
/// `$EMAILSETUP_CONFIG`, else the default path) and `EMAILSETUP_*` overrides, its key
/// directory, one `SettingsStore.load()`, and `SmtpSettingsMapper`. The saved password
/// stays sealed until the SMTP client authenticates. (Not Storage's `StoredSettings`,
/// which is the raw label → value snapshot this starts from.)
///
/// ```swift
/// let settings = try StoredSmtpSettings.load(configPath: nil, environment: ProcessInfo.processInfo.environment)
/// ```
enum StoredSmtpSettings {
    /// Why the saved settings cannot be used; the CLI prints it and exits 2.
    struct Problem: Error, CustomStringConvertible {
        /// Which step failed.
        enum Kind: String, Sendable {
            /// The configuration file or the key directory cannot be used.
            case configuration
            /// The database cannot be reached or read.
            case database
            /// The settings were never saved (no server or no sender), or a saved value no longer parses.
            case notSaved
        }

        var kind: Kind
        /// One line for the operator.
        var description: String
    }

    /// Loads and maps the saved settings.
    ///
    /// - Parameters:
    ///   - configPath: the responder's configuration file; nil for the default (as `serve`).
    ///   - environment: `EMAILSETUP_CONFIG` and the `EMAILSETUP_*` overrides.
    /// - Returns: the settings; the password closure opens the sealed secret when called.
    /// - Throws: `Problem`, naming the file, the database error or the missing setting.
    static func load(configPath: String?, environment: [String: String]) throws(Problem) -> SmtpSettings {
        let context = try StoredContext.open(configPath: configPath, environment: environment)
        let values = context.values, runtime = context.runtime
        let sealed = values[SettingsKey.password.rawValue] ?? ""
        let vault = runtime.vault
        do {
            var settings = try SmtpSettingsMapper.smtpSettings(from: values, deniedNetworks: runtime.config.smtpDeniedNetworks) { [vault] in
                try sealed.isEmpty ? "" : vault.openStored(sealed)
            }
            if OAuthSetup.providesToken(values) {
                // The same cache as the responders: a token one of them holds is used here too.
                let store = LockedConnection(context.store)
                settings.accessToken = {
                    let setup: OAuthSetup
                    do {
                        setup = try OAuthSetup(values: values, openSecret: { try vault.openStored($0) }, options: runtime.oauthOptions)
                    } catch let error as OAuthError {
                        throw SmtpError(oauth: error)
                    }
                    return try store.use { try AccessTokenSource(setup: setup, vault: vault, store: $0).token() }
                }
            }
            return settings
        } catch let incomplete as SmtpSettingsMapper.Incomplete {
            throw Problem(kind: .notSaved, description: "\(incomplete.message) (\(incomplete.field))")
        } catch {
            throw Problem(kind: .notSaved, description: "the saved settings cannot be used: \(error)")
        }
    }
}


/// What `--stored` commands share: the responder's configuration, a database store,
/// and the saved values.
struct StoredContext {
    let runtime: Runtime
    let store: SettingsStore
    let values: [String: String]

    /// Reads the configuration and the saved values as `serve` would.
    static func open(configPath: String?, environment: [String: String]) throws(StoredSmtpSettings.Problem) -> StoredContext {
        typealias Problem = StoredSmtpSettings.Problem
        let shownPath = configPath ?? environment["EMAILSETUP_CONFIG"] ?? ResponderConfig.defaultPath
        let runtime: Runtime
        do {
            runtime = try Runtime.start(configPath: configPath, environment: environment)
        } catch {
            throw Problem(kind: .configuration, description: "cannot use the responder configuration \(shownPath): \(error)")
        }
        let store = SettingsStore(configuration: runtime.databaseConfiguration, logger: runtime.logger)
        do {
            return StoredContext(runtime: runtime, store: store, values: try store.load().values)
        } catch let error as StorageError where error.code == .unavailable {
            throw Problem(kind: .database, description: "cannot reach the database configured in \(shownPath): \(error)")
        } catch {
            throw Problem(kind: .database, description: "cannot read the saved settings from the database configured in \(shownPath): \(error)")
        }
    }
}
