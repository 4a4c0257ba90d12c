#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Picks the kind and the one-line hint for each failure. Pure functions of what was
/// observed, so every hint is unit-tested without a server.
enum Diagnosis {
    struct Context {
        var host: String
        var port: Int
        var security: SmtpSettings.Security
        var commandTimeout: Double
        var connectTimeout: Double
        var sessionTimeout: Double
        /// True when the session deadline, not the command timeout, was the limit.
        var sessionDeadlineHit = false
        /// The command whose reply was awaited ("EHLO", "end of data"…).
        var command: String = ""
        /// The caller's limit that lowered `sessionTimeout`, if any (`SmtpSettings.sessionLimitName`).
        var sessionLimitName: String?
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// A reply that is not what the command accepts.
    static func reply(_ reply: SmtpReply, stage: SmtpError.Stage, context: Context) -> (SmtpError.Kind, String) {
        let codeText = "\(reply.code)" + (reply.enhancedCode.map { " " + $0 } ?? "")
        let temporary = reply.isTransientNegative
        let kind: SmtpError.Kind = temporary ? .rejectedTemporary : .rejectedPermanent
        let said = ReplyParser.printable(reply.lines.first ?? "")
        switch stage {
        case .greeting:
            if reply.code == 421 || reply.code == 554 {
                return (kind, "the server refuses connections from here (\(codeText) \(said))" + (temporary ? "; try again later" : ""))
            }
            return (kind, "unexpected greeting \(codeText): \(said)")
        case .auth:
            if let hint = microsoftAuthHint(reply, codeText: codeText, said: said) { return (.authRejected, hint) }
            switch reply.code {
            case 535: return (.authRejected, "credentials rejected (\(codeText)): check the user name and password (some providers require an app password)")
            case 534: return (.authRejected, "the server wants a stronger mechanism or an app password (\(codeText))")
            case 538: return (.mechanismUnsupported, "the server requires encryption for this mechanism (\(codeText)); choose STARTTLS or SSL/TLS")
            case 504: return (.mechanismUnsupported, "the server does not support this AUTH mechanism (\(codeText)); choose Auto")
            case 530: return (.authRejected, "the server requires authentication first (\(codeText))")
            default:
                return temporary ? (.rejectedTemporary, "authentication failed temporarily (\(codeText) \(said)); try again later")
                    : (.authRejected, "authentication failed (\(codeText) \(said))")
            }
        case .mail:
            if reply.code == 530, asksForTLS(reply) { return (kind, tlsRequiredHint(codeText)) }
            if reply.code == 530 { return (kind, "the server requires authentication (\(codeText)): choose an Authentication type and set the user and password") }
            if reply.code == 552 { return (kind, "message too large for the server (\(codeText))") }
            return (kind, "sender refused (\(codeText) \(said))" + (temporary ? "; try again later" : ""))
        case .rcpt:
            if reply.code == 530, asksForTLS(reply) { return (kind, tlsRequiredHint(codeText)) }
            if !temporary, reply.enhancedCode == "5.7.1" || said.lowercased().contains("relay") {
                return (kind, "relay denied (\(codeText) \(said)): authenticate with a user and password, or ask the server's administrator to let this system relay")
            }
            if reply.code == 554 || reply.code == 550 || reply.code == 551 || reply.code == 553 {
                return (kind, "recipient refused (\(codeText) \(said))")
            }
            if reply.code == 503 { return (kind, "recipient not accepted because an earlier command failed (\(codeText))") }
            return (kind, "recipient refused (\(codeText) \(said))" + (temporary ? "; try again later" : ""))
        case .data:
            if reply.code == 552 { return (kind, "message too large for the server (\(codeText))") }
            return (kind, "message " + (temporary ? "deferred" : "refused") + " after DATA (\(codeText) \(said))" + (temporary ? "; try again later" : ""))
        case .ehlo:
            return (kind, "EHLO/HELO refused (\(codeText) \(said)); try another EHLO name")
        case .starttls:
            return (kind, "STARTTLS refused (\(codeText) \(said))")
        default:
            return (kind, "\(context.command) refused (\(codeText) \(said))")
        }
    }

    /// Microsoft 365's refusals of a password that no password can fix (the replies of
    /// its basic-authentication retirement and of SMTP AUTH switched off), else nil.
    static func microsoftAuthHint(_ reply: SmtpReply, codeText: String, said: String) -> String? {
        let text = reply.lines.joined(separator: " ").lowercased()
        if text.contains("smtpclientauthentication is disabled") {
            return smtpAuthDisabledHint(codeText)
        }
        if text.contains("basic authentication is disabled") || text.contains("basic authentication is not supported")
            || reply.enhancedCode == "5.7.30" {
            return "the server no longer accepts passwords (\(codeText) \(said)): switch Sign-in method to OAuth 2.0"
        }
        if text.contains("security defaults") {
            return "Microsoft Entra security defaults block password sign-in for SMTP (\(codeText)): switch Sign-in method to OAuth 2.0, or turn security defaults off (Entra admin center → Overview → Properties)"
        }
        if reply.enhancedCode == "5.7.139", !text.contains("credentials were incorrect") {
            return "Microsoft 365 refused password sign-in (\(codeText) \(said)): switch Sign-in method to OAuth 2.0, or enable Authenticated SMTP for this mailbox"
        }
        return nil
    }

