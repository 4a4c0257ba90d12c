import ArgumentParser
import Foundation
import Smtp

/// `emailsetup send`: send a message (or N copies over K connections, for bulk tests
/// and the benchmark) with the given settings.
///
/// ```
/// emailsetup send --to ops@example.com --subject "Hello" --host smtp.example.com --security ssl \
///     --user app --password-env SMTP_PASSWORD --from app@example.com
/// emailsetup send --to sink@example.com --count 1000 --connections 4 --host 127.0.0.1 --port 2525 --security none --from a@example.com
/// ```
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send email with the given or stored settings.",
        discussion: """
        --count N sends N messages (each with its own Message-ID) to the same recipients, spread over --connections K sessions that each reuse their connection (RSET between messages, PIPELINING when offered); a summary with messages/second goes to stderr.

        Every message's outcome is reported; with --json one object per line and message: {"ok":true,"index":0,"recipients":[…],"reply":"250 …"}, or on failure the diagnosis (stage, kind, code, enhanced_code, hint, certificate).

        Exit status: 0 all delivered, 2 bad usage or input, 3 an SMTP failure, 4 a timeout.
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
        let body: String
        do {
            settings = try options.settings()
            guard !recipients.isEmpty else { throw CLIUsage("--to ADDRESS is required") }
            guard (1...64).contains(connections) else { throw CLIUsage("--connections must be 1–64") }
            guard count >= 1, count <= 10_000_000 else { throw CLIUsage("--count must be at least 1") }
            if let bodyFile {
                guard let text = try? String(contentsOfFile: bodyFile, encoding: .utf8) else { throw CLIUsage("--body-file \(bodyFile) is not readable UTF-8") }
                body = text
            } else {
                body = "This is a test message sent by emailsetup.\r\n"
            }
        } catch let usage as CLIUsage {
            CLIOutput.stderr("emailsetup send: \(usage)")
            throw ExitCode(ExitStatus.usage)
        }
        let from = settings.senderAddress ?? ""
        let envelope = Envelope(from: from, recipients: recipients)

        if count == 1 {
            let message = MinimalMessage.render(from: from, to: recipients, subject: subject, body: body)
            do {
                let report = try SmtpClient.send(envelope: envelope, message: message, settings: settings)
                if options.json {
                    var object = CLIOutput.dictionary(report)
                    object["ok"] = report.allDelivered
                    object["index"] = 0
                    CLIOutput.json(object)
                } else {
                    printHuman(index: 0, recipients: report.recipients, reply: report.reply)
                    if !report.allDelivered {
                        for line in report.transcript.lines { CLIOutput.stderr("  " + line) }
                    }
                }
                let failures = report.recipients.compactMap(\.error)
                throw ExitCode(CLIOutput.exitStatus(for: failures))
            } catch let error as SmtpError {
                if options.json {
                    var object = error.diagnosis
                    object["index"] = 0
                    CLIOutput.json(object)
                } else {
                    CLIOutput.describe(error, transcript: true)
                }
                throw ExitCode(CLIOutput.exitStatus(for: [error]))
            }
        }

        let template = MinimalMessage(from: from, to: recipients, subject: subject, body: body)
        let date = template.dateHeader()
        let messages = (0..<count).map { _ in SmtpClient.Outgoing(envelope: envelope, message: template.render(dateHeader: date)) }
        let started = Date()
        let outcomes = SmtpClient.sendBulk(messages, settings: settings, connections: connections)
        let elapsed = Date().timeIntervalSince(started)
        var failures: [SmtpError] = []
        for outcome in outcomes {
            failures += outcome.error.map { [$0] } ?? outcome.recipients.compactMap(\.error)
            if options.json {
                var object: [String: Any] = outcome.error?.diagnosis ?? ["ok": outcome.ok]
                object["ok"] = outcome.ok
                object["index"] = outcome.index
                object["connection"] = outcome.connection
                object["recipients"] = outcome.recipients.map { recipient -> [String: Any] in
                    var entry: [String: Any] = ["address": recipient.address, "delivered": recipient.delivered]
                    if let error = recipient.error, outcome.error == nil {
                        entry["code"] = error.replyCode
                        entry["enhanced_code"] = error.enhancedCode
                        entry["hint"] = error.hint
                    }
                    return entry
                }
                if let reply = outcome.report?.reply {
                    object["reply"] = "\(reply.code)" + (reply.enhancedCode.map { " " + $0 } ?? "") + " " + reply.text
                }
                object.removeValue(forKey: "transcript")
                CLIOutput.json(object)
            } else if let error = outcome.error {
                CLIOutput.stderr("message \(outcome.index):")
                CLIOutput.describe(error, transcript: false)
            } else if !outcome.ok {
                printHuman(index: outcome.index, recipients: outcome.recipients, reply: outcome.report?.reply)
            }
        }
        let delivered = outcomes.filter(\.ok).count
        let rate = elapsed > 0 ? Double(count) / elapsed : 0
        CLIOutput.stderr("\(delivered) of \(count) messages delivered over \(connections) connection(s) in \(String(format: "%.3f", elapsed)) s (\(String(format: "%.1f", rate)) messages/s)")
        throw ExitCode(CLIOutput.exitStatus(for: failures))
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

/// TEMPORARY: a minimal RFC 5322 message (From, To, Subject, Date, Message-ID, CRLF) for
/// the CLI until the message builder (Smtp/Message, `Message.rendered()`) is merged;
/// swap `render` for the builder then. Non-ASCII subjects use RFC 2047 base64; a
/// non-ASCII body is sent as 8bit UTF-8 (the transport adds BODY=8BITMIME).
/// The fixed headers and body are encoded once; each copy adds its Date and Message-ID.
struct MinimalMessage {
    private let head: [UInt8]
    private let tail: [UInt8]
    private let domain: String
    private let formatter: DateFormatter

    init(from: String, to: [String], subject: String, body: String) {
        domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let cleanSubject = subject.filter { $0 != "\r" && $0 != "\n" }
        let encodedSubject = cleanSubject.unicodeScalars.allSatisfy { $0.isASCII }
            ? cleanSubject : "=?UTF-8?B?\(Data(cleanSubject.utf8).base64EncodedString())?="
        let headers = [
            "From: <\(from)>",
            "To: " + to.map { "<\($0)>" }.joined(separator: ", "),
            "Subject: \(encodedSubject)",
        ]
        var trailer = ["MIME-Version: 1.0"]
        if body.unicodeScalars.allSatisfy({ $0.isASCII }) {
            trailer.append("Content-Type: text/plain; charset=us-ascii")
        } else {
            trailer += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        }
        head = Array((headers.joined(separator: "\r\n") + "\r\n").utf8)
        tail = Array((trailer.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    /// The Date header value for `date` (RFC 5322 format).
    func dateHeader(_ date: Date = Date()) -> String { formatter.string(from: date) }

    /// One copy, with the given date and a fresh Message-ID.
    func render(dateHeader: String? = nil) -> [UInt8] {
        var bytes = head
        bytes.reserveCapacity(head.count + tail.count + 120)
        bytes += Array("Date: \(dateHeader ?? self.dateHeader())\r\nMessage-ID: <\(Self.uniqueToken())@\(domain)>\r\n".utf8)
        bytes += tail
        return bytes
    }

    /// 128 random bits as hex (getrandom(2); Foundation's UUID reads /dev/urandom per call,
    /// which dominated bulk rendering).
    static func uniqueToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return String(high, radix: 16) + "." + String(low, radix: 16)
    }

    static func render(from: String, to: [String], subject: String, body: String) -> [UInt8] {
        MinimalMessage(from: from, to: to, subject: subject, body: body).render()
    }
}
