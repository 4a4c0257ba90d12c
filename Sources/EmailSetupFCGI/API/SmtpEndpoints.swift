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
import Synchronization
import Logging
import OAuth
import Smtp
import Storage

/// POST email_test/{address} and POST email_check: prove the saved settings with a
/// real SMTP session and answer with the outcome — or a diagnosis a person can act on.
///
/// Everything that can answer at once does so here, on the request worker: a bad
/// address (400), settings never saved (409), a full SMTP pool (503) and the rate
/// limits (429, counted at arrival). The session itself is returned as `SmtpWork` for
/// the SMTP work pool, bounded by the saved timeouts and by `sessionLimit`, and ended
/// as soon as the client goes away.
extension APIHandler {
    func sendTestEmail(to address: String, request: Request, actor: String) throws -> Response {
        let recipient: EmailAddress
        switch EmailAddress.validate(address) {
        case .success(let a): recipient = a
        case .failure(let e): throw APIError.badRequest("address", "is not a valid email address: \(e.reason)")
        }
        let snapshot = try repository.loadSettings()
        let settings = try sessionSettings(snapshot)
        let slot = try reserveSmtpSlot()
        try enforceRateLimit(action: "test.send", actor: actor, request: request, version: snapshot.version)

        let now = Date()
        let from = try EmailAddress(settings.senderAddress ?? "")
        let message = Message(
            from: try Mailbox(displayName: "Email setup", address: from),
            to: [Mailbox(recipient)],
            subject: "Test email from \(systemName) (settings version \(snapshot.version))",
            text: """
            This is a test email from the Email setup page of \(systemName).

            Sent:              \(Self.timestamp(now))
            Requested by:      \(actor)\(request.remoteAddress.map { " from \($0)" } ?? "")
            Settings version:  \(snapshot.version)
            SMTP server:       \(settings.host):\(settings.port) (\(snapshot.values[SettingsKey.connectionType.rawValue] ?? "None"), authentication \(snapshot.values[SettingsKey.authenticationType.rawValue] ?? "None"))

            If you can read this, outgoing email works with these settings.
            """,
            date: now,
            messageID: Message.makeMessageID(domain: from.asciiDomain))
        let bytes: [UInt8]
        do { bytes = try message.rendered() } catch {
            throw APIError.badRequest("address", "cannot be used in a message: \(error)")
        }
        let record = SessionRecord(action: "test.send", actor: actor, remoteAddress: request.remoteAddress,
                                   version: snapshot.version, host: settings.host, port: settings.port, to: recipient.address)
        let smtp = self.smtp, logger = self.logger, envelope = message.envelope, messageID = message.messageID, dns = domainCheckDNS
        return sessionWork(slot: slot, record: record, settings: settings, snapshot: snapshot) { settings in
            let started = Date()
            let report = try smtp.send(envelope: envelope, message: bytes, settings: settings)
            logger.info("test email sent", metadata: ["to": "\(recipient.address)", "version": "\(snapshot.version)",
                                                      "ms": "\(Int(Date().timeIntervalSince(started) * 1000))"])
            return [
                ("ok", true), ("settings_version", .string(String(snapshot.version))), ("recipient", .string(recipient.address)),
                ("message_id", .string("<\(messageID)>")),
                ("server_reply", .string("\(report.reply.code) \(report.reply.text)")),
            ] + SmtpJSON.sessionFacts(timings: report.timingsMilliseconds, transcript: report.transcript, server: report.server)
                + [Self.domainCheckMember(dns, from: from, smtpHost: settings.host, remoteAddress: report.server.remoteAddress)]
        }
    }

    func checkConnection(request: Request, actor: String) throws -> Response {
        let snapshot = try repository.loadSettings()
        let settings = try sessionSettings(snapshot)
        let slot = try reserveSmtpSlot()
        try enforceRateLimit(action: "test.check", actor: actor, request: request, version: snapshot.version)
        let record = SessionRecord(action: "test.check", actor: actor, remoteAddress: request.remoteAddress,
                                   version: snapshot.version, host: settings.host, port: settings.port, to: nil)
        let smtp = self.smtp
        return sessionWork(slot: slot, record: record, settings: settings, snapshot: snapshot) { settings in
            let report = try smtp.check(settings)
            return [("ok", true), ("settings_version", .string(String(snapshot.version)))]
                + SmtpJSON.sessionFacts(timings: report.timingsMilliseconds, transcript: report.transcript, server: report.server)
        }
    }

