import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ProcessIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// `emailsetup serve`: the FastCGI responder (the default subcommand).
///
/// Listens on `--socket PATH` or `--listen HOST:PORT`, else on an inherited
/// socket (spawn-fcgi's fd 0, systemd's fd 3); with none of those it answers one
/// request as plain CGI from its environment and stdin.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve FastCGI on a socket (or an inherited one), or answer one CGI request.")

    @Option(name: .long, help: "Create and listen on this unix socket.")
    var socket: String?

    @Option(name: .long, help: "Listen on TCP HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000.")
    var listen: String?

    @Option(name: .long, help: "Worker threads (default: config `workers`, else 2 × cores).")
    var threads: Int?

    @Option(name: .long, help: "Configuration file (default: $EMAILSETUP_CONFIG or \(ResponderConfig.defaultPath)).")
    var config: String?

    func validate() throws {
        if socket != nil, listen != nil { throw ValidationError("use either --socket or --listen, not both") }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be from 1 to 256") }
    }

    func run() throws {
        try Self.serve(socket: socket, listen: listen, threads: threads, config: config,
                       environment: ProcessInfo.processInfo.environment)
    }

    /// `serve` with these options; `EmailSetupCommand.main` calls it directly when
    /// there are no arguments (plain CGI, spawn-fcgi, systemd), without ArgumentParser.
    static func serve(socket: String?, listen: String?, threads: Int?, config: String?,
                      environment: [String: String]) throws {
        let listener: FastCGIServer.Listener
        let runtime: Runtime
        if socket == nil, listen == nil, FastCGIServer.inheritedListener(environment: environment) == nil {
            // No FastCGI socket: one request as plain CGI (shared hosting). A test email
            // runs right here (one request per process), its audit through its own
            // connection. Start-up is every request's cost here, so the runtime leaves
            // what this request may not need (the RSA transport key) for first use.
            do {
                runtime = try Runtime.start(configPath: config, environment: environment, oneRequest: true)
            } catch {
                Runtime.fatal("\(error)")
            }
            let handle = runtime.makeHandler(synchronousNotifications: true)
            let status = CGIResponder.answerOneRequest(handler: { request in
                handle(request).completed(using: RepositoryFactory.make(runtime))
            }, environment: environment)
            throw ExitCode(status)
        }
        do {
            runtime = try Runtime.start(configPath: config, environment: environment)
        } catch {
            Runtime.fatal("\(error)")
        }
        let logger = runtime.logger
        if let socket {
            listener = .unixSocket(path: socket, mode: runtime.config.socketMode, group: runtime.config.socketGroup)
        } else if let listen {
            guard let (host, port) = Self.parseHostPort(listen) else {
                Runtime.fatal("--listen \(listen): expected HOST:PORT, e.g. 127.0.0.1:9000")
            }
            listener = .tcp(host: host, port: port)
        } else if let fd = FastCGIServer.inheritedListener(environment: environment) {
            listener = .inherited(fd: fd)
        } else {
            Runtime.fatal("the inherited FastCGI socket went away during start-up")
        }

        let server: FastCGIServer
        do {
            server = try FastCGIServer(listener: listener, logger: logger)
        } catch {
            Runtime.fatal("\(error)")
        }
        runtime.migrateAtStart()
        let workers = threads ?? runtime.config.workers
        SignalWatcher.onTermination { signal in
            logger.info("signal received; finishing in-flight requests", metadata: ["signal": "\(signal)"])
            server.stop()
        }
        // After the signal mask, like the workers, so its threads inherit it.
        let smtpPool = runtime.makeSmtpPool()
        logger.info("serving FastCGI", metadata: ["listener": "\(listener)", "workers": "\(workers)",
                                                  "smtp_sessions": "\(runtime.config.smtpSessions)",
                                                  "auth": "\(runtime.config.access.mode.rawValue)"])
        server.run(workers: workers, smtpPool: smtpPool) { runtime.makeHandler() }
        smtpPool.finish(timeout: runtime.config.smtpSessionLimit + 1)
        runtime.finishNotifications()
        logger.info("stopped")
    }

    /// "127.0.0.1:9000", "[::1]:9000", "localhost:9000" → (host, port).
    static func parseHostPort(_ text: String) -> (String, Int)? {
        let host: String, portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else { return nil }
        return (host, port)
    }
}

/// Blocks SIGTERM/SIGINT in every thread and waits for them on one thread, so
/// the handler runs as ordinary code rather than in signal context.
enum SignalWatcher {
    static func onTermination(_ action: @escaping @Sendable (Int32) -> Void) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        // Must happen before worker threads start: they inherit the mask.
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waitOn = set
        startThread(stackSize: 64 << 10) {
            var signal: Int32 = 0
            var waitSet = waitOn
            sigwait(&waitSet, &signal)
            action(signal)
        }
    }
}
