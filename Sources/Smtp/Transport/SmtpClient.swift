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
import Dispatch
import ProcessIO
import Synchronization

/// Entry points of the SMTP transport: `check` (connect, TLS, EHLO, AUTH, QUIT — sends
/// nothing), `send` (one message over one session), `sendBulk` (many messages over K
/// connections) and the validators the settings form uses.
///
/// Calls block the calling thread, bounded by the settings' timeouts. The first TLS
/// connection sets SIGPIPE to ignored for the process (OpenSSL writes with write(2); a
/// peer that closed would otherwise kill the process).
///
/// ```swift
/// var settings = SmtpSettings(host: "smtp.example.com", port: 465, security: .implicitTLS)
/// settings.authentication = .auto
/// settings.username = "app@example.com"
/// settings.password = { try loadPassword() }
/// let check = try SmtpClient.check(settings)
/// let report = try SmtpClient.send(envelope: Envelope(from: "app@example.com", recipients: ["ops@example.com"]),
///                                  message: messageBytes, settings: settings)
/// ```
public enum SmtpClient {
    /// Connects, negotiates TLS, says EHLO, authenticates and quits; sends no message.
    ///
    /// - Parameter settings: the settings to prove.
    /// - Returns: server capabilities, certificate, timings and transcript.
    /// - Throws: ``SmtpError`` with the failing stage, kind and hint.
    ///
    /// ```swift
    /// let report = try SmtpClient.check(settings)
    /// print(report.server.capabilities.authMechanisms)
    /// ```
    public static func check(_ settings: SmtpSettings) throws -> SmtpCheckReport {
        let connection = try SmtpConnection.open(settings)
        try connection.quit()
        return SmtpCheckReport(server: connection.server, timingsMilliseconds: timings(of: connection),
                               transcript: connection.transcript)
    }

    /// Sends one message in one session (connect … QUIT). A failed QUIT after the server
    /// took the message does not fail the send.
    ///
    /// - Parameters:
    ///   - envelope: MAIL FROM and RCPT TO addresses.
    ///   - message: the rendered message (CRLF line endings; the transport dot-stuffs).
    ///   - settings: server, security, authentication, timeouts.
    /// - Returns: the delivery report (transcript includes QUIT).
    /// - Throws: ``SmtpError``.
    ///
    /// ```swift
    /// let report = try SmtpClient.send(envelope: envelope, message: bytes, settings: settings)
    /// ```
    public static func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport {
        let connection = try SmtpConnection.open(settings)
        do {
            var report = try connection.send(envelope: envelope, message: message)
            connection.close()
            report.transcript = connection.transcript
            report.timingsMilliseconds = timings(of: connection).merging(report.timingsMilliseconds) { a, _ in a }
            return report
        } catch {
            connection.close()
            throw error
        }
    }

    private static func timings(of connection: SmtpConnection) -> [String: Double] {
        var result: [String: Double] = [:]
        for entry in connection.timingSummary { result[entry.key] = entry.value }
        return result
    }

    /// One message of a bulk send.
    public struct Outgoing: Sendable {
        /// MAIL FROM / RCPT TO.
        public var envelope: Envelope
        /// The rendered message.
        public var message: [UInt8]
        /// Makes one.
        public init(envelope: Envelope, message: [UInt8]) {
            self.envelope = envelope
            self.message = message
        }
    }

    /// The outcome of one message of a bulk send.
    public struct BulkOutcome: Sendable, Encodable {
        /// Position in the input.
        public var index: Int
        /// Which connection (0..<K) carried it.
        public var connection: Int
        /// Every recipient's outcome (all failed with `error` when the message failed).
        public var recipients: [SmtpRecipientOutcome]
        /// The report when the server took the message.
        public var report: SmtpDeliveryReport?
        /// The failure when no recipient got it.
        public var error: SmtpError?
        /// True when every recipient got the message.
        public var ok: Bool { error == nil && recipients.allSatisfy(\.delivered) }

        private enum CodingKeys: String, CodingKey { case index, connection, ok, recipients, error }