    /// The pool side of a test email or check: `session` runs with the abort signal and
    /// the access token; its answer's members become the success answer with an audit
    /// row, and a failure becomes the diagnosis (with verified advice) and its audit row.
    private func sessionWork(slot: SmtpSlot, record: SessionRecord, settings: SmtpSettings, snapshot: SettingsSnapshot,
                             _ session: @escaping @Sendable (SmtpSettings) throws -> [(String, JSONValue)]) -> Response {
        let smtp = self.smtp, logger = self.logger, tokens = tokenSourceMaker(snapshot)
        return .deferred(SmtpWork(slot: slot) { repository, abort, progress in
            var settings = settings
            settings.abort = abort
            settings.progress = progress.map { sink in SmtpProgress { sink(WorkProgress($0)) } }
            let started = Date()
            do {
                let data = try Self.withAccessToken(tokens, settings, repository, abort, session)
                try record.audit("success", detail: [], in: repository)
                return .success(.object(data))
            } catch let error as SmtpError {
                settings.progress = nil  // the probes of `advise` run on threads of their own
                if SmtpAdvice.warrantsProbing(error) {
                    progress?(WorkProgress(step: "advice", label: "trying other ports and connection security",
                                           limitSeconds: max(0, settings.sessionTimeout - Date().timeIntervalSince(started))))
                }
                return Self.failed(smtp.advise(error, settings: settings, startedAt: started), record: record, logger: logger, repository: repository)
            } catch {
                return Self.unexpected(error, logger: logger)
            }
        })
    }

    /// What the audit row of one session says: who asked, for which version, and
    /// where the session went (host and port, so probing is visible in the log).
    struct SessionRecord: Sendable {
        var action: String
        var actor: String
        var remoteAddress: String?
        var version: Int
        var host: String
        var port: Int
        var to: String?

        func audit(_ outcome: String, detail: [(String, JSONValue)], in repository: WorkRepository) throws {
            var members: [(String, JSONValue)] = [("host", .string(host)), ("port", .number(Double(port)))]
            if let to { members.append(("to", .string(to))) }
            let text = String(decoding: JSONValue.object(members + detail).serialized(), as: UTF8.self)
            try repository.appendAudit(action: action, outcome: outcome, actor: actor, remoteAddress: remoteAddress,
                                       detail: text, settingsVersion: version)
        }
    }

    /// A failed session: its audit row (`failure`, or `abandoned` when the client went
    /// away), one log line, and the diagnosis answer.
    private static func failed(_ error: SmtpError, record: SessionRecord, logger: Logger, repository: WorkRepository) -> Response {
        let outcome = error.wasAbandoned ? "abandoned" : "failure"
        do {
            try record.audit(outcome, detail: auditDetail(error), in: repository)
        } catch {
            logger.error("audit row not written", metadata: ["action": "\(record.action)", "error": "\(error)"])
        }
        logger.notice(error.wasAbandoned ? "SMTP session abandoned: the client went away" : "\(record.action) failed", metadata: [
            "stage": "\(error.stage.rawValue)", "kind": "\(error.kind.rawValue)", "hint": "\(error.hint)",
            "host": "\(record.host)", "port": "\(record.port)",
        ])
        return ErrorResponses.diagnosis(error, version: record.version)
    }

    private static func unexpected(_ error: any Error, logger: Logger) -> Response {
        ErrorResponses.response(for: error, logger: logger)
    }

    /// A place in the SMTP work pool, or 503 at once: a test never waits behind others.
    func reserveSmtpSlot() throws -> SmtpSlot {
        guard let slot = smtpCapacity.tryReserve() else {
            throw APIError(503, "smtp",
                           "All \(smtpCapacity.capacity) SMTP sessions of this server are busy with test emails or checks (a slow SMTP server may hold them); try again in a few seconds.",
                           headers: [("Retry-After", "5")])
        }
        return slot
    }

    // MARK: - Parts

    /// Runs `session` with the access token of `tokens` (none: as it is). When the SMTP
    /// server refuses a token that came from the cache with time left (revoked at the
    /// provider, or the app's consent withdrawn), the token is renewed once and the
    /// session tried again, so the answer is about the sign-in ("sign in again"), not
    /// a 535 that looks like SMTP AUTH being off.
    static func withAccessToken<T>(_ tokens: TokenSource?,
                                   _ settings: SmtpSettings, _ repository: WorkRepository, _ abort: SessionAbort?,
                                   _ session: (SmtpSettings) throws -> T) throws -> T {
        guard let tokens else { return try session(settings) }
        let used = UsedToken()
        let connection = LockedConnection(repository)
        var first = settings
        first.accessToken = {
            let issued = try connection.use { try tokens($0, abort, nil) }
            used.issued = issued
            return issued.value
        }
        do {
            return try session(first)
        } catch let error as SmtpError where error.stage == .auth && error.kind == .authRejected && used.issued?.fromCache == true {
            var second = settings
            let refused = used.issued?.value
            second.accessToken = { try connection.use { try tokens($0, abort, refused) }.value }
            return try session(second)
        }
    }

