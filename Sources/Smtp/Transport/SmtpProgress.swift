#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One step of a session as it begins: which stage, what exactly is awaited, and how
/// long the session will wait for it at most.
///
/// ```swift
/// SmtpProgressStep(stage: .greeting, detail: "greeting", limitSeconds: 30)
/// ```
public struct SmtpProgressStep: Sendable, Equatable {
    /// The stage that begins (the same names as a failure's ``SmtpError/stage``).
    public var stage: SmtpError.Stage
    /// What is awaited: "smtp.example.com:587" for connect, else the command
    /// ("EHLO", "AUTH", "TLS handshake", "greeting"). Never a credential.
    public var detail: String
    /// Seconds the session waits for this step at most: the connect timeout, or the
    /// command timeout capped by what is left of the session's limit.
    public var limitSeconds: Double

    /// Makes a step; see the properties.
    public init(stage: SmtpError.Stage, detail: String, limitSeconds: Double) {
        self.stage = stage
        self.detail = detail
        self.limitSeconds = limitSeconds
    }
}

/// Where a session reports its steps while it runs, so a person watching sees
/// "waiting for the greeting, up to 30 s" instead of a bare clock. Set it as
/// ``SmtpSettings/progress``; the session calls it on its own thread at each change
/// of stage (several commands of one stage, such as the AUTH LOGIN exchange, are
/// one step). Reporting must be quick: it runs between the session's reads and writes.
///
/// ```swift
/// settings.progress = SmtpProgress { step in stream.send(step) }
/// ```
public final class SmtpProgress: Sendable {
    /// The stage reported last: several commands of one stage are one step.
    private let last = Mutex<SmtpError.Stage?>(nil)
    private let report: @Sendable (SmtpProgressStep) -> Void

    /// - Parameter report: called with each new step.
    public init(_ report: @escaping @Sendable (SmtpProgressStep) -> Void) {
        self.report = report
    }

    /// Reports `stage` unless it is the stage reported last. For callers outside the
    /// SMTP conversation too (the responder reports `.oauth` while it gets a token).
    public func enter(_ stage: SmtpError.Stage, detail: String, limitSeconds: Double) {
        let isNew = last.withLock { last in
            defer { last = stage }
            return last != stage
        }
        if isNew { report(SmtpProgressStep(stage: stage, detail: detail, limitSeconds: max(0, limitSeconds))) }
    }

    /// As ``enter(_:detail:limitSeconds:)``, with the time left until `deadline`.
    func enter(_ stage: SmtpError.Stage, detail: String, until deadline: Deadline) {
        enter(stage, detail: detail, limitSeconds: deadline.seconds(since: .now()))
    }
}