    /// Where Exchange Online's SMTP AUTH switch is, mailbox and tenant.
    static func smtpAuthDisabledHint(_ codeText: String) -> String {
        "SMTP AUTH is disabled for this mailbox or tenant: enable Authenticated SMTP (\(codeText)) in the Microsoft 365 admin center "
            + "(Users → Active users → the mailbox → Mail → Manage email apps) and tenant-wide in the Exchange admin center "
            + "(Settings → Mail flow → uncheck \"Turn off SMTP AUTH protocol\")"
    }

    /// AUTH XOAUTH2 / OAUTHBEARER refused. `serverError` is the JSON of the server's error
    /// challenge, when it sent one (Gmail, RFC 7628); its `status` says what to fix.
    static func oauthReply(_ reply: SmtpReply, serverError: OAuthSASL.ServerError?, context: Context) -> (SmtpError.Kind, String) {
        let codeText = "\(reply.code)" + (reply.enhancedCode.map { " " + $0 } ?? "")
        let said = ReplyParser.printable(reply.lines.first ?? "")
        let text = reply.lines.joined(separator: " ").lowercased()
        if text.contains("smtpclientauthentication is disabled") || (reply.code == 535 && reply.enhancedCode == "5.7.3") {
            return (.authRejected, "the access token was refused: " + smtpAuthDisabledHint(codeText)
                        + "; if it is enabled, the token lacks SMTP.Send (or, app-only, SMTP.SendAsApp and a mailbox permission) or was issued for another mailbox than User name")
        }
        if let serverError {
            let status = serverError.status ?? "none"
            let scope = serverError.scope.map { "the scope \($0)" } ?? "the scope the server asks for"
            let facts = "\(codeText); status \(status)" + (serverError.scope.map { ", scope \($0)" } ?? "")
            switch status.lowercased() {
            case "invalid_token", "401":
                return (.authRejected, "the access token is invalid, expired or revoked (\(facts)): sign in with OAuth 2.0 again")
            case "insufficient_scope", "403":
                return (.authRejected, "the access token lacks the permission to send mail (\(facts)): grant \(scope) and sign in with OAuth 2.0 again")
            default:
                return (.authRejected, "the server refused the access token (\(facts)): it expired, was revoked or lacks \(scope), or User name is not the account that signed in; sign in with OAuth 2.0 again")
            }
        }
        if reply.code == 535 || reply.code == 534 {
            return (.authRejected, "the access token was refused (\(codeText) \(said)): sign in with OAuth 2.0 again, and check that User name is the mailbox the token was issued for")
        }
        return Diagnosis.reply(reply, stage: .auth, context: context)
    }

    /// A stream failure (timeout, close, syscall, TLS) during a stage.
    static func stream(_ failure: StreamFailure, stage: SmtpError.Stage, context: Context) -> (SmtpError.Kind, String) {
        switch failure {
        case .timeout:
            if context.sessionDeadlineHit {
                if let limit = context.sessionLimitName {
                    return (.timeout, "stopped after \(seconds(context.sessionTimeout)), the longest one session may take here (\(limit)), during \(stage.rawValue): the server answers too slowly; check it, or lower the timeouts")
                }
                return (.timeout, "the session deadline of \(seconds(context.sessionTimeout)) passed during \(stage.rawValue)")
            }
            let limit = seconds(context.commandTimeout)
            switch stage {
            case .greeting:
                if context.port == 465 && context.security != .implicitTLS {
                    return (.timeout, "no greeting within \(limit): port 465 expects SSL/TLS (implicit TLS), not \(context.security == .startTLSRequired ? "STARTTLS" : "a plain connection"): set Connection type to SSL/TLS")
                }
                return (.timeout, "no greeting within \(limit): the server may expect SSL/TLS on port \(context.port) (then set Connection type to SSL/TLS), or a firewall holds the connection")
            case .tls:
                return (.timeout, "TLS handshake did not finish within \(limit): port \(context.port) may expect plain SMTP or STARTTLS; try Connection type STARTTLS")
            case .data:
                return (.timeout, "no reply to the end of the message within \(limit)")
            default:
                return (.timeout, "no answer to \(context.command.isEmpty ? stage.rawValue.uppercased() : context.command) within \(limit)")
            }
        case .closed(let why):
            if stage == .tls {
                return (.tlsHandshake, "the server closed the connection during the TLS handshake (\(why)); it may not support TLS 1.2+ or SNI for \(context.host)")
            }
            if stage == .greeting {
                return (.protocol, "the server closed the connection before its greeting; it may limit connections" + (context.security == .implicitTLS ? "" : " or expect SSL/TLS"))
            }
            return (.protocol, "the server closed the connection during \(stage.rawValue) (\(why))")
        case .system(let function, let code):
            return (.protocol, "\(function) failed during \(stage.rawValue): \(String(cString: strerror(code)))")
        case .tls(_, let errors):
            let joined = errors.joined(separator: " ").lowercased()
            if joined.contains("wrong version number") || joined.contains("packet length too long") || joined.contains("record layer failure") {
                if context.port == 587 {
                    return (.tlsHandshake, "the server answered in plain text: port 587 expects STARTTLS, not SSL/TLS: set Connection type to STARTTLS")
                }
                return (.tlsHandshake, "the server answered in plain text: port \(context.port) expects STARTTLS or no TLS, not SSL/TLS: set Connection type to STARTTLS")
            }
            if joined.contains("unsupported protocol") || joined.contains("protocol version") {
                return (.tlsHandshake, "the server offers only TLS older than 1.2")
            }
            if joined.contains("unrecognized name") {
                return (.tlsHandshake, "the server does not know the name \(context.host) (SNI); use the host name of its certificate")
            }
            return (.tlsHandshake, "TLS handshake failed: " + (errors.first ?? "unknown OpenSSL error"))
        case .abandoned:
            return (.timeout, "abandoned during \(stage.rawValue): the client went away (the browser cancelled or the web server gave up)")
        }
    }

