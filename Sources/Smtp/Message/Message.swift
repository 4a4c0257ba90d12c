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

/// One plain-text email, built apart from its transport as CPython's `email` is apart
/// from `smtplib`: `rendered()` gives the bytes for DATA, `envelope` the MAIL FROM and
/// RCPT TO addresses.
///
/// The rendering is RFC 5322 + MIME: Date, Message-ID, From, Reply-To, To, Cc,
/// Subject, the extra headers, MIME-Version, `Content-Type: text/plain;
/// charset=utf-8`, and `Content-Transfer-Encoding: 7bit` when the body is short lines
/// of printable ASCII, else `quoted-printable`. Headers are folded at 78 octets where
/// a space allows, encoded with RFC 2047 when not ASCII; every line ends in CRLF and
/// none is longer than 998 octets. Bcc is never rendered, only put in the envelope.
/// Nothing from an address, a display name, the subject or an extra header can add a
/// line: a CR or LF there makes `rendered()` throw.
///
/// The date and the message id are properties, so tests can fix them.
///
/// ```swift
/// var message = Message(
///     from: Mailbox(try EmailAddress("noreply@example.com")),
///     to: [Mailbox(try EmailAddress("ops@example.com"))],
///     subject: "Test email",
///     text: "It works.\n")
/// let bytes = try message.rendered()
/// try transport.send(bytes, envelope: message.envelope)
/// ```
public struct Message: Sendable {
    /// A header the builder does not set itself, e.g. `X-Mailer` or `Auto-Submitted`.
    public struct Header: Sendable, Hashable {
        /// The field name: printable ASCII without spaces or ":".
        public var name: String
        /// The value: text without line breaks or control characters; encoded with
        /// RFC 2047 when not ASCII, folded when long.
        public var value: String

        /// Makes a header; it is checked when the message is rendered.
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The author (From) and the envelope's sender.
    public var from: Mailbox
    /// To recipients.
    public var to: [Mailbox]
    /// Cc recipients.
    public var cc: [Mailbox]
    /// Blind recipients: in the envelope only, never in the headers.
    public var bcc: [Mailbox]
    /// Where replies go (Reply-To), if not to `from`.
    public var replyTo: [Mailbox]
    /// The subject, any text without line breaks or control characters.
    public var subject: String
    /// The body, UTF-8 text; LF, CRLF and lone CR all become CRLF line breaks.
    public var text: String
    /// The Date header's instant.
    public var date: Date
    /// The zone the Date header is written in (its numeric offset is what is rendered).
    public var timeZone: TimeZone
    /// The Message-ID without its angle brackets, `unique@domain`.
    public var messageID: String
    /// Further headers, rendered in order after Subject.
    public var extraHeaders: [Header]

    /// Headers the builder writes itself; an extra header may not repeat them.
    static let ownedHeaders: Set<String> = [
        "date", "message-id", "from", "to", "cc", "bcc", "reply-to", "subject",
        "mime-version", "content-type", "content-transfer-encoding",
    ]

    /// Makes a message; nothing is checked until `rendered()`.
    ///
    /// ```swift
    /// let message = Message(from: from, to: [to], subject: "Hello", text: "Hi!",
    ///                       date: fixedDate, timeZone: TimeZone(identifier: "UTC")!,
    ///                       messageID: "fixed@example.com")   // deterministic for tests
    /// ```
    /// - Parameters:
    ///   - from: the author and envelope sender.
    ///   - to: To recipients.
    ///   - cc: Cc recipients.
    ///   - bcc: blind recipients (envelope only).
    ///   - replyTo: Reply-To mailboxes.
    ///   - subject: the subject.
    ///   - text: the plain-text body.
    ///   - date: the Date header; now by default.
    ///   - timeZone: the zone of the Date header; the process's zone by default.
    ///   - messageID: the Message-ID without brackets; a random one at the sender's domain by default.
    ///   - extraHeaders: further headers.
    public init(
        from: Mailbox,
        to: [Mailbox] = [],
        cc: [Mailbox] = [],
        bcc: [Mailbox] = [],
        replyTo: [Mailbox] = [],
        subject: String = "",
        text: String = "",
        date: Date = Date(),
        timeZone: TimeZone = .current,
        messageID: String? = nil,
        extraHeaders: [Header] = []
    ) {
        self.from = from
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.replyTo = replyTo
        self.subject = subject
        self.text = text
        self.date = date
        self.timeZone = timeZone
        self.messageID = messageID ?? Message.makeMessageID(domain: from.address.asciiDomain)
        self.extraHeaders = extraHeaders
    }

    /// A new random message id at `domain`: 128 random bits in hex, `…@domain`.
    ///
    /// ```swift
    /// Message.makeMessageID(domain: "example.com")   // "3f9a…@example.com"
    /// ```
    public static func makeMessageID(domain: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<16).map { _ in Hex.byte(UInt8.random(in: 0...255, using: &generator)) }.joined()
        return "\(random.lowercased())@\(domain)"
    }

