/// The SMTP envelope of one message: who it is from (MAIL FROM) and to whom it is
/// delivered (RCPT TO). Separate from the message's own headers, as lettre's
/// `Envelope` and smtplib's `sendmail(from_addr, to_addrs, msg)` keep it.
///
/// ```swift
/// let envelope = Envelope(from: "app@example.com", recipients: ["ops@example.com"])
/// ```
public struct Envelope: Sendable, Equatable {
    /// The reverse-path; "" for the null sender.
    public var from: String
    /// Every forward-path, To, Cc and Bcc alike, in order, without duplicates.
    public var recipients: [String]

    /// Makes an envelope. The addresses must already be validated (no CR, LF, NUL, or angle brackets).
    public init(from: String, recipients: [String]) {
        self.from = from
        self.recipients = recipients
    }

    /// True when any address has non-ASCII characters, so MAIL FROM needs SMTPUTF8.
    public var requiresSMTPUTF8: Bool {
        ([from] + recipients).contains { $0.utf8.contains { $0 >= 0x80 } }
    }
}