    /// A failure to connect (resolve or TCP).
    static func connect(_ failure: ConnectFailure, context: Context) -> (SmtpError.Stage, SmtpError.Kind, String) {
        let target = "\(context.host):\(context.port)"
        switch failure {
        case .resolveTimeout:
            return (.dns, .timeout, "the name \(context.host) did not resolve within the deadline: check the DNS resolver")
        case .abandoned:
            return (.connect, .timeout, "abandoned while connecting to \(target): the client went away (the browser cancelled or the web server gave up)")
        case .resolve(let code, let message):
            if code == EAI_AGAIN {
                return (.dns, .timeout, "DNS lookup of \(context.host) failed temporarily (\(message)); try again")
            }
            if context.host.unicodeScalars.contains(where: { !$0.isASCII }) {
                return (.dns, .unreachable, "the name \(context.host) does not resolve: write an international domain name in its xn-- (punycode) form")
            }
            return (.dns, .unreachable, "the name \(context.host) does not resolve (\(message)): check the spelling")
        case .connect(let failures):
            if failures.isEmpty { return (.dns, .unreachable, "the name \(context.host) has no usable address") }
            func hasErrno(_ codes: [Int32]) -> Bool {
                failures.contains { if case .system(_, let code) = $0.failure { return codes.contains(code) } else { return false } }
            }
            if hasErrno([ECONNREFUSED]) {
                return (.connect, .refused, "connection refused: nothing listens on \(target); check the port and that the SMTP server runs")
            }
            if failures.contains(where: { if case .timeout = $0.failure { return true } else { return false } }) {
                return (.connect, .timeout, "no answer within \(seconds(context.connectTimeout)) from \(target): a firewall may drop the traffic")
            }
            if hasErrno([ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT]) {
                return (.connect, .unreachable, "no route to \(target): check the host and the network")
            }
            return (.connect, .unreachable, "could not connect to \(target): \(failures.last!.failure)")
        }
    }

    /// A certificate that full verification rejected: what is wrong and the fix, then
    /// which names the certificate covers, its expiry and the fingerprint to pin, so
    /// a person can compare with what the mail provider publishes.
    static func verification(_ result: TLSVerifyResult, certificate: SmtpCertificate?, host: String) -> String {
        guard let cert = certificate else {
            return "certificate verification failed: \(result.message)"
        }
        let names = cert.names.isEmpty ? "no names" : cert.names.joined(separator: ", ")
        let facts = "(covers \(names); valid until \(cert.notAfter); fingerprint to pin: \(cert.sha256Fingerprint))"
        switch result.reason {
        case .hostnameMismatch:
            return "certificate is for \(names), not \(host): set Host to one of these names, or pin the certificate \(facts)"
        case .expired:
            return "certificate expired on \(cert.notAfter): renew it on the server, or pin it meanwhile \(facts)"
        case .notYetValid:
            return "certificate is valid only from \(cert.notBefore): check the clocks of both systems \(facts)"
        case .untrusted:
            if cert.subject == cert.issuer {
                return "certificate is self-signed (\(cert.subject)): add it as a CA certificate or pin it \(facts)"
            }
            return "certificate issuer \(cert.issuer) is not trusted: add its CA certificate or pin the server certificate \(facts)"
        case .other, .ok:
            return "certificate verification failed: \(result.message) \(facts)"
        }
    }

    /// A 530 that asks for TLS rather than for authentication ("Must issue a
    /// STARTTLS command first"), as Postfix and aiosmtpd word it.
    static func asksForTLS(_ reply: SmtpReply) -> Bool {
        reply.lines.contains { $0.uppercased().contains("STARTTLS") || $0.uppercased().contains(" TLS") }
    }

    /// Our client takes STARTTLS whenever it is offered, so when a server demands it
    /// the offer did not reach us: implicit TLS is the way around.
    static func tlsRequiredHint(_ codeText: String) -> String {
        "the server requires STARTTLS first (\(codeText)) but did not offer it on this connection (something on the way may strip it): set Connection type to SSL/TLS, usually on port 465"
    }
}
