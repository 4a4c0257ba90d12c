// One mail transaction of an SmtpConnection: RSET, MAIL FROM, RCPT TO, DATA and the
// content (one pipelined group when the server offers PIPELINING), and its report.
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
    func prepareTransaction(envelope: Envelope, message: [UInt8]) throws -> Transaction {
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
    func commandGroup(_ transaction: Transaction) -> [UInt8] {
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

    func readGroupReplies(_ transaction: Transaction) throws -> GroupReplies {
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
    func endEmptyData() throws {
        recorder.client(".")
        try write(Array(".\r\n".utf8), stage: .data, command: "end of data")
        _ = try readReply(stage: .data, command: "end of data", enhanced: capabilities.enhancedStatusCodes)
    }

    /// Throws the first failure of a group (RSET, MAIL, all RCPTs, DATA); else each recipient's outcome.
    func evaluate(_ replies: GroupReplies, _ transaction: Transaction) throws -> [SmtpRecipientOutcome] {
        if let reset = replies.reset, reset.code != 250 { throw replyError(reset, stage: .mail) }
        if replies.mail.code != 250 { throw replyError(replies.mail, stage: .mail) }
        let outcomes = try recipientOutcomes(replies.rcpts, transaction)
        if replies.data.code != 354 { throw replyError(replies.data, stage: .data) }
        return outcomes
    }

    /// Each recipient's outcome; throws the first refusal when every recipient was refused.
    func recipientOutcomes(_ replies: [SmtpReply], _ transaction: Transaction) throws -> [SmtpRecipientOutcome] {
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

    func recordContent(_ transaction: Transaction) {
        recorder.client("<\(transaction.prepared.messageSize) bytes of message>")
        recorder.client(".")
    }

    func report(outcomes: [SmtpRecipientOutcome], final: SmtpReply, transaction: Transaction, transcriptStart: Int) -> SmtpDeliveryReport {
        var timings = setupTimings
        for (key, value) in messageTimings { timings[key] = value }
        return SmtpDeliveryReport(recipients: outcomes, reply: final, bytesSent: transaction.prepared.payload.count,
                                  timingsMilliseconds: timings, transcript: recorder.slice(from: transcriptStart), server: server)
    }

    static func checkAddress(_ address: String, what: @autoclosure () -> String, stage: SmtpError.Stage) throws {
        // Fast path: printable ASCII or UTF-8 without angle brackets.
        if address.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") }) { return }
        try checkLine(address, what: what(), stage: stage, allowSpace: true)
        throw SmtpError(stage: stage, kind: .invalidInput, hint: "\(what()) contains < or >; refused before sending")
    }
}
