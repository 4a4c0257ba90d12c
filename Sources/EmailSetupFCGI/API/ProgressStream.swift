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

/// One step of a test email or check as the page shows it: "waiting for the
/// greeting", "up to 30 s".
struct WorkProgress: Sendable, Equatable {
    /// A stable name for programs: a diagnosis stage (`connect`, `greeting`, `tls`,
    /// `auth`, …) or `advice` while other ports are tried after a failure.
    var step: String
    /// The same for people: "connecting to smtp.example.com:587".
    var label: String
    /// Seconds the responder waits for this step at most.
    var limitSeconds: Double

    /// The step an SMTP session reported, in the page's words.
    init(_ step: SmtpProgressStep) {
        self.step = step.stage.rawValue
        self.limitSeconds = step.limitSeconds
        switch step.stage {
        case .dns: label = "looking up \(step.detail)"
        case .connect: label = "connecting to \(step.detail)"
        case .tls: label = "TLS handshake"
        case .greeting: label = "waiting for the greeting"
        case .ehlo: label = "introducing ourselves (EHLO)"
        case .starttls: label = "switching to encryption (STARTTLS)"
        case .auth: label = "signing in"
        case .oauth: label = "getting an access token from the provider"
        case .mail: label = "naming the sender (MAIL FROM)"
        case .rcpt: label = "naming the recipient (RCPT TO)"
        case .data: label = "sending the message (DATA)"
        case .quit: label = "closing the connection (QUIT)"
        }
    }

    init(step: String, label: String, limitSeconds: Double) {
        self.step = step
        self.label = label
        self.limitSeconds = limitSeconds
    }
}

/// Where the work of a test email or check reports its steps (nil: nobody watches).
typealias WorkProgressSink = @Sendable (WorkProgress) -> Void

/// The streamed answer of a test email or check (`Accept: application/x-ndjson`):
/// status 200 at once, one JSON line per step, and as the last line the answer the
/// client would otherwise have had, with its HTTP status:
///
/// ```
/// {"step":"connect","label":"connecting to smtp.example.com:587","limit_seconds":10,"elapsed_ms":0}
/// {"step":"greeting","label":"waiting for the greeting","limit_seconds":30,"elapsed_ms":4}
/// {"http_status":504,"response":{"status":"error","errors":{…},"diagnosis":{…}}}
/// ```
///
/// Only answers that run an SMTP session stream; what is answered at once (400,
/// 409, 429, 503) keeps its status and plain JSON, so a client reads the
/// Content-Type first. Without the Accept header nothing changes (curl, scripts).
enum ProgressStream {
    static let mediaType = "application/x-ndjson"

    /// True when the client asked for the streamed form.
    static func isWanted(by request: Request) -> Bool {
        (request.headers["accept"] ?? "").lowercased().contains(mediaType)
    }

    /// The CGI head of a streamed answer: no Content-Length (the web server frames
    /// it), and `X-Accel-Buffering: no` so nginx passes each line on as it comes.
    static func head() -> [UInt8] {
        Array(("Status: 200 OK\r\nContent-Type: \(mediaType); charset=utf-8\r\nCache-Control: no-store\r\n"
            + "X-Content-Type-Options: nosniff\r\nX-Accel-Buffering: no\r\n\r\n").utf8)
    }

    /// One step line.
    static func line(_ progress: WorkProgress, elapsedMilliseconds: Int) -> [UInt8] {
        let limit = (progress.limitSeconds * 10).rounded() / 10
        return frame(.object([("step", .string(progress.step)), ("label", .string(progress.label)),
                              ("limit_seconds", .number(limit)), ("elapsed_ms", .number(Double(elapsedMilliseconds)))]))
    }

    /// The last line: the HTTP status the plain answer would have had and its JSON body
    /// (a body that is not JSON, which no session answer is, becomes a string).
    static func finalLine(_ response: Response) -> [UInt8] {
        let body = (try? JSONValue.parse(response.body)) ?? .string(String(decoding: response.body, as: UTF8.self))
        var members: [(String, JSONValue)] = [("http_status", .number(Double(response.status))), ("response", body)]
        if let retry = response.header("Retry-After") { members.append(("retry_after", .string(retry))) }
        return frame(.object(members))
    }

    private static func frame(_ value: JSONValue) -> [UInt8] {
        value.serialized() + [UInt8(ascii: "\n")]
    }
}
