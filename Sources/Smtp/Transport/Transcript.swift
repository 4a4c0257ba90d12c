/// The conversation of one session: lines prefixed `C:` (client), `S:` (server) or
/// `*` (a note from the client, e.g. "TLS established"), each with the milliseconds
/// since the session started. Credentials never appear: the AUTH PLAIN argument,
/// the AUTH LOGIN user and password lines, the CRAM-MD5 response and the XOAUTH2 and
/// OAUTHBEARER initial responses (which carry the access token) are replaced by
/// `<redacted>`, and message content is summarised as `<N bytes of message>`.
///
/// ```swift
/// for line in report.transcript.lines { print(line) }   // "+12ms S: 220 mx ESMTP"
/// ```
public struct SmtpTranscript: Sendable, Equatable, Codable {
    /// One line of the conversation.
    public struct Entry: Sendable, Equatable, Codable {
        /// Who spoke.
        public enum Direction: String, Sendable, Codable {
            /// Sent by the client ("C").
            case client = "C"
            /// Sent by the server ("S").
            case server = "S"
            /// A note from the client about what it did ("*").
            case note = "*"
        }
        /// Milliseconds since the session started.
        public var milliseconds: Int
        /// Who spoke.
        public var direction: Direction
        /// The text, without CRLF, redacted.
        public var text: String

        /// Makes an entry.
        public init(milliseconds: Int, direction: Direction, text: String) {
            self.milliseconds = milliseconds
            self.direction = direction
            self.text = text
        }
    }

    /// The lines, oldest first.
    public var entries: [Entry]

    /// Makes a transcript.
    public init(entries: [Entry] = []) { self.entries = entries }

    /// Lines as text: "+12ms C: EHLO example.com".
    public var lines: [String] {
        entries.map { "+\($0.milliseconds)ms \($0.direction.rawValue): \($0.text)" }
    }

    /// The whole transcript as one text block, one line per entry.
    public var text: String { lines.joined(separator: "\n") }
}

/// Records a session's transcript relative to its start. Bounded: when the transcript
/// of a long-lived connection passes `limit` entries, the lines after the session set-up
/// (greeting, TLS, EHLO, AUTH) are dropped before the next message.
struct TranscriptRecorder {
    let start: Deadline
    private(set) var transcript = SmtpTranscript()
    private var setupCount = 0
    var limit = 400
    /// Off for bulk sends that drop transcripts anyway: recording costs per line.
    var enabled = true

    init(start: Deadline) { self.start = start }

    private var elapsed: Int { Int(Deadline.now().seconds(since: start) * 1000) }

    mutating func client(_ text: @autoclosure () -> String) { append(.client, text()) }
    mutating func server(_ text: String) { append(.server, text) }
    mutating func note(_ text: @autoclosure () -> String) { append(.note, text()) }

    /// True until the server answered EHLO or HELO: until then it may be any service
    /// (an SSH banner, garbage), and each of its lines is cut to
    /// `ReplyParser.unprovenPeerLimit` printable characters.
    var peerUnproven = false

    /// Records a server line from its raw bytes (control characters replaced).
    mutating func server(bytes: ArraySlice<UInt8>) {
        guard enabled else { return }
        let text = String(decoding: bytes, as: UTF8.self)
        let shown = peerUnproven ? ReplyParser.excerpt(text) : ReplyParser.printable(text)
        append(.server, shown)
    }

    private mutating func append(_ direction: SmtpTranscript.Entry.Direction, _ text: @autoclosure () -> String) {
        guard enabled else { return }
        transcript.entries.append(.init(milliseconds: elapsed, direction: direction, text: text()))
    }

    /// Marks the end of set-up; the entries so far are kept when trimming.
    mutating func markSetupDone() { setupCount = transcript.entries.count }

    /// Drops per-message lines when over the limit; returns the index new lines start at.
    mutating func beginMessage() -> Int {
        if transcript.entries.count > limit {
            let dropped = transcript.entries.count - setupCount
            transcript.entries.removeSubrange(setupCount...)
            note("\(dropped) lines of earlier messages omitted")
        }
        return transcript.entries.count
    }

    func slice(from index: Int) -> SmtpTranscript {
        SmtpTranscript(entries: Array(transcript.entries[min(index, transcript.entries.count)...]))
    }
}
