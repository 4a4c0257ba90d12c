@testable import Smtp

/// An in-memory SMTP server for fast protocol tests (like lettre's MockStream): the
/// client's bytes are split into lines, each line (or the whole DATA content) goes to
/// `respond`, and what it returns is queued for the client to read. Reading with
/// nothing queued is a timeout, as a silent server would be.
final class ScriptedPeer: ByteStream {
    /// Everything the client wrote.
    private(set) var received: [UInt8] = []
    /// How many write calls the client made (pipelining groups are one write).
    private(set) var writeCount = 0
    private var toClient: [UInt8]
    private var pendingLine: [UInt8] = []
    private var inData = false
    private var dataContent: [UInt8] = []
    private let respond: (String) -> String?
    var closed = false

    /// - Parameters:
    ///   - greeting: the first bytes the client reads (with CRLF).
    ///   - respond: gets each command line without CRLF, or "DATA-CONTENT:" + the content
    ///     (still dot-stuffed, without the final ".\r\n"); returns the reply with CRLF, or nil.
    init(greeting: String = "220 scripted.test ESMTP\r\n", respond: @escaping (String) -> String?) {
        toClient = Array(greeting.utf8)
        self.respond = respond
    }

    var receivedText: String { String(decoding: received, as: UTF8.self) }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws -> Int {
        if closed { throw StreamFailure.closed("closed") }
        guard !toClient.isEmpty else { throw StreamFailure.timeout }
        let count = min(buffer.count, toClient.count)
        buffer.copyBytes(from: toClient[..<count])
        toClient.removeFirst(count)
        return count
    }

    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws {
        writeCount += 1
        received += bytes
        for byte in bytes {
            pendingLine.append(byte)
            guard byte == 0x0A else { continue }
            let line = String(decoding: pendingLine.dropLast(2), as: UTF8.self)
            if inData {
                if line == "." {
                    inData = false
                    let content = String(decoding: dataContent, as: UTF8.self)
                    dataContent = []
                    if let reply = respond("DATA-CONTENT:" + content) { toClient += Array(reply.utf8) }
                } else {
                    dataContent += pendingLine
                }
            } else if let reply = respond(line) {
                toClient += Array(reply.utf8)
                if reply.hasPrefix("354") { inData = true }
            }
            pendingLine = []
        }
    }

    func close() { closed = true }

    /// A server with the usual answers; `ehlo` lines after the first.
    static func standard(ehlo: [String] = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 1000000", "AUTH PLAIN LOGIN CRAM-MD5"],
                         override: @escaping (String) -> String? = { _ in nil }) -> ScriptedPeer {
        ScriptedPeer { line in
            if let answer = override(line) { return answer }
            let verb = line.split(separator: " ").first.map { $0.uppercased() } ?? ""
            switch verb {
            case "EHLO":
                let lines = ["scripted.test"] + ehlo
                return lines.enumerated().map { "250\($0.offset == lines.count - 1 ? " " : "-")\($0.element)\r\n" }.joined()
            case "HELO": return "250 scripted.test\r\n"
            case "MAIL", "RCPT", "RSET", "NOOP": return "250 2.0.0 OK\r\n"
            case "DATA": return "354 go ahead\r\n"
            case "QUIT": return "221 2.0.0 bye\r\n"
            case "AUTH": return "235 2.7.0 OK\r\n"
            default:
                if line.hasPrefix("DATA-CONTENT:") { return "250 2.0.0 queued\r\n" }
                return "500 5.5.2 unknown\r\n"
            }
        }
    }
}

/// Settings for scripted sessions: plain, short timeouts.
func scriptedSettings(_ configure: (inout SmtpSettings) -> Void = { _ in }) -> SmtpSettings {
    var settings = SmtpSettings(host: "scripted.test", port: 25, security: .none)
    settings.senderAddress = "app@example.com"
    settings.commandTimeout = 1
    settings.sessionTimeout = 5
    configure(&settings)
    return settings
}

/// Opens a connection over a scripted peer (greeting through AUTH).
func openScripted(_ peer: ScriptedPeer, _ settings: SmtpSettings) throws -> SmtpConnection {
    let connection = SmtpConnection(settings: settings, stream: peer, socket: nil, remoteAddress: "scripted", start: .now())
    try connection.setUp()
    return connection
}
