// Fuzzes the SMTP reply parser: the input is what a (hostile) server sends.
// The first byte picks the mode:
//   bit 0 clear — LineReader.readReply alone, reply after reply until the input ends,
//                 through a normal or a tiny line buffer (bit 1), with or without
//                 enhanced status codes (bit 2), in chunks of (byte >> 3) + 1 bytes;
//   bit 0 set   — a whole session (greeting, EHLO, AUTH auto, MAIL, RCPT, DATA, QUIT)
//                 over SmtpConnection, whose server says exactly the input.
// Checks: replies are in 200…599 with at least one line and no line break; an
// enhanced code matches the reply's class; the password never shows in a
// transcript or an error; nothing but SmtpError escapes a session.
#if DEBUG
@testable import FuzzSupport
@testable import Smtp
import Foundation

/// Hands the input to the client in fixed chunks; the end of the input is the server hanging up.
final class FuzzServer: ByteStream {
    private let input: UnsafeBufferPointer<UInt8>
    private var offset = 0
    private let chunk: Int
    private(set) var written: [UInt8] = []

    init(_ input: UnsafeBufferPointer<UInt8>, chunk: Int) {
        self.input = input
        self.chunk = chunk
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws -> Int {
        let count = min(buffer.count, chunk, input.count - offset)
        guard count > 0 else { return 0 }
        buffer.copyMemory(from: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[offset..<offset + count])))
        offset += count
        return count
    }

    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws { written += bytes }
    func close() {}
}

private let password = "pa55word-fuzz"
private let secrets = [password, AuthEncoding.plain(username: "user", password: password), AuthEncoding.login(password)]

private func checkReply(_ reply: SmtpReply, enhanced: Bool) {
    fuzzCheck((200...599).contains(reply.code), "reply code \(reply.code)")
    fuzzCheck(!reply.lines.isEmpty && reply.lines.count <= 200, "reply with \(reply.lines.count) lines")
    fuzzCheck(reply.lines.allSatisfy { !$0.utf8.contains(0x0A) }, "a reply line holds LF")
    if let code = reply.enhancedCode {
        fuzzCheck(enhanced, "enhanced code without ENHANCEDSTATUSCODES")
        let parts = code.split(separator: ".", omittingEmptySubsequences: false)
        fuzzCheck(parts.count == 3 && parts.allSatisfy { (1...3).contains($0.count) && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
                  && parts[0] == "\(reply.code / 100)", "enhanced code \(code) for reply \(reply.code)")
    }
    for line in reply.lines {
        let shown = ReplyParser.printable(line)
        fuzzCheck(shown.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F } && shown.count <= 200, "printable() let a control through")
        _ = ReplyParser.splitEnhancedCode(line, replyCode: reply.code)
    }
}

private func checkNoSecret(_ transcript: SmtpTranscript, _ what: String) {
    for entry in transcript.entries {
        // Only what the client wrote: a server line may say anything, even the password.
        fuzzCheck(entry.direction == .server || !secrets.contains { entry.text.contains($0) },
                  "\(what): the password is in the transcript: \(entry.text)")
        fuzzCheck(!entry.text.utf8.contains(0x0A) && !entry.text.utf8.contains(0x0D), "\(what): a transcript line holds a line break")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let mode = data[0]
    let input = UnsafeBufferPointer(start: data + 1, count: size - 1)
    let server = FuzzServer(input, chunk: Int(mode >> 3) + 1)

    if mode & 1 == 0 {
        let enhanced = mode & 4 != 0
        let reader = mode & 2 != 0 ? LineReader(lineLimit: 40, chunk: 48) : LineReader()
        while true {
            do {
                var raw: [ArraySlice<UInt8>] = []
                let reply = try reader.readReply(from: server, deadline: .distantFuture, enhancedCodes: enhanced) { raw.append($0) }
                fuzzCheck(raw.count == reply.lines.count, "\(raw.count) lines read, \(reply.lines.count) in the reply")
                fuzzCheck(raw.allSatisfy { $0.count <= reader.lineLimit }, "a line over the limit was accepted")
                checkReply(reply, enhanced: enhanced)
            } catch is ReplyParseFailure {
                // A protocol error ends the session; the rest of the stream is not read.
                break
            } catch is StreamFailure {
                break
            } catch {
                fuzzCheck(false, "unexpected error from readReply: \(error)")
            }
        }
        return 0
    }

    var settings = SmtpSettings(host: "fuzz.example", port: 25, security: .none)
    settings.authentication = .auto
    settings.allowCleartextAuthentication = mode & 2 != 0
    settings.username = "user"
    settings.password = { password }
    settings.senderAddress = "app@example.com"
    settings.commandTimeout = 1
    settings.sessionTimeout = 5
    let connection = SmtpConnection(settings: settings, stream: server, socket: nil, remoteAddress: "fuzz", start: .now())
    do {
        try connection.setUp()
        let message = Array("Subject: fuzz\r\n\r\n.\r\nbody\r\n".utf8)
        let report = try connection.send(envelope: Envelope(from: "app@example.com", recipients: ["a@example.com", "b@example.com"]), message: message)
        checkReply(report.reply, enhanced: true)
        checkNoSecret(report.transcript, "delivery report")
        try connection.quit()
    } catch let error as SmtpError {
        checkNoSecret(error.transcript, "error")
        _ = "\(error)"
        if let reply = error.replyCode { fuzzCheck((200...599).contains(reply), "error with reply code \(reply)") }
    } catch {
        fuzzCheck(false, "a session threw something other than SmtpError: \(error)")
    }
    connection.close()
    return 0
}

@main enum Main { static func main() { fuzzMain(corpus: corpusDirectory(#filePath), fuzzOneInput) } }
#else
@main enum Main { static func main() { print("fuzz harnesses need a debug build (swift build -c debug)") } }
#endif