    /// For OAuth settings: how a pool thread gets the session's access token (through
    /// its own connection's cache; `replacing` a token the server refused), else nil.
    private func tokenSourceMaker(_ snapshot: SettingsSnapshot) -> TokenSource? {
        guard OAuthSetup.providesToken(snapshot.values), let vault else { return nil }
        let values = snapshot.values, options = oauthOptions
        return { repository, abort, refused in
            let setup: OAuthSetup
            do {
                setup = try OAuthSetup(values: values, openSecret: { try vault.openStored($0) }, options: options, abort: abort)
            } catch let error as OAuthError {
                throw SmtpError(oauth: error)
            }
            return try AccessTokenSource(setup: setup, vault: vault, store: repository).issued(replacing: refused)
        }
    }

    /// The saved settings as `SmtpSettings`; the password is opened only when the
    /// client authenticates.
    private func sessionSettings(_ snapshot: SettingsSnapshot) throws -> SmtpSettings {
        let sealed = snapshot.values[SettingsKey.password.rawValue] ?? ""
        let vault = self.vault
        // Not saved yet, or a saved value that no longer parses: EmailSettings.Incomplete (409, ErrorResponses).
        var settings = try EmailSettings(stored: snapshot.values).smtpSettings(deniedNetworks: deniedNetworks) { [vault] in
            guard let vault else { return "" }
            return try vault.openStored(sealed)
        }
        // Whatever the saved timeouts say, the session ends before the web server
        // gives up on us, and the timeout hint names the limit that stopped it.
        if settings.sessionTimeout > sessionLimit {
            settings.sessionTimeout = sessionLimit
            settings.sessionLimitName = "smtp_session_limit of the responder"
        }
        return settings
    }

    /// Per user and overall, counted in MariaDB so all responders share the limit.
    private func enforceRateLimit(action: String, actor: String, request: Request, version: Int) throws {
        for (bucket, limit) in [("smtp-test:user:\(actor)", limits.perUser), ("smtp-test:all", limits.total)] {
            if case let .limited(retryAfter) = try repository.recordAndCount(bucket: String(bucket.prefix(191)), window: 60, limit: limit) {
                let seconds = max(1, Int(retryAfter.rounded(.up)))
                auditRefusal(action, "rate_limited", actor, request, version, detail: [("bucket", .string(bucket))])
                throw APIError(429, "rate_limit",
                               "Too many test emails and checks (at most \(limit) a minute\(bucket.hasSuffix(":all") ? " for everyone together" : " per user")); try again in \(seconds) s.",
                               headers: [("Retry-After", String(seconds))])
            }
        }
    }

    private func audit(_ action: String, _ outcome: String, _ actor: String, _ request: Request, _ version: Int,
                       detail: [(String, JSONValue)]) throws {
        let text = String(decoding: JSONValue.object(detail).serialized(), as: UTF8.self)
        try repository.appendAudit(action: action, outcome: outcome, actor: actor, remoteAddress: request.remoteAddress,
                                   detail: text, settingsVersion: version)
    }

    static func auditDetail(_ error: SmtpError) -> [(String, JSONValue)] {
        // The hint too, so the history's timeline can say what went wrong (never a secret: hints carry no credentials).
        var d: [(String, JSONValue)] = [("stage", .string(error.stage.rawValue)), ("kind", .string(error.kind.rawValue)),
                                        ("hint", .string(error.hint))]
        if let code = error.replyCode { d.append(("code", .number(Double(code)))) }
        if let enhanced = error.enhancedCode { d.append(("enhanced_code", .string(enhanced))) }
        return d
    }

    static func timestamp(_ date: Date) -> String {
        UTCTime.readable(date)
    }
}

/// The token a session's source handed out, to recognise it if the server refuses it.
/// How a pool thread gets a session's access token through its own repository
/// (`replacing` a token the server refused).
typealias TokenSource = @Sendable (WorkRepository, SessionAbort?, String?) throws -> AccessTokenSource.Issued

private final class UsedToken: Sendable {
    private let value = Mutex<AccessTokenSource.Issued?>(nil)
    var issued: AccessTokenSource.Issued? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
