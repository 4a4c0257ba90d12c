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
    private var stream: ByteStream
    private var socket: SocketStream?
    private(set) var tls: TLSStream?
    private let tlsContext: TLSContext?
    private let reader = LineReader()
    var recorder: TranscriptRecorder
    private(set) var capabilities = SmtpCapabilities()
    private var greeting = ""
    private var certificate: SmtpCertificate?
    private var tlsVersion: String?
    private var cipher: String?
    private var authMechanism: String?
    private let remoteAddress: String
    private var setupTimings: [String: Double] = [:]
    private var messageTimings: [String: Double] = [:]
    private var inMessage = false
    private var deadline: Deadline
    private var messagesStarted = 0
    private var currentCommand = ""
    /// True once the stream failed (timeout, close, protocol error): nothing more is sent.
    public private(set) var isBroken = false
    /// True once `quit()` or `close()` ran.
    public private(set) var isClosed = false

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

    /// Connects and sets up a session: resolve, connect (every address, each within
    /// `connectTimeout`), implicit TLS or STARTTLS, EHLO (HELO fallback), AUTH.
    ///
    /// - Parameter settings: server, security, authentication and timeouts.
    /// - Returns: a session ready for `send(envelope:message:)`.
    /// - Throws: ``SmtpError`` with the stage that failed; nothing is left open.
    ///
    /// ```swift
    /// let connection = try SmtpConnection.open(settings)
    /// ```
    public static func open(_ settings: SmtpSettings) throws -> SmtpConnection {
        try open(settings, tlsContext: nil)
    }

    /// - Parameter spinForReplies: wait for replies with ``ReplyWait`` (bulk sessions).
    static func open(_ settings: SmtpSettings, tlsContext: TLSContext?, recordTranscript: Bool = true,
                     spinForReplies: Bool = false) throws -> SmtpConnection {
        let start = Deadline.now()
        let sessionDeadline = Deadline.after(seconds: settings.sessionTimeout)
        // From here on the host is its canonical form: what is resolved, sent as SNI
        // and checked against the certificate is exactly what a settings form stored.
        var settings = settings
        let target = try ConnectTarget.host(settings.host)
        settings.host = target.ascii
        try validate(settings)
        let context = Diagnosis.Context(settings: settings)
        let socket: SocketStream
        var refused: [String] = []
        settings.progress?.enter(.connect, detail: "\(settings.host):\(settings.port)", limitSeconds: min(settings.connectTimeout, settings.sessionTimeout))
        do {
            socket = try SocketStream.connect(host: settings.host, port: settings.port,
                                              connectTimeout: settings.connectTimeout, deadline: sessionDeadline,
                                              abort: settings.abort) { [settings] addresses in
                let (allowed, refusals) = ConnectTarget.screen(addresses.map(\.text), host: target, denied: settings.deniedNetworks)
                refused = refusals
                guard !allowed.isEmpty else {
                    var transcript = TranscriptRecorder(start: start)
                    for refusal in refusals { transcript.note(refusal) }
                    throw SmtpError(stage: .connect, kind: .invalidInput, hint: refusals.first ?? "no address to connect to",
                                    transcript: transcript.transcript)
                }
                return allowed.map { addresses[$0] }
            }
        } catch let failure as ConnectFailure {
            let (stage, kind, hint) = Diagnosis.connect(failure, context: context)
            var transcript = TranscriptRecorder(start: start)
            for refusal in refused { transcript.note(refusal) }
            transcript.note("connect to \(settings.host):\(settings.port) failed: \(hint)")
            let underlying: any Error = { if case .abandoned = failure { return SessionAbandoned() } else { return failure } }()
            throw SmtpError(stage: stage, kind: kind, hint: hint, transcript: transcript.transcript, underlying: underlying)
        }
        if spinForReplies { socket.replyWait = ReplyWait() }
        let connection = SmtpConnection(settings: settings, stream: socket, socket: socket,
                                        remoteAddress: socket.remoteAddress, start: start, tlsContext: tlsContext)
        connection.recorder.enabled = recordTranscript
        for refusal in refused { connection.recorder.note(refusal) }
        connection.setupTimings["connect"] = Deadline.now().seconds(since: start) * 1000
        connection.recorder.note("connected to \(socket.remoteAddress) port \(settings.port)")
        do {
            try connection.setUp()
        } catch {
            connection.abort()
            throw error
        }
        return connection
    }

    /// Refuses settings that must not reach the wire.
    static func validate(_ settings: SmtpSettings) throws {
        guard (1...65535).contains(settings.port) else {
            throw SmtpError(stage: .connect, kind: .invalidInput, hint: "port \(settings.port) is not in 1–65535")
        }
        guard !settings.host.isEmpty, !settings.host.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) else {
            throw SmtpError(stage: .dns, kind: .invalidInput, hint: "the host name is empty or contains spaces or control characters")
        }
        let ehloName = settings.effectiveEHLOName
        try checkLine(ehloName, what: "the EHLO name", stage: .ehlo, allowSpace: false)
        guard ehloName.utf8.allSatisfy({ $0 < 0x80 }) else {
            throw SmtpError(stage: .ehlo, kind: .invalidInput, hint: "the EHLO name must be ASCII: write an international domain name in its xn-- form")
        }
        if settings.authentication != .none {
            try checkLine(settings.username, what: "the user name", stage: .auth, allowSpace: true)
        }
        if case .pinned(let pin) = settings.verification, SmtpClient.normalizedPin(pin) == nil {
            throw SmtpError(stage: .tls, kind: .invalidInput, hint: "the pinned fingerprint must be 64 hex digits (SHA-256 of the certificate)")
        }
    }

    /// Refuses CR, LF, NUL (and other control characters) instead of stripping them.
    static func checkLine(_ value: String, what: String, stage: SmtpError.Stage, allowSpace: Bool) throws {
        let bad = value.unicodeScalars.first { $0.value < 0x20 || $0.value == 0x7f || (!allowSpace && $0 == " ") }
        if let bad {
            let name = bad == "\r" ? "CR" : bad == "\n" ? "LF" : bad == "\0" ? "NUL" : bad == " " ? "a space" : "a control character"
            throw SmtpError(stage: stage, kind: .invalidInput, hint: "\(what) contains \(name); refused before sending")
        }
        if value.isEmpty && what == "the EHLO name" {
            throw SmtpError(stage: stage, kind: .invalidInput, hint: "the EHLO name is empty")
        }
    }

    /// Greeting onwards (the stream is connected). Internal so tests can drive it over a scripted peer.
    func setUp() throws {
        try Self.validate(settings)
        if settings.security == .implicitTLS {
            try startTLS()
        }
        let greetingReply = try readReply(stage: .greeting, command: "greeting")
        guard greetingReply.code == 220 else { throw replyError(greetingReply, stage: .greeting) }
        greeting = greetingReply.text
        try hello()
        recorder.peerUnproven = false
        if settings.security == .startTLSRequired || settings.security == .startTLSOpportunistic {
            try upgradeWithSTARTTLS()
        }
        try authenticate()
        recorder.markSetupDone()
    }

    // MARK: EHLO, STARTTLS, AUTH

    private func hello() throws {
        let name = settings.effectiveEHLOName
        let reply = try command("EHLO \(name)", stage: .ehlo, accepting: [250, 500, 502], enhanced: false)
        if reply.code == 250 {
            capabilities = SmtpCapabilities(ehloLines: reply.lines)
        } else {
            recorder.note("EHLO not supported; falling back to HELO")
            _ = try command("HELO \(name)", stage: .ehlo, accepting: [250], enhanced: false)
            capabilities = SmtpCapabilities()
            capabilities.extended = false
        }
    }

    private func upgradeWithSTARTTLS() throws {
        let required = settings.security == .startTLSRequired
        guard capabilities.startTLS else {
            if required {
                throw makeError(stage: .starttls, kind: .tlsHandshake, hint: Diagnosis.startTLSNotOffered(port: settings.port))
            }
            recorder.note("the server does not offer STARTTLS; continuing without TLS")
            return
        }
        let reply = try command("STARTTLS", stage: .starttls, accepting: [220, 454, 500, 501, 502, 503], enhanced: capabilities.enhancedStatusCodes)
        guard reply.code == 220 else {
            if required { throw replyError(reply, stage: .starttls) }
            recorder.note("STARTTLS refused; continuing without TLS")
            return
        }
        // RFC 3207 / CVE-2011-0411: whatever came with or after the 220 is plaintext an
        // attacker may have injected; it must not be read as if it came over TLS.
        let discarded = reader.discardBuffered()
        if discarded > 0 { recorder.note("discarded \(discarded) bytes the server sent before the TLS handshake") }
        try startTLS()
        try hello()
    }

    private func startTLS() throws {
        guard let socket else {
            throw makeError(stage: .tls, kind: .tlsHandshake, hint: "TLS needs a socket")
        }
        let started = Deadline.now()
        let context: TLSContext
        do {
            context = try tlsContext ?? TLSContext.shared(loadTrustStore: settings.verification == .full, extraCAPEM: settings.extraCAPEM)
        } catch let error as SmtpError {
            throw withContext(error)
        }
        let stream: TLSStream
        do {
            stream = try TLSStream(socket: socket, context: context, serverName: settings.host, checkName: settings.verification == .full)
            self.stream = stream
            self.tls = stream
            currentCommand = "TLS handshake"
            let (limit, sessionLimited) = commandDeadline()
            settings.progress?.enter(.tls, detail: currentCommand, until: limit)
            do {
                try stream.handshake(deadline: limit)
            } catch let failure as StreamFailure {
                certificate = stream.peerCertificate
                throw streamError(failure, stage: .tls, sessionLimited: sessionLimited)
            }
        } catch let failure as StreamFailure {
            throw streamError(failure, stage: .tls, sessionLimited: false)
        }
        certificate = stream.peerCertificate
        tlsVersion = stream.protocolVersion
        cipher = stream.cipherName
        record(stage: "tls", since: started)
        if let cert = certificate {
            recorder.note("TLS \(stream.protocolVersion) \(stream.cipherName); certificate \(cert.subject), issuer \(cert.issuer), valid until \(cert.notAfter), SHA-256 \(cert.sha256Fingerprint)")
        }
        switch settings.verification {
        case .none:
            recorder.note("certificate not verified (verification None)")
        case .pinned(let pin):
            let expected = SmtpClient.normalizedPin(pin) ?? pin
            guard let cert = certificate else {
                throw makeError(stage: .tls, kind: .tlsVerify, hint: "the server sent no certificate to compare with the pin")
            }
            guard cert.sha256Fingerprint == expected else {
                throw makeError(stage: .tls, kind: .tlsVerify,
                                hint: "certificate fingerprint \(cert.sha256Fingerprint) does not match the pinned \(expected); pin the new one only after checking it")
            }
            recorder.note("certificate matches the pinned fingerprint")
        case .full:
            let result = stream.verifyResult
            guard result.isOK else {
                throw makeError(stage: .tls, kind: .tlsVerify,
                                hint: Diagnosis.verification(result, certificate: certificate, host: settings.host),
                                underlying: StreamFailure.tls(function: "SSL_get_verify_result", errors: ["\(result.code): \(result.message)"]))
            }
            recorder.note("certificate verified for \(settings.host)")
        }
    }

    /// Mechanisms that send a reusable secret as it is: never without TLS unless allowed.
    private static let cleartextMechanisms: Set<String> = ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"]

    private func authenticate() throws {
        let wanted: String
        switch settings.authentication {
        case .none: return
        case .plain: wanted = "PLAIN"
        case .login: wanted = "LOGIN"
        case .cramMD5: wanted = "CRAM-MD5"
        case .xoauth2: wanted = "XOAUTH2"
        case .oauthBearer: wanted = "OAUTHBEARER"
        case .auto: wanted = "AUTO"
        }
        let oauth = OAuthSASL.mechanisms.contains(wanted)
        let encrypted = tls != nil
        let cleartextAllowed = encrypted || settings.allowCleartextAuthentication
        let offered = capabilities.authMechanisms
        guard !offered.isEmpty else {
            throw makeError(stage: .auth, kind: .mechanismUnsupported,
                            hint: encrypted ? "the server offers no AUTH; choose authentication None"
                                : "the server offers no AUTH on this unencrypted connection; set Connection security to STARTTLS or SSL/TLS, or Sign-in method to None")
        }
        let mechanism: String
        if wanted == "AUTO" {
            // A configured token source means the administrator chose OAuth 2.0.
            let preference = (settings.accessToken != nil ? OAuthSASL.mechanisms : []) + ["CRAM-MD5", "PLAIN", "LOGIN"]
            let candidates = preference.filter(offered.contains)
            guard let best = candidates.first(where: { !Self.cleartextMechanisms.contains($0) || cleartextAllowed }) else {
                let secret = settings.accessToken != nil ? "the access token or password" : "the password"
                throw makeError(stage: .auth, kind: .mechanismUnsupported,
                                hint: candidates.isEmpty ? "the server offers AUTH \(offered.joined(separator: " ")), none of \(preference.joined(separator: ", "))"
                                    : "refusing to send \(secret) without TLS (the server offers \(candidates.joined(separator: " ")) only); set Connection security to STARTTLS or SSL/TLS")
            }
            mechanism = best
        } else {
            guard offered.contains(wanted) else {
                throw makeError(stage: .auth, kind: .mechanismUnsupported,
                                hint: "the server offers AUTH \(offered.joined(separator: " ")), not \(wanted); choose one of these or Auto")
            }
            guard !Self.cleartextMechanisms.contains(wanted) || cleartextAllowed else {
                throw makeError(stage: .auth, kind: .mechanismUnsupported,
                                hint: oauth ? "refusing to send the access token with \(wanted) without TLS; set Connection security to STARTTLS or SSL/TLS"
                                    : "refusing to send the password with \(wanted) without TLS; set Connection security to STARTTLS or SSL/TLS, or Sign-in method to CRAM-MD5")
            }
            mechanism = wanted
        }
        if OAuthSASL.mechanisms.contains(mechanism) {
            try authenticate(withTokenUsing: mechanism)
            authMechanism = mechanism
            return
        }
        let password: String
        do {
            password = try settings.password()
        } catch {
            throw makeError(stage: .auth, kind: .invalidInput, hint: "the password could not be read: \(error)", underlying: error)
        }
        guard !password.utf8.contains(0) else {
            throw makeError(stage: .auth, kind: .invalidInput, hint: "the password contains NUL; refused before sending")
        }
        let user = settings.username
        let enhanced = capabilities.enhancedStatusCodes
        switch mechanism {
        case "PLAIN":
            _ = try command("AUTH PLAIN " + AuthEncoding.plain(username: user, password: password), redacted: "AUTH PLAIN <redacted>",
                            stage: .auth, accepting: [235], enhanced: enhanced)
        case "LOGIN":
            _ = try command("AUTH LOGIN", stage: .auth, accepting: [334], enhanced: enhanced)
            _ = try command(AuthEncoding.login(user), redacted: "<redacted user name>", stage: .auth, accepting: [334], enhanced: enhanced)
            _ = try command(AuthEncoding.login(password), redacted: "<redacted password>", stage: .auth, accepting: [235], enhanced: enhanced)
        default:
            let challenge = try command("AUTH CRAM-MD5", stage: .auth, accepting: [334], enhanced: enhanced)
            guard let response = AuthEncoding.cramMD5(username: user, password: password, challengeBase64: challenge.lines.first ?? "") else {
                _ = try? command("*", stage: .auth, accepting: [501], enhanced: enhanced)
                throw makeError(stage: .auth, kind: .protocol, hint: "the server's CRAM-MD5 challenge is not base64")
            }
            _ = try command(response, redacted: "<redacted CRAM-MD5 response>", stage: .auth, accepting: [235], enhanced: enhanced)
        }
        authMechanism = mechanism
    }

    // MARK: Sending

    /// What is known about the server: capabilities, certificate, TLS version.
    public var server: SmtpServerInfo {
        SmtpServerInfo(remoteAddress: remoteAddress, greeting: greeting, capabilities: capabilities, certificate: certificate,
                       tlsVersion: tlsVersion, cipher: cipher, authMechanism: authMechanism)
    }

    var setupTimingsSnapshot: [String: Double] { setupTimings }

    /// The session's transcript so far (set-up, the last messages), credentials redacted.
    public var transcript: SmtpTranscript { recorder.transcript }

    /// Sends one message: RSET (from the second message on), MAIL FROM, RCPT TO for each
    /// recipient, DATA, the dot-stuffed content — pipelined when the server offers PIPELINING.
    ///
    /// - Parameters:
    ///   - envelope: sender and recipients; no CR, LF, NUL or angle brackets.
    ///   - message: the rendered RFC 5322 message. Bare LF/CR become CRLF; NUL and lines
    ///     over 998 octets are refused. The transport dot-stuffs it.
    /// - Returns: the report, with each recipient's outcome when some were refused.
    /// - Throws: ``SmtpError`` when no recipient got the message.
    ///
    /// ```swift
    /// let report = try connection.send(envelope: envelope, message: bytes)
    /// ```
    public func send(envelope: Envelope, message: [UInt8]) throws -> SmtpDeliveryReport {
        guard !isBroken, !isClosed else {
            throw makeError(stage: .mail, kind: .protocol, hint: "the connection is no longer usable; open a new one")
        }
        if messagesStarted > 0 { deadline = Deadline.after(seconds: settings.sessionTimeout) }
        let transcriptStart = messagesStarted == 0 ? 0 : recorder.beginMessage()
        messageTimings = [:]
        inMessage = true
        defer { inMessage = false }
        let transaction = try prepareTransaction(envelope: envelope, message: message)
        let enhanced = capabilities.enhancedStatusCodes
        let outcomes: [SmtpRecipientOutcome]
        if capabilities.pipelining {
            // RFC 2920: RSET, MAIL and RCPT may be grouped; DATA ends the group.
            try write(commandGroup(transaction), stage: .mail, command: "MAIL FROM")
            let replies = try readGroupReplies(transaction)
            if replies.data.code == 354 && !replies.transactionValid {
                try endEmptyData()
            }
            outcomes = try evaluate(replies, transaction)
        } else {
            if transaction.reset { _ = try command("RSET", stage: .mail, accepting: [250], enhanced: enhanced) }
            _ = try command(transaction.mail, stage: .mail, accepting: [250], enhanced: enhanced)
            var rcptReplies: [SmtpReply] = []
            for line in transaction.rcpts {
                rcptReplies.append(try command(line, stage: .rcpt, accepting: nil, enhanced: enhanced))
            }
            let accepted = try recipientOutcomes(rcptReplies, transaction)
            _ = try command("DATA", stage: .data, accepting: [354], enhanced: enhanced)
            outcomes = accepted
        }
        recordContent(transaction)
        try write(transaction.prepared.payload, stage: .data, command: "end of data")
        let final = try readReply(stage: .data, command: "end of data", enhanced: enhanced)
        guard final.code == 250 else { throw replyError(final, stage: .data) }
        return report(outcomes: outcomes, final: final, transaction: transaction, transcriptStart: transcriptStart)
    }

    /// One message, checked and encoded, ready for the wire.
    struct Transaction {
        var envelope: Envelope
        var prepared: DataEncoding.Prepared
        var mail: String
        var rcpts: [String]
        var reset: Bool
    }

    /// The replies to one pipelined group.
    struct GroupReplies {
        var reset: SmtpReply?
        var mail: SmtpReply
        var rcpts: [SmtpReply]
        var data: SmtpReply

        /// True when the server took MAIL and at least one RCPT.
        var transactionValid: Bool {
            (reset.map { $0.code == 250 } ?? true) && mail.code == 250 && rcpts.contains { $0.code == 250 || $0.code == 251 }
        }
    }

    /// Local checks (nothing reaches the wire when they fail) and the MAIL/RCPT lines.
    private func prepareTransaction(envelope: Envelope, message: [UInt8]) throws -> Transaction {
        try Self.checkAddress(envelope.from, what: "the sender address", stage: .mail)
        guard !envelope.recipients.isEmpty else {
            throw makeError(stage: .rcpt, kind: .invalidInput, hint: "the envelope has no recipient")
        }
        for recipient in envelope.recipients {
            try Self.checkAddress(recipient, what: "the recipient address \(ReplyParser.printable(recipient))", stage: .rcpt)
            if recipient.isEmpty { throw makeError(stage: .rcpt, kind: .invalidInput, hint: "a recipient address is empty") }
        }
        let prepared: DataEncoding.Prepared
        do {
            prepared = try DataEncoding.prepare(message)
        } catch let failure as DataEncoding.Failure {
            switch failure {
            case .nul(let offset):
                throw makeError(stage: .data, kind: .invalidInput, hint: "the message contains a NUL byte at offset \(offset); refused before sending")
            case .lineTooLong(let line, let length):
                throw makeError(stage: .data, kind: .invalidInput, hint: "line \(line) of the message is \(length)+ octets; SMTP allows 998 — encode the body (quoted-printable)")
            }
        }
        let needsUTF8 = envelope.requiresSMTPUTF8
        if needsUTF8 && !capabilities.smtpUTF8 {
            throw makeError(stage: .mail, kind: .mechanismUnsupported,
                            hint: "an address has non-ASCII characters and the server does not offer SMTPUTF8; use ASCII addresses")
        }
        if prepared.hasEightBit && !capabilities.eightBitMIME && !capabilities.smtpUTF8 {
            throw makeError(stage: .mail, kind: .mechanismUnsupported,
                            hint: "the message has 8-bit bytes and the server does not offer 8BITMIME; encode the body as quoted-printable or base64")
        }
        if let limit = capabilities.maximumSize, prepared.messageSize > limit {
            throw makeError(stage: .mail, kind: .rejectedPermanent,
                            hint: "the message is \(prepared.messageSize) bytes; the server accepts at most \(limit) (SIZE)")
        }
        var mail = "MAIL FROM:<\(envelope.from)>"
        if capabilities.keywords["SIZE"] != nil { mail += " SIZE=\(prepared.messageSize)" }
        if prepared.hasEightBit && capabilities.eightBitMIME { mail += " BODY=8BITMIME" }
        if needsUTF8 { mail += " SMTPUTF8" }
        let transaction = Transaction(envelope: envelope, prepared: prepared, mail: mail,
                                      rcpts: envelope.recipients.map { "RCPT TO:<\($0)>" }, reset: messagesStarted > 0)
        messagesStarted += 1
        return transaction
    }

    /// RSET (from the second message on), MAIL, RCPT…, DATA as one pipelined group.
    private func commandGroup(_ transaction: Transaction) -> [UInt8] {
        var batch: [UInt8] = []
        batch.reserveCapacity(32 + transaction.mail.utf8.count + 48 * transaction.rcpts.count)
        func add(_ line: String) {
            recorder.client(line)
            batch.append(contentsOf: line.utf8)
            batch.append(0x0D); batch.append(0x0A)
        }
        if transaction.reset { add("RSET") }
        add(transaction.mail)
        for line in transaction.rcpts { add(line) }
        add("DATA")
        return batch
    }

    private func readGroupReplies(_ transaction: Transaction) throws -> GroupReplies {
        let enhanced = capabilities.enhancedStatusCodes
        let reset = transaction.reset ? try readReply(stage: .mail, command: "RSET", enhanced: enhanced) : nil
        let mail = try readReply(stage: .mail, command: "MAIL FROM", enhanced: enhanced)
        var rcpts: [SmtpReply] = []
        rcpts.reserveCapacity(transaction.rcpts.count)
        for _ in transaction.rcpts { rcpts.append(try readReply(stage: .rcpt, command: "RCPT TO", enhanced: enhanced)) }
        let data = try readReply(stage: .data, command: "DATA", enhanced: enhanced)
        return GroupReplies(reset: reset, mail: mail, rcpts: rcpts, data: data)
    }

    /// RFC 2920 3.1: DATA was accepted without a valid transaction; end it empty.
    private func endEmptyData() throws {
        recorder.client(".")
        try write(Array(".\r\n".utf8), stage: .data, command: "end of data")
        _ = try readReply(stage: .data, command: "end of data", enhanced: capabilities.enhancedStatusCodes)
    }

    /// Throws the first failure of a group (RSET, MAIL, all RCPTs, DATA); else each recipient's outcome.
    private func evaluate(_ replies: GroupReplies, _ transaction: Transaction) throws -> [SmtpRecipientOutcome] {
        if let reset = replies.reset, reset.code != 250 { throw replyError(reset, stage: .mail) }
        if replies.mail.code != 250 { throw replyError(replies.mail, stage: .mail) }
        let outcomes = try recipientOutcomes(replies.rcpts, transaction)
        if replies.data.code != 354 { throw replyError(replies.data, stage: .data) }
        return outcomes
    }

    /// Each recipient's outcome; throws the first refusal when every recipient was refused.
    private func recipientOutcomes(_ replies: [SmtpReply], _ transaction: Transaction) throws -> [SmtpRecipientOutcome] {
        var outcomes: [SmtpRecipientOutcome] = []
        outcomes.reserveCapacity(replies.count)
        var firstError: SmtpError?
        for (reply, address) in zip(replies, transaction.envelope.recipients) {
            if reply.code == 250 || reply.code == 251 {
                outcomes.append(SmtpRecipientOutcome(address: address, delivered: true, error: nil))
            } else {
                let (kind, hint) = Diagnosis.reply(reply, stage: .rcpt, context: diagnosisContext)
                let error = SmtpError(stage: .rcpt, kind: kind, replyCode: reply.code, enhancedCode: reply.enhancedCode,
                                      replyText: reply.text, hint: hint, certificate: certificate)
                outcomes.append(SmtpRecipientOutcome(address: address, delivered: false, error: error))
                if firstError == nil { firstError = error }
            }
        }
        if let firstError, !outcomes.contains(where: \.delivered) { throw withContext(firstError) }
        return outcomes
    }

    private func recordContent(_ transaction: Transaction) {
        recorder.client("<\(transaction.prepared.messageSize) bytes of message>")
        recorder.client(".")
    }

    private func report(outcomes: [SmtpRecipientOutcome], final: SmtpReply, transaction: Transaction, transcriptStart: Int) -> SmtpDeliveryReport {
        var timings = setupTimings
        for (key, value) in messageTimings { timings[key] = value }
        return SmtpDeliveryReport(recipients: outcomes, reply: final, bytesSent: transaction.prepared.payload.count,
                                  timingsMilliseconds: timings, transcript: recorder.slice(from: transcriptStart), server: server)
    }

    /// Sends messages back to back. With PIPELINING, each message's content and end of
    /// data go out in the same write as the next message's RSET/MAIL/RCPT/DATA (RFC 2920
    /// 3.1 lets message content start a group): one round trip per message. Without it,
    /// one `send` after another.
    ///
    /// - Returns: how many items were handled (each reported through `result`); fewer
    ///   than `items.count` only when the connection broke, so the caller can go on
    ///   with the rest over a new connection.
    func sendBatch(_ items: ArraySlice<SmtpClient.Outgoing>, result: (Int, Result<SmtpDeliveryReport, SmtpError>) -> Void) -> Int {
        let base = items.startIndex
        guard capabilities.pipelining else {
            var handled = 0
            for index in items.indices {
                if isBroken || isClosed { break }
                do { result(index, .success(try send(envelope: items[index].envelope, message: items[index].message))) }
                catch let error as SmtpError { result(index, .failure(error)) }
                catch { result(index, .failure(makeError(stage: .mail, kind: .protocol, hint: "\(error)"))) }
                handled += 1
            }
            return handled
        }
        guard !isBroken, !isClosed else { return 0 }
        inMessage = true
        defer { inMessage = false }
        let enhanced = capabilities.enhancedStatusCodes
        // The message whose content is written with the next group, and its outcomes.
        var pendingContent: [UInt8] = []
        var inFlight: (index: Int, transaction: Transaction, outcomes: [SmtpRecipientOutcome], start: Int)?
        var emptyDataInFlight = false
        var next = base
        while true {
            // The next message that passes the local checks.
            var current: (index: Int, transaction: Transaction, start: Int)?
            while current == nil && next < items.endIndex {
                let index = next
                next += 1
                let start = messagesStarted == 0 ? 0 : recorder.beginMessage()
                do {
                    current = (index, try prepareTransaction(envelope: items[index].envelope, message: items[index].message), start)
                } catch let error as SmtpError {
                    result(index, .failure(error))
                } catch {
                    result(index, .failure(makeError(stage: .mail, kind: .protocol, hint: "\(error)")))
                }
            }
            if current == nil && pendingContent.isEmpty { break }
            deadline = Deadline.after(seconds: settings.sessionTimeout)
            var bytes = pendingContent
            pendingContent = []
            if let current { bytes += commandGroup(current.transaction) }
            do {
                try write(bytes, stage: current == nil ? .data : .mail, command: current == nil ? "end of data" : "MAIL FROM")
                if let sent = inFlight {
                    inFlight = nil
                    let final = try readReply(stage: .data, command: "end of data", enhanced: enhanced)
                    if final.code == 250 {
                        result(sent.index, .success(report(outcomes: sent.outcomes, final: final, transaction: sent.transaction, transcriptStart: sent.start)))
                    } else {
                        result(sent.index, .failure(replyError(final, stage: .data)))
                    }
                } else if emptyDataInFlight {
                    emptyDataInFlight = false
                    _ = try readReply(stage: .data, command: "end of data", enhanced: enhanced)
                }
                guard let current else { continue }
                let replies = try readGroupReplies(current.transaction)
                if replies.data.code == 354 && !replies.transactionValid {
                    recorder.client(".")
                    pendingContent = Array(".\r\n".utf8)
                    emptyDataInFlight = true
                }
                do {
                    let outcomes = try evaluate(replies, current.transaction)
                    recordContent(current.transaction)
                    pendingContent = current.transaction.prepared.payload
                    inFlight = (current.index, current.transaction, outcomes, current.start)
                } catch let error as SmtpError {
                    result(current.index, .failure(error))
                }
            } catch {
                // The connection broke: what was in flight failed with it.
                let failure = error as? SmtpError ?? makeError(stage: .data, kind: .protocol, hint: "\(error)")
                if let sent = inFlight {
                    // Its content went out with this write or its reply was awaited: a data failure.
                    var dataFailure = failure
                    if dataFailure.stage == .mail { dataFailure.stage = .data }
                    result(sent.index, .failure(dataFailure))
                }
                if let current { result(current.index, .failure(failure)) }
                return next - base
            }
        }
        return next - base
    }

    static func checkAddress(_ address: String, what: @autoclosure () -> String, stage: SmtpError.Stage) throws {
        // Fast path: printable ASCII or UTF-8 without angle brackets.
        if address.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }) { return }
        try checkLine(address, what: what(), stage: stage, allowSpace: true)
        throw SmtpError(stage: stage, kind: .invalidInput, hint: "\(what()) contains < or >; refused before sending")
    }

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

    var diagnosisContext: Diagnosis.Context {
        var context = Diagnosis.Context(settings: settings)
        context.command = currentCommand
        return context
    }

    /// The deadline of the next command: `commandTimeout` from now, capped by the session's.
    private func commandDeadline() -> (Deadline, sessionLimited: Bool) {
        let own = Deadline.after(seconds: settings.commandTimeout)
        return own < deadline ? (own, false) : (deadline, true)
    }

    private func record(stage: String, since start: Deadline) {
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

    private func write(_ bytes: [UInt8], stage: SmtpError.Stage, command: String) throws {
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

    private func readReply(stage: SmtpError.Stage, command: String, enhanced: Bool = false) throws -> SmtpReply {
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

    private func streamError(_ failure: StreamFailure, stage: SmtpError.Stage, sessionLimited: Bool) -> SmtpError {
        isBroken = true
        var context = diagnosisContext
        context.sessionDeadlineHit = sessionLimited
        let (kind, hint) = Diagnosis.stream(failure, stage: stage, context: context)
        recorder.note("\(failure): \(hint)")
        if case .abandoned = failure { return makeError(stage: stage, kind: kind, hint: hint, underlying: SessionAbandoned()) }
        return makeError(stage: stage, kind: kind, hint: hint, underlying: failure)
    }

    private func replyError(_ reply: SmtpReply, stage: SmtpError.Stage) -> SmtpError {
        var reply = reply
        if recorder.peerUnproven {
            // Before EHLO/HELO succeeded the peer may be any service: its text is cut short.
            reply.lines = [ReplyParser.excerpt(reply.lines.joined(separator: " "))]
        }
        let (kind, hint) = Diagnosis.reply(reply, stage: stage, context: diagnosisContext)
        return makeError(stage: stage, kind: kind, hint: hint, reply: reply)
    }

    func makeError(stage: SmtpError.Stage, kind: SmtpError.Kind, hint: String, reply: SmtpReply? = nil,
                           underlying: (any Error)? = nil) -> SmtpError {
        SmtpError(stage: stage, kind: kind, replyCode: reply?.code, enhancedCode: reply?.enhancedCode, replyText: reply?.text,
                  hint: hint, certificate: certificate, transcript: recorder.transcript, underlying: underlying)
    }

    func withContext(_ error: SmtpError) -> SmtpError {
        var error = error
        error.certificate = certificate
        error.transcript = recorder.transcript
        return error
    }
}

extension Diagnosis.Context {
    init(settings: SmtpSettings) {
        self.init(host: settings.host, port: settings.port, security: settings.security, commandTimeout: settings.commandTimeout,
                  connectTimeout: settings.connectTimeout, sessionTimeout: settings.sessionTimeout)
        sessionLimitName = settings.sessionLimitName
    }
}