        /// Encodes index, connection, ok, recipients and error (not the full report).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(connection, forKey: .connection)
            try c.encode(ok, forKey: .ok)
            try c.encode(recipients, forKey: .recipients)
            try c.encodeIfPresent(error, forKey: .error)
        }
    }

    /// Sends `messages` over `connections` parallel sessions (threads), each reusing its
    /// connection (RSET between messages) and reconnecting after a broken one. Reports
    /// every message and recipient, in input order; never throws.
    ///
    /// - Parameters:
    ///   - messages: what to send.
    ///   - settings: server, security, authentication, timeouts.
    ///   - connections: parallel sessions, 1…64.
    ///   - keepTranscripts: keep each message's transcript in its report (off for speed).
    ///
    /// ```swift
    /// let outcomes = SmtpClient.sendBulk(messages, settings: settings, connections: 4)
    /// let failed = outcomes.filter { !$0.ok }
    /// ```
    public static func sendBulk(_ messages: [Outgoing], settings: SmtpSettings, connections: Int,
                                keepTranscripts: Bool = false) -> [BulkOutcome] {
        sendBulk(count: messages.count, settings: settings, connections: connections,
                 keepTranscripts: keepTranscripts) { messages[$0] }
    }

    /// Sends `count` messages made on demand by `message(index)` — called once per
    /// index, on the sending thread, just before its batch goes out — so memory stays
    /// at one batch per connection however large `count` is. Otherwise as
    /// ``sendBulk(_:settings:connections:keepTranscripts:)``.
    ///
    /// ```swift
    /// let outcomes = SmtpClient.sendBulk(count: 100_000, settings: settings, connections: 4) { index in
    ///     SmtpClient.Outgoing(envelope: envelope, message: copy(number: index))
    /// }
    /// ```
    public static func sendBulk(count: Int, settings: SmtpSettings, connections: Int, keepTranscripts: Bool = false,
                                message: @escaping @Sendable (Int) -> Outgoing) -> [BulkOutcome] {
        let count = max(0, count)
        let workers = max(1, min(connections, 64, max(count, 1)))
        final class Shared: Sendable {
            private let state: Mutex<(next: Int, outcomes: [BulkOutcome?])>
            init(count: Int) { state = Mutex((0, Array(repeating: nil, count: count))) }
            func take(_ chunk: Int) -> Range<Int>? {
                state.withLock { state in
                    guard state.next < state.outcomes.count else { return nil }
                    let range = state.next..<min(state.next + chunk, state.outcomes.count)
                    state.next = range.upperBound
                    return range
                }
            }
            func put(_ outcome: BulkOutcome) {
                state.withLock { $0.outcomes[outcome.index] = outcome }
            }
            var outcomes: [BulkOutcome?] { state.withLock { $0.outcomes } }
        }
        // Small chunks keep every connection busy; larger ones keep the pipeline full.
        let chunk = max(1, min(64, count / (workers * 4)))
        let shared = Shared(count: count)
        // One SSL_CTX (trust store loaded once) for every connection.
        let needsTLS = settings.security != .none
        let context: TLSContext?
        do {
            context = needsTLS ? try TLSContext(loadTrustStore: settings.verification == .full, extraCAPEM: settings.extraCAPEM) : nil
        } catch {
            let smtpError = error as? SmtpError ?? SmtpError(stage: .tls, kind: .tlsHandshake, hint: "\(error)")
            return (0..<count).map { index in
                BulkOutcome(index: index, connection: 0, recipients: message(index).envelope.recipients.map {
                    SmtpRecipientOutcome(address: $0, delivered: false, error: smtpError)
                }, report: nil, error: smtpError)
            }
        }
        let spinForReplies = spinsForReplies(connections: workers, cores: ProcessInfo.processInfo.activeProcessorCount)
        let group = DispatchGroup()
        for worker in 0..<workers {
            group.enter()
            startThread {
                defer { group.leave() }
                var connection: SmtpConnection?
                // The batch being sent, made on demand; its positions are offsets from
                // `batchStart` in the input.
                var batch: [Outgoing] = []
                var batchStart = 0
                func record(_ position: Int, _ result: Result<SmtpDeliveryReport, SmtpError>) {
                    let index = batchStart + position
                    switch result {
                    case .success(var report):
                        if !keepTranscripts { report.transcript = SmtpTranscript() }
                        shared.put(BulkOutcome(index: index, connection: worker, recipients: report.recipients, report: report, error: nil))
                    case .failure(var error):
                        if !keepTranscripts { error.transcript = SmtpTranscript() }
                        let failed = batch[position].envelope.recipients.map { SmtpRecipientOutcome(address: $0, delivered: false, error: error) }
                        shared.put(BulkOutcome(index: index, connection: worker, recipients: failed, report: nil, error: error))
                    }
                }
                while let range = shared.take(chunk) {
                    batchStart = range.lowerBound
                    batch = range.map(message)
                    var position = 0
                    while position < batch.count {
                        if connection == nil || connection!.isBroken || connection!.isClosed {
                            connection?.close()
                            do {
                                connection = try SmtpConnection.open(settings, tlsContext: context, recordTranscript: keepTranscripts,
                                                                     spinForReplies: spinForReplies)
                            } catch {
                                let smtpError = error as? SmtpError ?? SmtpError(stage: .connect, kind: .protocol, hint: "\(error)")
                                for failed in position..<batch.count { record(failed, .failure(smtpError)) }
                                connection = nil
                                break
                            }
                        }
                        position += connection!.sendBatch(batch[position...], result: record)
                    }
                }
                connection?.close()
            }
        }
        group.wait()
        return shared.outcomes.map { $0! }
    }

    /// Whether bulk sessions wait for replies with ``ReplyWait`` (spinning briefly).
    ///
    /// Spinning fills the idle time of client and server taking turns on one
    /// connection; with as many connections as cores the turns already overlap, and a
    /// spinner would only take CPU from the server and the other connections
    /// (measured on 2 cores: 1 connection 8 k → 14 k msg/s, 4 connections 30 k → 25 k).
    static func spinsForReplies(connections: Int, cores: Int) -> Bool {
        connections < cores
    }

    /// Checks that a PEM text holds at least one certificate and that every
    /// `BEGIN CERTIFICATE` block parses (for `smtp_tls_ca_pem`).
    ///
    /// - Returns: the number of certificates.
    /// - Throws: ``SmtpError`` of kind `invalid_input` with a hint.
    ///
    /// ```swift
    /// let count = try SmtpClient.validateCertificatesPEM(pemText)
    /// ```
    @discardableResult
    public static func validateCertificatesPEM(_ pem: String) throws -> Int {
        try X509Certificate.parsePEM(pem).count
    }

    /// Describes each certificate of a PEM text (subject, issuer, validity, fingerprint).
    public static func describeCertificatesPEM(_ pem: String) throws -> [SmtpCertificate] {
        try X509Certificate.parsePEM(pem).map(\.info)
    }

    /// A SHA-256 pin as 64 lowercase hex digits; accepts upper case and ':' separators.
    /// Returns nil when it is not 64 hex digits.
    public static func normalizedPin(_ pin: String) -> String? {
        let hex = pin.lowercased().filter { $0 != ":" && !$0.isWhitespace }
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else { return nil }
        return hex
    }
}

extension SmtpConnection {
    /// Set-up timings (connect, tls, greeting, ehlo, starttls, auth, quit) in milliseconds.
    var timingSummary: [String: Double] { setupTimingsSnapshot }
}
