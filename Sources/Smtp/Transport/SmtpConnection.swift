// The session's state and its command/reply I/O. The rest is in extensions, one
// concern per file: SmtpConnection+Setup (connect, greeting, EHLO, STARTTLS),
// +Auth, +Transaction (one message), +Pipeline (bulk) and +Errors.

/// One SMTP session (RFC 5321): connected, TLS negotiated, EHLO done and, when
/// configured, authenticated. Send any number of messages over it (RSET between them),
/// then `quit()`. Not thread-safe: one thread uses a connection at a time.
///
/// ```swift
/// let connection = try SmtpConnection.open(settings)
/// defer { connection.close() }
/// let report = try connection.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
///                                  message: Array(rendered))
/// print(report.reply.code)   // 250
/// ```
public final class SmtpConnection {
    let settings: SmtpSettings
    var stream: ByteStream
    var socket: SocketStream?
    var tls: TLSStream?
    let tlsContext: TLSContext?
    let reader = LineReader()
    var recorder: TranscriptRecorder
    var capabilities = SmtpCapabilities()
    var greeting = ""
    var certificate: SmtpCertificate?
    var tlsVersion: String?
    var cipher: String?
    var authMechanism: String?
    let remoteAddress: String
    var setupTimings: [String: Double] = [:]
    var messageTimings: [String: Double] = [:]
    var inMessage = false
    var deadline: Deadline
    var messagesStarted = 0
    var currentCommand = ""
    /// True once the stream failed (timeout, close, protocol error): nothing more is sent.
    public internal(set) var isBroken = false
    /// True once `quit()` or `close()` ran.
    public internal(set) var isClosed = false

    init(settings: SmtpSettings, stream: ByteStream, socket: SocketStream?, remoteAddress: String,
         start: Deadline, tlsContext: TLSContext? = nil) {
        self.settings = settings
        self.stream = stream
        self.socket = socket
        self.remoteAddress = remoteAddress
        self.recorder = TranscriptRecorder(start: start)
        self.recorder.peerUnproven = true
        self.deadline = Deadline(nanoseconds: start.nanoseconds + UInt64(max(0, settings.sessionTimeout) * 1e9))
        self.tlsContext = tlsContext
    }

    deinit { stream.close() }

    // MARK: Sending
    /// What is known about the server: capabilities, certificate, TLS version.
    public var server: SmtpServerInfo {
        SmtpServerInfo(remoteAddress: remoteAddress, greeting: greeting, capabilities: capabilities, certificate: certificate,
                       tlsVersion: tlsVersion, cipher: cipher, authMechanism: authMechanism)
    }

    var setupTimingsSnapshot: [String: Double] { setupTimings }

    /// The session's transcript so far (set-up, the last messages), credentials redacted.
    public var transcript: SmtpTranscript { recorder.transcript }

    /// Sends QUIT and closes. Throws when the server does not answer 221 in time (the
    /// connection is closed either way).
    public func quit() throws {
        guard !isClosed else { return }
        defer { abort() }
        guard !isBroken else { return }
        _ = try command("QUIT", stage: .quit, accepting: [221], enhanced: capabilities.enhancedStatusCodes)
    }

    /// Sends QUIT when possible and closes; never throws (a failed QUIT is in the transcript).
    public func close() {
        do { try quit() } catch { recorder.note("QUIT failed: \(error)") }
    }

    /// Closes without QUIT.
    func abort() {
        isClosed = true
        stream.close()
    }

    // MARK: I/O with stages

    /// The deadline of the next command: `commandTimeout` from now, capped by the session's.
    func commandDeadline() -> (Deadline, sessionLimited: Bool) {
        let own = Deadline.after(seconds: settings.commandTimeout)
        return own < deadline ? (own, false) : (deadline, true)
    }

    func record(stage: String, since start: Deadline) {
        let ms = Deadline.now().seconds(since: start) * 1000
        if inMessage { messageTimings[stage, default: 0] += ms } else { setupTimings[stage, default: 0] += ms }
    }

    /// Writes one command and reads its reply; throws unless the code is in `accepting`
    /// (nil: any code is returned).
    @discardableResult
    func command(_ line: String, redacted: String? = nil, stage: SmtpError.Stage, accepting: Set<Int>?, enhanced: Bool) throws -> SmtpReply {
        let name = redacted.map { _ in "AUTH" } ?? String(line.prefix { $0 != " " && $0 != ":" })
        recorder.client(redacted ?? line)
        var bytes = Array(line.utf8)
        bytes.append(0x0D); bytes.append(0x0A)
        try write(bytes, stage: stage, command: name)
        let reply = try readReply(stage: stage, command: name, enhanced: enhanced)
        if let accepting, !accepting.contains(reply.code) { throw replyError(reply, stage: stage) }
        return reply
    }

    func write(_ bytes: [UInt8], stage: SmtpError.Stage, command: String) throws {
        currentCommand = command
        let started = Deadline.now()
        let (limit, sessionLimited) = commandDeadline()
        settings.progress?.enter(stage, detail: command, until: limit)
        do {
            try stream.write(bytes, deadline: limit)
        } catch let failure as StreamFailure {
            throw streamError(failure, stage: stage, sessionLimited: sessionLimited)
        }
        record(stage: stage.rawValue, since: started)
    }

    func readReply(stage: SmtpError.Stage, command: String, enhanced: Bool = false) throws -> SmtpReply {
        currentCommand = command
        let started = Deadline.now()
        let (limit, sessionLimited) = commandDeadline()
        settings.progress?.enter(stage, detail: command, until: limit)
        defer { record(stage: stage.rawValue, since: started) }
        do {
            return try reader.readReply(from: stream, deadline: limit, enhancedCodes: enhanced) { recorder.server(bytes: $0) }
        } catch let failure as StreamFailure {
            throw streamError(failure, stage: stage, sessionLimited: sessionLimited)
        } catch let failure as ReplyParseFailure {
            isBroken = true
            let hint: String
            switch failure {
            case .lineTooLong(let limit):
                hint = "the server sent a line longer than \(limit) bytes without CRLF: it does not speak SMTP on port \(settings.port)"
            case .malformed(let line):
                // A peer that is not SMTP: only a short excerpt of what it sent is shown.
                let said = ReplyParser.excerpt(line)
                hint = stage == .greeting ? "the server does not speak SMTP on port \(settings.port) (it sent: \(said))"
                    : "the server's reply to \(command) is not SMTP (\(said))"
            case .tooLong(let limit):
                hint = "the server's reply to \(command) is longer than \(limit / 1024) KiB: it does not behave like an SMTP server"
            }
            recorder.note(hint)
            throw makeError(stage: stage, kind: .protocol, hint: hint, underlying: failure)
        }
    }
}
