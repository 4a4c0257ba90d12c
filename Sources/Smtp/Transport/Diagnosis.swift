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
        if stage != .greeting, stage != .auth, stage != .starttls, let hint = temporaryRefusal(reply, codeText: codeText, said: said) {
            return (.rejectedTemporary, hint)
        }
        switch stage {
        case .greeting:
            if temporary {
                return (kind, "the server is temporarily not accepting connections (\(codeText) \(said)): it is busy, in maintenance or limits "
                            + "connections from this system; try again in a few minutes, and if it lasts, ask the mail provider or the server's administrator")
            }
            if reply.code == 554 || reply.code == 550 {
                return (kind, "the server refuses connections from this system (\(codeText) \(said)): its address may be on a blocklist or not allowed "
                            + "to send through this server; ask the mail provider or the server's administrator to allow it")
            }
            return (kind, "unexpected greeting \(codeText): \(said)")
        case .auth:
            if let hint = microsoftAuthHint(reply, codeText: codeText, said: said) { return (.authRejected, hint) }
            switch reply.code {
            case 535: return (.authRejected, "credentials rejected (\(codeText)): check the user name and password (some providers require an app password)")
            case 534: return (.authRejected, "the server wants a stronger mechanism or an app password (\(codeText))")
            case 538: return (.mechanismUnsupported, "the server requires encryption for this mechanism (\(codeText)); set Connection security to STARTTLS or SSL/TLS")
            case 504: return (.mechanismUnsupported, "the server does not support this sign-in mechanism (\(codeText)); set Sign-in method to Automatic")
            case 530: return (.authRejected, "the server requires authentication first (\(codeText))")
            default:
                if temporary, let hint = temporaryRefusal(reply, codeText: codeText, said: said) { return (.rejectedTemporary, hint) }
                return temporary ? (.rejectedTemporary, "authentication failed temporarily (\(codeText) \(said)); try again later")
                    : (.authRejected, "authentication failed (\(codeText) \(said))")
            }
        case .mail:
            if reply.code == 530, asksForTLS(reply) { return (kind, tlsRequiredHint(codeText)) }
            if reply.code == 530 { return (kind, "the server requires authentication (\(codeText)): choose a Sign-in method and enter the User name and Password") }
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
            if reply.code == 454 || (temporary && said.lowercased().contains("tls")) {
                return (kind, "the server offers STARTTLS but cannot start encryption (\(codeText) \(said)): its TLS setup is broken "
                            + "(often a missing or unreadable certificate or key); ask the mail provider or the server's administrator to fix it. "
                            + "Do not set Connection security to None: the password and mail would travel unprotected")
            }
            return (kind, "STARTTLS refused (\(codeText) \(said))")
        default:
            return (kind, "\(context.command) refused (\(codeText) \(said))")
        }
    }

    /// A 4xx that refuses service for now rather than this message: a 421 closing the
    /// connection (Postfix's "421 4.3.2 Service not available", Gmail's "421-4.7.0 Try
    /// again later, closing connection.") or a 4.7.x policy/rate limit (Exchange Online's
    /// "451 4.7.500 Server busy. Please try again later"). Else nil.
    static func temporaryRefusal(_ reply: SmtpReply, codeText: String, said: String) -> String? {
        guard reply.isTransientNegative else { return nil }
        let text = reply.lines.joined(separator: " ").lowercased()
        if reply.code == 421 {
            return "the server is closing the connection for now (\(codeText) \(said)): it is busy or limits connections from this system; "
                + "try again in a few minutes, and if it lasts, ask the mail provider or the server's administrator"
        }
        if reply.enhancedCode?.hasPrefix("4.7.") == true || text.contains("server busy") || text.contains("try again later") {
            return "the server refuses for now (\(codeText) \(said)): it is busy or limits how much this system may send; "
                + "try again in a few minutes, and if it lasts, ask the mail provider whether this account or address is limited"
        }
        return nil
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
                    return (.timeout, "no greeting within \(limit): port 465 expects SSL/TLS (implicit TLS), not \(context.security == .startTLSRequired ? "STARTTLS" : "a plain connection"): set Connection security to SSL/TLS")
                }
                return (.timeout, "no greeting within \(limit): the server may expect SSL/TLS on port \(context.port) (then set Connection security to SSL/TLS), or a firewall holds the connection")
            case .tls:
                return (.timeout, "TLS handshake did not finish within \(limit): port \(context.port) may expect plain SMTP or STARTTLS; try Connection security STARTTLS")
            case .data:
                return (.timeout, "no reply to the end of the message within \(limit)")
            default:
                return (.timeout, "no answer to \(context.command.isEmpty ? stage.rawValue.uppercased() : context.command) within \(limit)")
            }
        case .closed(let why):
            if stage == .tls {
                return (.tlsHandshake, "the server closed the connection during the TLS handshake (\(why)); it may not support TLS 1.2+ or SNI for \(context.host): "
                            + "ask the mail provider or the server's administrator to enable TLS 1.2 or 1.3")
            }
            if stage == .greeting {
                return (.protocol, "the server closed the connection before its greeting; it may limit connections" + (context.security == .implicitTLS ? "" : " or expect SSL/TLS"))
            }
            if stage == .ehlo {
                return (.protocol, "the server closed the connection right after EHLO without answering: servers do this to connections "
                            + "their policy does not accept (this system's address, or too many connections at once); try again in a few minutes, "
                            + "and if it lasts, ask the mail provider or the server's administrator to allow this system's address")
            }
            return (.protocol, "the server closed the connection during \(stage.rawValue) (\(why))")
        case .system(_, let code):
            return (.protocol, "the connection failed during \(stage.rawValue) (\(String(cString: strerror(code)).lowercased())); try again, and if it lasts check the network between this system and the server")
        case .tls(_, let errors):
            let joined = errors.joined(separator: " ").lowercased()
            if joined.contains("wrong version number") || joined.contains("packet length too long") || joined.contains("record layer failure") {
                if context.port == 587 {
                    return (.tlsHandshake, "the server answered in plain text: port 587 expects STARTTLS, not SSL/TLS: set Connection security to STARTTLS")
                }
                return (.tlsHandshake, "the server answered in plain text: port \(context.port) expects STARTTLS or no TLS, not SSL/TLS: set Connection security to STARTTLS")
            }
            if joined.contains("unsupported protocol") || joined.contains("protocol version") {
                return (.tlsHandshake, "the server offers only TLS older than 1.2, which is no longer safe and which this system refuses: "
                            + "ask the mail provider or the server's administrator to enable TLS 1.2 or 1.3")
            }
            if joined.contains("key too small") || joined.contains("md too weak") || joined.contains("bad dh value") {
                return (.tlsHandshake, "the server uses a key or signature too weak to be safe (\(errors.first ?? "weak key")): ask the mail provider or "
                            + "the server's administrator to use an RSA key of at least 2048 bits (or an EC key) and SHA-256 signatures")
            }
            if joined.contains("no shared cipher") || joined.contains("no cipher") || joined.contains("handshake failure") {
                return (.tlsHandshake, "the server and this system share no safe cipher: ask the mail provider or the server's administrator "
                            + "to enable TLS 1.2 with AES-GCM or ChaCha20 ciphers, or TLS 1.3")
            }
            if joined.contains("unrecognized name") {
                return (.tlsHandshake, "the server does not know the name \(context.host) (SNI); set SMTP server to the host name of its certificate")
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
        case .resolve(let code, _):
            // The resolver's own words ("Name or service not known") stay out of the hint.
            if code == EAI_AGAIN {
                return (.dns, .timeout, "the DNS lookup of \(context.host) failed for now; try again, and if it lasts check this system's DNS resolver")
            }
            if context.host.unicodeScalars.contains(where: { !$0.isASCII }) {
                return (.dns, .rejectedPermanent, "the name \(context.host) does not resolve: write an international domain name in its xn-- (punycode) form")
            }
            return (.dns, .rejectedPermanent, "the name \(context.host) does not resolve: check the spelling of SMTP server")
        case .connect(let failures):
            if failures.isEmpty { return (.dns, .rejectedPermanent, "the name \(context.host) has no address this system can use: check SMTP server") }
            func hasErrno(_ codes: [Int32]) -> Bool {
                failures.contains { if case .system(_, let code) = $0.failure { return codes.contains(code) } else { return false } }
            }
            if hasErrno([ECONNREFUSED]) {
                return (.connect, .refused, "connection refused: nothing listens on \(target); check the port and that the SMTP server runs")
            }
            if failures.contains(where: { if case .timeout = $0.failure { return true } else { return false } }) {
                return (.connect, .timeout, "no answer within \(seconds(context.connectTimeout)) from \(target): a firewall may drop the traffic")
            }
            // The network itself answered "no way there": refused, not a silent timeout.
            if hasErrno([ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT]) {
                return (.connect, .refused, "no route to \(target): check SMTP server and that this system's network and firewall let it reach that address")
            }
            var reason = "unknown error"
            if case .system(_, let code) = failures.last!.failure { reason = String(cString: strerror(code)).lowercased() }
            return (.connect, .refused, "could not connect to \(target) (\(reason)): check SMTP server and Port")
        }
    }

    /// A certificate that full verification rejected: what is wrong and whose fix it is,
    /// then which names the certificate covers, its expiry and the fingerprint to pin, so
    /// a person can compare with what the mail provider publishes.
    static func verification(_ result: TLSVerifyResult, certificate: SmtpCertificate?, host: String) -> String {
        guard let cert = certificate else {
            return "certificate verification failed: \(result.message)"
        }
        // Verification ignores the common name; saying "covers CN" would contradict the hint.
        let cnOnly = cert.subjectAlternativeNames.isEmpty
        let names = cert.names.isEmpty ? "no names" : cert.names.joined(separator: ", ")
        let covers = cnOnly ? "no subjectAltName, common name \(cert.names.first ?? "none")" : "covers \(names)"
        let facts = "(\(covers); valid until \(cert.notAfter); fingerprint to pin: \(cert.sha256Fingerprint))"
        let pin = "set Certificate check to Pinned"
        switch result.reason {
        case .hostnameMismatch where cnOnly:
            return "the certificate names the server only in its common name, which TLS clients no longer accept: the server needs a certificate "
                + "with a subjectAltName for \(host); ask the mail provider or the server's administrator to replace it, or \(pin) meanwhile \(facts)"
        case .hostnameMismatch:
            return "certificate is for \(names), not \(host): set SMTP server to one of these names, or \(pin) \(facts)"
        case .expired:
            return "certificate expired on \(cert.notAfter): the server's administrator must renew it (ask the mail provider); \(pin) only meanwhile \(facts)"
        case .notYetValid:
            return "certificate is valid only from \(cert.notBefore): check the clocks of both systems \(facts)"
        case .weakKey:
            return "the certificate's key or signature is too weak to be safe (\(result.message)): ask the mail provider or the server's administrator "
                + "for a certificate with an RSA key of at least 2048 bits (or an EC key) signed with SHA-256 \(facts)"
        case .untrusted:
            if cert.subject == cert.issuer {
                return "certificate is self-signed (\(cert.subject)): add it under Extra trusted certificate authorities, or \(pin) \(facts)"
            }
            if result.peerChainLength == 1, result.leafNamesIssuerURL {
                // A public CA's certificate (it says where its issuer is published) sent alone:
                // the server left out the intermediate, which other clients may fetch but TLS does not.
                return "the server does not send its intermediate certificate (issuer \(cert.issuer)): its certificate chain is incomplete; "
                    + "ask the mail provider or the server's administrator to install the full chain (the certificate followed by its intermediates). "
                    + "Meanwhile: add the intermediate under Extra trusted certificate authorities, or \(pin) \(facts)"
            }
            return "certificate issuer \(cert.issuer) is not trusted: if it is your organisation's own authority, add its CA certificate under "
                + "Extra trusted certificate authorities, or \(pin) \(facts)"
        case .other, .ok:
            return "certificate verification failed: \(result.message) \(facts)"
        }
    }

    /// STARTTLS required, and the server's EHLO does not offer it. Neither SSL/TLS on this
    /// plain port (it would fail the handshake) nor None (the password unprotected) helps:
    /// the fix is the provider's submission port.
    static func startTLSNotOffered(port: Int) -> String {
        if port == 465 {
            return "port 465 expects SSL/TLS (implicit TLS), not STARTTLS: set Connection security to SSL/TLS"
        }
        let ports = port == 587 ? "port 465 with Connection security SSL/TLS" : "port 587 with Connection security STARTTLS, or port 465 with SSL/TLS"
        return "the server on port \(port) does not offer encryption (no STARTTLS), so the password and mail would travel unprotected: "
            + "use the port the mail provider documents for submission, usually \(ports)"
    }

    /// A 530 that asks for TLS rather than for authentication ("Must issue a
    /// STARTTLS command first"), as Postfix and aiosmtpd word it.
    static func asksForTLS(_ reply: SmtpReply) -> Bool {
        reply.lines.contains { $0.uppercased().contains("STARTTLS") || $0.uppercased().contains(" TLS") }
    }

    /// Our client takes STARTTLS whenever it is offered, so when a server demands it
    /// the offer did not reach us: implicit TLS is the way around.
    static func tlsRequiredHint(_ codeText: String) -> String {
        "the server requires STARTTLS first (\(codeText)) but did not offer it on this connection (something on the way may strip it): set Connection security to SSL/TLS, usually with Port 465"
    }
}