    /// The SMTP envelope: `from` as the sender, every To, Cc and Bcc address once, in
    /// that order. Addresses are in their `address` form (A-label domains).
    public var envelope: Envelope {
        var seen: Set<String> = []
        var recipients: [String] = []
        for mailbox in to + cc + bcc where seen.insert(mailbox.address.address).inserted {
            recipients.append(mailbox.address.address)
        }
        return Envelope(from: from.address.address, recipients: recipients)
    }

    /// True when an address has a non-ASCII local part, so the server must offer
    /// SMTPUTF8 (the headers then carry UTF-8 too, RFC 6532).
    public var requiresSMTPUTF8: Bool {
        ([from] + to + cc + bcc + replyTo).contains { $0.address.requiresSMTPUTF8 }
    }

    /// The message as the octets to send after DATA (before the transport's
    /// dot-stuffing): CRLF line ends, no line over 998 octets.
    ///
    /// ```swift
    /// let bytes = try message.rendered()
    /// ```
    /// - Returns: the headers, a blank line and the encoded body.
    /// - Throws: `ValidationError` when a display name, the subject, the message id or
    ///   an extra header has a line break or control character, or an extra header
    ///   has a bad name or repeats a header the builder writes.
    public func rendered() throws(ValidationError) -> [UInt8] {
        var out: [UInt8] = []
        out += try field("Date") { $0.append(Message.formatDate(date, in: timeZone)) }
        try checkMessageID()
        out += try field("Message-ID") { $0.append("<\(messageID)>") }
        out += try addressField("From", [from])
        if !replyTo.isEmpty { out += try addressField("Reply-To", replyTo) }
        if !to.isEmpty { out += try addressField("To", to) }
        if !cc.isEmpty { out += try addressField("Cc", cc) }
        try ValidationError.checkNoControls(subject, "the subject")
        out += try field("Subject") { $0.appendUnstructured(subject) }
        for header in extraHeaders {
            try check(header)
            out += try field(header.name) { $0.appendUnstructured(header.value) }
        }

        let lines = BodyEncoding.lines(of: text)
        let plain = BodyEncoding.isPlain(lines)
        out += Array("MIME-Version: 1.0\r\n".utf8)
        out += Array("Content-Type: text/plain; charset=utf-8\r\n".utf8)
        out += Array("Content-Transfer-Encoding: \(plain ? "7bit" : "quoted-printable")\r\n".utf8)
        out += [0x0D, 0x0A]
        for line in plain ? lines : BodyEncoding.quotedPrintable(lines) {
            out += line
            out += [0x0D, 0x0A]
        }
        return out
    }

    private func field(_ name: String, _ write: (inout HeaderFolder) throws(ValidationError) -> Void) throws(ValidationError) -> [UInt8] {
        var folder = HeaderFolder(name: name)
        try write(&folder)
        return try folder.finish()
    }

    private func addressField(_ name: String, _ mailboxes: [Mailbox]) throws(ValidationError) -> [UInt8] {
        try field(name) { folder throws(ValidationError) in
            for (index, mailbox) in mailboxes.enumerated() {
                do throws(ValidationError) {
                    try mailbox.write(to: &folder)
                } catch {
                    throw ValidationError(error.code, "\(error.reason) (in \(name): \(mailbox.address.address))")
                }
                if index < mailboxes.count - 1 { folder.attach(",") }
            }
        }
    }

    private func checkMessageID() throws(ValidationError) {
        try ValidationError.checkNoControls(messageID, "the message id")
        let parts = messageID.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, messageID.utf8.count <= 250,
              messageID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3C && $0 != 0x3E && $0 != 0x22 && $0 != 0x5C })
        else {
            throw ValidationError(.invalidSyntax, "the message id must be one printable ASCII word with one @ (like unique@example.com), without angle brackets")
        }
    }

    private func check(_ header: Header) throws(ValidationError) {
        let name = header.name
        if name.isEmpty { throw ValidationError(.empty, "an extra header has no name") }
        if name.utf8.count > 76 { throw ValidationError(.tooLong, "the header name “\(DomainName.shorten(name))…” is longer than 76 characters") }
        try ValidationError.checkNoControls(name, "the name of an extra header")
        guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3A }) else {
            throw ValidationError(.invalidCharacter, "the header name “\(name)” may only have printable ASCII characters, without spaces or “:”")
        }
        if Message.ownedHeaders.contains(name.lowercased()) {
            throw ValidationError(.notAllowed, "the \(name) header is written by the message builder; set it through its own property")
        }
        try ValidationError.checkNoControls(header.value, "the value of the \(name) header")
    }

    /// RFC 5322 section 3.3: "Tue, 01 Jul 2003 10:52:37 +0200", English names, numeric zone.
    static func formatDate(_ date: Date, in zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let offset = zone.secondsFromGMT(for: date) / 60
        let sign = offset < 0 ? "-" : "+"
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let year = String(c.year ?? 1970)
        return "\(days[(c.weekday ?? 1) - 1]), \(two(c.day ?? 1)) \(months[(c.month ?? 1) - 1]) "
            + "\(String(repeating: "0", count: max(0, 4 - year.count)) + year) "
            + "\(two(c.hour ?? 0)):\(two(c.minute ?? 0)):\(two(c.second ?? 0)) "
            + "\(sign)\(two(abs(offset) / 60))\(two(abs(offset) % 60))"
    }
}
