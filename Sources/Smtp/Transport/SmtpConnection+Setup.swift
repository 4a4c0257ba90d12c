// Session set-up of an SmtpConnection: connect, greeting, EHLO (HELO fallback) and
// STARTTLS or implicit TLS, with the checks that refuse settings before the wire.
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

extension SmtpConnection {
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
                                              abort: settings.abort, addresses: settings.connectAddresses) { [settings] addresses in
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
        guard let wire = UInt16(exactly: settings.port), PortNumber(wire) != nil else {
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


    func hello() throws {
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

    func upgradeWithSTARTTLS() throws {
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

    func startTLS() throws {
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
}
