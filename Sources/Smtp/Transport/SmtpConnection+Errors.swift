// How an SmtpConnection turns stream failures and refusing replies into SmtpError
// values with the stage, the diagnosis hint, the certificate and the transcript.
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
    var diagnosisContext: Diagnosis.Context {
        var context = Diagnosis.Context(settings: settings)
        context.command = currentCommand
        return context
    }

    func streamError(_ failure: StreamFailure, stage: SmtpError.Stage, sessionLimited: Bool) -> SmtpError {
        isBroken = true
        var context = diagnosisContext
        context.sessionDeadlineHit = sessionLimited
        let (kind, hint) = Diagnosis.stream(failure, stage: stage, context: context)
        recorder.note("\(failure): \(hint)")
        if case .abandoned = failure { return makeError(stage: stage, kind: kind, hint: hint, underlying: SessionAbandoned()) }
        return makeError(stage: stage, kind: kind, hint: hint, underlying: failure)
    }

    func replyError(_ reply: SmtpReply, stage: SmtpError.Stage) -> SmtpError {
        var reply = reply
        if recorder.peerUnproven {
            // Before EHLO/HELO succeeded the peer may be any service: its text is cut short.
            reply.lines = [ReplyParser.excerpt(reply.lines.joined(separator: " "))]
        }
        let (kind, hint) = Diagnosis.reply(reply, stage: stage, context: diagnosisContext)
        return makeError(stage: stage, kind: kind, hint: hint, reply: reply)
    }

    func makeError(stage: SmtpError.Stage, kind: SmtpError.Kind, hint: String, reply: SmtpReply? = nil,
                           underlying: (any Error)? = nil) -> SmtpError {
        SmtpError(stage: stage, kind: kind, replyCode: reply?.code, enhancedCode: reply?.enhancedCode, replyText: reply?.text,
                  hint: hint, certificate: certificate, transcript: recorder.transcript, underlying: underlying)
    }

    func withContext(_ error: SmtpError) -> SmtpError {
        var error = error
        error.certificate = certificate
        error.transcript = recorder.transcript
        return error
    }
}

extension Diagnosis.Context {
    init(settings: SmtpSettings) {
        self.init(host: settings.host, port: settings.port, security: settings.security, commandTimeout: settings.commandTimeout,
                  connectTimeout: settings.connectTimeout, sessionTimeout: settings.sessionTimeout)
        sessionLimitName = settings.sessionLimitName
    }
}
