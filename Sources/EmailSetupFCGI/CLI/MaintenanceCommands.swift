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
        // Imports an old key_dir (or makes the first keys) and proves the KEK opens them.
        runtime.prepareKeysAtStart()
    }
}

/// `emailsetup rotate-key`: a new data key, every stored secret re-sealed, in one
/// transaction for every host at once.
///
/// One transaction: a new data key (wrapped by the KEK) is added to `secret_keys` and
/// made current; the password in `information` and in every history snapshot, the
/// other sealed settings and sign-in values, the sealed access tokens and pending
/// sign-ins are re-sealed with it (values in the original system's format become v1);
/// keys nothing uses any more are deleted; an audit row is written. The key that was
/// current before stays one more rotation, so a save that sealed with it just before
/// the rotation and committed just after can still be opened. Other hosts follow at
/// once: every seal reads the current key id, and a value under an id they do not
/// know yet makes them read that key from the database. No restart, nothing to copy.
struct RotateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Make a new data key and re-seal every stored secret in one transaction (all hosts at once).",
        discussion: """
            Re-seals the SMTP password in the settings and every sealed copy the settings \
            history holds: one per version saved since the password was last cleared \
            (clearing the password removes the older copies from history).
            """)

    @Option(name: .long, help: "Configuration file.") var config: String?

    @Flag(name: .long, help: "Also delete the previous key (no save may be in flight).")
    var retirePrevious = false

    func run() throws {
        let runtime: Runtime
        do { runtime = try Runtime.start(configPath: config, environment: ProcessInfo.processInfo.environment) }
        catch { Runtime.fatal("\(error)") }
        let keyring = runtime.secrets.keyring
        let environment = ProcessInfo.processInfo.environment
        let actor = "cli:" + (environment["SUDO_USER"] ?? environment["USER"] ?? "uid\(getuid())")
        do {
            let store = RepositoryFactory.make(runtime)
            _ = try store.migrate()
            let previous = try keyring.currentKeyID()
            let (newID, count, retired) = try store.withTransaction { db in
                let newID = try keyring.rotate(on: db)
                let count = try store.rewriteSecrets(actor: actor) { stored in
                    try SecretOpener.format(of: stored) == .sealed
                        ? keyring.reseal(stored, to: newID) : keyring.seal(try runtime.secrets.open(stored), with: newID)
                }
                let retired = try keyring.retireKeys(on: db, keeping: retirePrevious ? [newID] : [newID, previous])
                return (newID, count, retired)
            }
            let current = try store.load()
            var historyCopies = 0
            var offset = 0
            while true {
                let page = try store.history(limit: 500, offset: offset)
                historyCopies += page.filter { !($0.values[SettingsKey.password.rawValue] ?? "").isEmpty }.count
                if page.count < 500 { break }
                offset += 500
            }
            runtime.logger.info("data key rotated", metadata: ["new_key": "\(newID)", "resealed": "\(count)", "retired": "\(retired)"])
            let currentSet = !(current.values[SettingsKey.password.rawValue] ?? "").isEmpty
            print("rotated: new key \(newID); re-sealed \(count) stored secret(s) (the password: \(currentSet ? "set" : "not set"); "
                  + "sealed copies in the settings history: \(historyCopies), one per version since the password was last cleared); "
                  + "retired \(retired.isEmpty ? "none" : retired.joined(separator: ", ")); every host uses the new key now")
        } catch {
            Runtime.fatal("rotate-key failed: \(error). Stored values are either all re-sealed or untouched; running rotate-key again is safe.")
        }
    }
}

/// `emailsetup rotate-kek --new-kek-file F`: every key in the database re-wrapped under
/// the KEK in F (one transaction), then F's contents put in place of this host's KEK
/// file (written beside it and renamed over it). Other hosts keep the keys they have
/// already unwrapped in memory but need F before they read a key again: copy the
/// file to them right away. Running it again with the same F is safe (rows already
/// under it are left alone), also after this host's file was replaced.
struct RotateKEKCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-kek",
        abstract: "Re-wrap every key in the database with a new key-encryption key, then install it here.",
        discussion: """
            Make the new file first: (umask 077; openssl rand -hex 32 > /root/kek.new). \
            Afterwards copy the installed KEK file to every other host (or update the \
            systemd credential's source there and restart).
            """)

    @Option(name: .long, help: "Configuration file.") var config: String?

    @Option(name: .long, help: "The new KEK file (64 hex characters, mode 0600).") var newKekFile: String

    func run() throws {
        let runtime: Runtime
        do { runtime = try Runtime.start(configPath: config, environment: ProcessInfo.processInfo.environment) }
        catch { Runtime.fatal("\(error)") }
        let location = runtime.config.kekLocation
        do {
            _ = try runtime.migrate()
            let (kekID, count) = try runtime.secrets.keyring.rewrapKeys(withKEKFile: newKekFile)
            runtime.logger.info("key-encryption key rotated", metadata: ["kek_id": "\(kekID)", "rewrapped": "\(count)"])
            guard location.origin != .systemdCredential else {
                print("re-wrapped \(count) key(s) under KEK \(kekID). \(location) is read-only: put \(newKekFile) in place of its source on every host and restart")
                return
            }
            try location.replace(withContentsOf: newKekFile)
            print("re-wrapped \(count) key(s) under KEK \(kekID) and installed it as \(location.path); copy that file to every other host now")
        } catch {
            Runtime.fatal("rotate-kek failed: \(error). Keys are either all re-wrapped or untouched; running rotate-kek again with the same file is safe.")
        }
    }
}
