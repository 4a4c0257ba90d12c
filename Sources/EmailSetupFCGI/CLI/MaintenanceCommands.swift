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
///
/// Order of events, each safe to interrupt and run again: (1) a new data key is
/// made current — every old key stays readable; (2) one transaction re-seals the
/// password in `information` and in every history snapshot (values in the original
/// system's format are converted to v1 on the way) and writes an audit row;
/// (3) only after the commit, keys that no stored value uses any more are deleted.
/// The key that was current before stays one more rotation, so a save that sealed
/// with it just before the rotation and committed just after can still be opened.
///
/// What history holds: the sealed password of every version saved since the
/// password was last cleared (clearing removes every older copy, so a cleared
/// password cannot come back). The line it prints counts both places.
struct RotateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Make a new data key and re-seal every stored secret in one transaction.",
        discussion: """
            Re-seals the SMTP password in the settings and every sealed copy the settings \
            history holds: one per version saved since the password was last cleared \
            (clearing the password removes the older copies from history).
            """)

    @Option(name: .long, help: "Configuration file.") var config: String?

    @Flag(name: .long, help: "Also delete the previous key when no stored value uses it (no save may be in flight).")
    var retirePrevious = false

    func run() throws {
        let runtime: Runtime
        do { runtime = try Runtime.start(configPath: config, environment: ProcessInfo.processInfo.environment) }
        catch { Runtime.fatal("\(error)") }
        let keyring = runtime.secrets.keyring
        let environment = ProcessInfo.processInfo.environment
        let actor = "cli:" + (environment["SUDO_USER"] ?? environment["USER"] ?? "uid\(getuid())")
        do {
            let previous = try keyring.currentKeyID()
            let newID = try keyring.rotate()
            let store = RepositoryFactory.make(runtime)
            _ = try store.migrate()
            let count = try store.rewriteSecrets(actor: actor) { try runtime.secrets.reseal($0) }
            // Committed: find the keys stored values still name, and retire the rest.
            var inUse: Set<String> = [newID]
            if !retirePrevious { inUse.insert(previous) }
            let current = try store.load()
            var sealedValues = [current.values[SettingsKey.password.rawValue] ?? ""]
            var historyCopies = 0
            var offset = 0
            while true {
                let page = try store.history(limit: 500, offset: offset)
                let values = page.map { $0.values[SettingsKey.password.rawValue] ?? "" }
                historyCopies += values.filter { !$0.isEmpty }.count
                sealedValues += values
                if page.count < 500 { break }
                offset += 500
            }
            for value in sealedValues where SealedSecret.isSealed(value) {
                if let id = try? SealedSecret(parsing: value).keyID { inUse.insert(id) }
            }
            let retired = try keyring.retireKeys(except: inUse)
            runtime.logger.info("data key rotated", metadata: ["new_key": "\(newID)", "resealed": "\(count)", "retired": "\(retired)"])
            let currentSet = !(current.values[SettingsKey.password.rawValue] ?? "").isEmpty
            print("rotated: new key \(newID); re-sealed \(count) stored secret(s) (the password: \(currentSet ? "set" : "not set"); "
                  + "sealed copies in the settings history: \(historyCopies), one per version since the password was last cleared); "
                  + "retired \(retired.isEmpty ? "none" : retired.joined(separator: ", "))")
        } catch {
            Runtime.fatal("rotate-key failed: \(error). Stored values are either all re-sealed or untouched; running rotate-key again is safe.")
        }
    }
}
