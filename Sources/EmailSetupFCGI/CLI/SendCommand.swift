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
import Smtp

/// `emailsetup send`: send a message (or N copies over K connections, for bulk tests
/// and the benchmark) with the given settings.
///
/// ```
/// emailsetup send --to ops@example.com --subject "Hello" --host smtp.example.com --security ssl \
///     --user app --password-env SMTP_PASSWORD --from app@example.com
/// emailsetup send --stored --config /etc/emailsetup/emailsetup.conf --to ops@example.com --to "Ops Desk <desk@example.com>" --subject "Grüße"
/// emailsetup send --to sink@example.com --count 1000 --connections 4 --host 127.0.0.1 --port 2525 --security none --from a@example.com
/// ```
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send email with the given or stored settings.",
        discussion: """
        --count N sends N messages (each with its own Message-ID) to the same recipients, spread over --connections K sessions that each reuse their connection (RSET between messages, PIPELINING when offered); a summary with messages/second goes to stderr.

        Every message's outcome is reported; with --json one object per line and message: {"ok":true,"index":0,"recipients":[…],"reply":"250 …"}, or on failure the diagnosis (stage, kind, code, enhanced_code, hint, certificate).

        --to takes an address or "Name <address>" and may be repeated; the subject may be any text (non-ASCII is encoded with RFC 2047), the body (--body-file) UTF-8 text.

        With --stored, the server, sender, login and certificate settings come from the database, read with the responder's configuration (--config FILE, else $EMAILSETUP_CONFIG, else \(ResponderConfig.defaultPath)); only --helo and the timeouts may be given to override them.

        \(SmtpOptions.exitStatusHelp)
        """
    )

    @Option(name: .customLong("to"), help: "Recipient address (repeat for more).")
    var recipients: [String] = []

    @Option(help: "Subject line.")
    var subject: String = "emailsetup test message"

    @Option(name: .customLong("body-file"), help: "File with the message body (UTF-8 text).")
    var bodyFile: String?

    @Option(help: "Parallel connections for --count (1–64).")
    var connections: Int = 1

    @Option(help: "How many copies to send (bulk mode; default 1).")
    var count: Int = 1

    @OptionGroup var options: SmtpOptions

    func run() throws {
        let settings: SmtpSettings
        let template: Message
        do {
            guard !recipients.isEmpty else { throw CLIUsage("--to ADDRESS is required") }
            guard (1...64).contains(connections) else { throw CLIUsage("--connections must be 1–64") }
            guard count >= 1, count <= 10_000_000 else { throw CLIUsage("--count must be from 1 to 10000000") }
            // Addresses and the body first: a typo should not wait for a database.
            let to = try mailboxes()
            let text = try body()
            settings = try options.settings()
            template = try makeMessage(sender: settings.senderAddress ?? "", to: to, body: text)
        } catch let usage as CLIUsage {
            CLIOutput.stderr("emailsetup send: \(usage)")
            throw ExitCode(ExitStatus.usage)
        }
        let envelope = template.envelope

        if count == 1 {
            let message: [UInt8]
            do { message = try template.rendered() } catch {
                CLIOutput.stderr("emailsetup send: \(error)")
                throw ExitCode(ExitStatus.usage)
            }
            let started = Date()
            do {
                let report = try SmtpClient.send(envelope: envelope, message: message, settings: settings)
                if options.json {
                    CLIOutput.json(report, with: [("ok", .bool(report.allDelivered)), ("index", .number(0))])
                } else {
                    printHuman(index: 0, recipients: report.recipients, reply: report.reply)
                    if !report.allDelivered {
                        for line in report.transcript.lines { CLIOutput.stderr("  " + line) }
                    }
                }
                let failures = report.recipients.compactMap(\.error)
                throw ExitCode(CLIOutput.exitStatus(for: failures))
            } catch let error as SmtpError {
                let error = SmtpAdvice.advise(error, settings: settings, startedAt: started)
                if options.json {
                    CLIOutput.json(CLIOutput.diagnosis(error, [("index", .number(0))]))
                } else {
                    CLIOutput.describe(error, transcript: true)
                }
                throw ExitCode(CLIOutput.exitStatus(for: [error]))
            }
        }

        let makeCopy: @Sendable (Int) -> SmtpClient.Outgoing
        do { makeCopy = try Self.copyMaker(of: template) } catch {
            CLIOutput.stderr("emailsetup send: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        let started = Date()
        let outcomes = SmtpClient.sendBulk(count: count, settings: settings, connections: connections, message: makeCopy)
        let elapsed = Date().timeIntervalSince(started)
        var failures: [SmtpError] = []
        for outcome in outcomes {
            failures += outcome.error.map { [$0] } ?? outcome.recipients.compactMap(\.error)
            if options.json {
                var members: [(String, JSONValue)] = [("ok", .bool(outcome.ok)), ("index", .number(Double(outcome.index))),
                                                      ("connection", .number(Double(outcome.connection)))]
                // A failed copy carries the diagnosis of the HTTP API, without the transcript.
                if let error = outcome.error { members += SmtpJSON.diagnosis(error).filter { $0.0 != "transcript" } }
                members.append(("recipients", .array(outcome.recipients.map { recipient in
                    var entry: [(String, JSONValue)] = [("address", .string(recipient.address)), ("delivered", .bool(recipient.delivered))]
                    if let error = recipient.error, outcome.error == nil {
                        entry += [("code", error.replyCode.map { .number(Double($0)) } ?? .null),
                                  ("enhanced_code", error.enhancedCode.map { .string($0) } ?? .null), ("hint", .string(error.hint))]
                    }
                    return .object(entry)
                })))
                if let reply = outcome.report?.reply {
                    members.append(("reply", .string("\(reply.code)" + (reply.enhancedCode.map { " " + $0 } ?? "") + " " + reply.text)))
                }
                CLIOutput.json(.object(members))
            } else if let error = outcome.error {
                CLIOutput.stderr("message \(outcome.index):")
                CLIOutput.describe(error, transcript: false)
            } else if !outcome.ok {
                printHuman(index: outcome.index, recipients: outcome.recipients, reply: outcome.report?.reply)
            }
        }
        let delivered = outcomes.filter(\.ok).count
        let rate = elapsed > 0 ? Double(count) / elapsed : 0
        CLIOutput.stderr("\(delivered) of \(count) messages delivered over \(connections) connection(s) in \(elapsed.fixed(3)) s (\(rate.fixed(1)) messages/s)")
        throw ExitCode(CLIOutput.exitStatus(for: failures))
    }

    /// The message body: `--body-file` as UTF-8 text, or a short default.
    private func body() throws -> String {
        guard let bodyFile else { return "This is a test message sent by emailsetup.\n" }
        guard let data = FileManager.default.contents(atPath: bodyFile) else { throw CLIUsage("--body-file \(bodyFile) is not readable") }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw CLIUsage("--body-file \(bodyFile) is not UTF-8 text")
        }
        return text
    }

    /// Every `--to`, parsed: an address or `Name <address>`.
    /// - Throws: `CLIUsage` naming the first bad one and why.
    func mailboxes() throws -> [Mailbox] {
        var mailboxes: [Mailbox] = []
        for text in recipients {
            do throws(Smtp.ValidationError) { mailboxes.append(try Mailbox(text)) } catch {
                throw CLIUsage("--to \(text) is not a usable address: \(error.reason)")
            }
        }
        return mailboxes
    }

    /// The message with the real builder: From is the sender of the settings, To the
    /// `--to` mailboxes; rendered once here so that a bad
    /// subject is a usage error before any connection is made.
    ///
    /// - Throws: `CLIUsage` naming the bad address or field.
    func makeMessage(sender: String, to: [Mailbox], body: String) throws -> Message {
        let from: EmailAddress
        switch EmailAddress.validate(sender) {
        case .success(let address): from = address
        case .failure(let error): throw CLIUsage("the sender address \"\(sender)\" is not usable: \(error.reason)")
        }
        let message = Message(from: Mailbox(from), to: to, subject: subject, text: body)
        do throws(Smtp.ValidationError) { _ = try message.rendered() } catch {
            throw CLIUsage("cannot build the message: \(error.reason)")
        }
        return message
    }

    /// `count` copies of `message`, each with its own Message-ID, sharing one Date
    /// (what `copyMaker(of:)` makes, all at once; for tests).
    static func copies(of message: Message, count: Int) throws -> [SmtpClient.Outgoing] {
        let make = try copyMaker(of: message)
        return (0..<count).map(make)
    }

    /// Makes copies of `message` on demand, each with its own Message-ID, sharing one
    /// Date: `send --count` asks for each copy when a connection is about to send it,
    /// so memory stays at a few batches however large the count.
    ///
    /// The copies differ only in the Message-ID, so the message is rendered once (the
    /// body encoding of a large body costs more than sending it) and each copy gets a
    /// fresh id of the same length spliced into those bytes; a copy is byte for byte
    /// what `rendered()` gives with that id (see the unit test).
    static func copyMaker(of message: Message) throws -> @Sendable (Int) -> SmtpClient.Outgoing {
        let envelope = message.envelope
        let domain = message.from.address.asciiDomain
        var template = message
        template.messageID = String(repeating: "0", count: 32) + "@" + domain
        let bytes = try template.rendered()
        let marker = Array("Message-ID: <\(template.messageID)>".utf8)
        guard let start = bytes.firstRange(of: marker)?.lowerBound else {
            // Not reached with the builder's header order; render each copy instead
            // (it rendered once with an id of the same form, so it renders again).
            let fixed = template
            return { _ in
                var copy = fixed
                copy.messageID = uniqueToken() + "@" + domain
                return SmtpClient.Outgoing(envelope: envelope, message: (try? copy.rendered()) ?? bytes)
            }
        }
        let idStart = start + "Message-ID: <".utf8.count
        return { _ in
            var copy = bytes
            copy.replaceSubrange(idStart..<idStart + 32, with: uniqueToken().utf8)
            return SmtpClient.Outgoing(envelope: envelope, message: copy)
        }
    }

    /// 128 random bits as 32 lower-case hex digits, the form of `Message.makeMessageID`,
    /// from two 64-bit draws (it draws one byte, and one getrandom(2), at a time).
    static func uniqueToken() -> String {
        var generator = SystemRandomNumberGenerator()
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return hex(generator.next()) + hex(generator.next())
    }

    private func printHuman(index: Int, recipients: [SmtpRecipientOutcome], reply: SmtpReply?) {
        for recipient in recipients {
            if recipient.delivered {
                let text = reply.map { "\($0.code)" + ($0.enhancedCode.map { " " + $0 } ?? "") + " " + $0.text } ?? ""
                CLIOutput.stdout("delivered to \(recipient.address) (\(text))")
            } else if let error = recipient.error {
                CLIOutput.stderr("refused for \(recipient.address): \(error.hint)")
            }
        }
    }
}
