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
import Dispatch
import ProcessIO
import Synchronization

/// A combination of port and connection security that was tried just now, without
/// signing in, and works: what a failed test or check suggests instead
/// (`diagnosis.suggestion`).
public struct SmtpSuggestion: Sendable, Equatable {
    /// The port that answered.
    public var port: Int
    /// The connection security that worked on it (`.startTLSRequired`, `.implicitTLS`, or
    /// `.none` for plain SMTP, which is stored as `None`).
    public var security: SmtpSettings.Security
    /// What was verified, one sentence: "port 465 answers with SSL/TLS (certificate valid for smtp.example.com)".
    public var verified: String

    /// Makes one.
    public init(port: Int, security: SmtpSettings.Security, verified: String) {
        self.port = port
        self.security = security
        self.verified = verified
    }

    /// The stored `smtp_connection_type`: `SSL`, `STARTTLS` or `None`.
    public var storedConnectionType: String {
        switch security {
        case .implicitTLS: return "SSL"
        case .startTLSRequired: return "STARTTLS"
        case .none, .startTLSOpportunistic: return "None"
        }
    }

    /// The page's label of the connection security ("SSL/TLS", "STARTTLS", "None").
    public var securityLabel: String { SmtpAdvice.label(security) }
}

extension SmtpSuggestion: Encodable {
    private enum CodingKeys: String, CodingKey {
        case port, smtpConnectionType = "smtp_connection_type", connectionSecurity = "connection_security", verified
    }

    /// `{"port":465,"smtp_connection_type":"SSL","connection_security":"SSL/TLS","verified":"port 465 answers …"}`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(port, forKey: .port)
        try c.encode(storedConnectionType, forKey: .smtpConnectionType)
        try c.encode(securityLabel, forKey: .connectionSecurity)
        try c.encode(verified, forKey: .verified)
    }
}

/// One probe: connect, greeting, EHLO, STARTTLS or TLS with the settings' certificate
/// check, QUIT. Never AUTH, never a message.
public struct SmtpProbe: Sendable, Equatable, CustomStringConvertible {
    /// The port tried.
    public var port: Int
    /// The connection security tried (`.none` = plain SMTP, no STARTTLS).
    public var security: SmtpSettings.Security

    /// Makes one.
    public init(port: Int, security: SmtpSettings.Security) {
        self.port = port
        self.security = security
    }

    /// "port 465 with SSL/TLS".
    public var description: String { "port \(port) with \(SmtpAdvice.label(security))" }
}

/// What one probe found.
public struct SmtpProbeOutcome: Sendable {
    /// What was tried.
    public var probe: SmtpProbe
    /// Nil when it worked; else why not.
    public var error: SmtpError?
    /// The certificate the server presented, when TLS was reached.
    public var certificate: SmtpCertificate?
    /// Greeting and capabilities (AUTH mechanisms) when the probe worked.
    public var server: SmtpServerInfo?

    /// Makes one.
    public init(probe: SmtpProbe, error: SmtpError?, certificate: SmtpCertificate? = nil, server: SmtpServerInfo? = nil) {
        self.probe = probe
        self.error = error
        self.certificate = certificate
        self.server = server
    }

    /// True when the probe reached EHLO (and TLS, with the settings' check) and QUIT.
    public var succeeded: Bool { error == nil }
}

/// Verified advice: when a session fails in a way that suggests another connection
/// security or port, try the alternatives on the same host — in parallel, within what
/// is left of the session deadline, without AUTH and without sending mail — and
/// suggest only what worked.
///
/// Production probes ``usualProbes`` (465 SSL/TLS, 587, 25 and 2525 STARTTLS) plus the
/// saved port; tests pass their own, since the well-known ports need root and may be
/// taken.
///
/// ```swift
/// let started = Date()
/// do { _ = try SmtpClient.check(settings) } catch let error as SmtpError {
///     let advised = SmtpAdvice.advise(error, settings: settings, startedAt: started)
///     if let suggestion = advised.suggestion { print("suggestion:", suggestion.verified) }
/// }
/// ```
public enum SmtpAdvice {
    /// The usual submission and relay ports with their usual connection security,
    /// tried after the saved port: 465 SSL/TLS, 587, 25 and 2525 STARTTLS.
    public static let usualProbes = [
        SmtpProbe(port: 465, security: .implicitTLS), SmtpProbe(port: 587, security: .startTLSRequired),
        SmtpProbe(port: 25, security: .startTLSRequired), SmtpProbe(port: 2525, security: .startTLSRequired),
    ]
    /// Seconds a probe waits for each reply (and its TLS handshake) at most: a server
    /// that answers at all answers faster, and the slowest probe sets the answer's time.
    static let probeCommandTimeout = 10.0
    /// At most this many probes (threads) per failure.
    public static let maximumProbes = 8
    /// Time kept back from the session deadline for answering after the probes.
    static let answerReserve = 0.5

    /// True for failures at connect, greeting, TLS or STARTTLS that another port or
    /// connection security may fix; false for AUTH, replies the server chose to send
    /// (421, 5xx, 454), certificate problems, DNS, refused input and abandoned sessions.
    public static func warrantsProbing(_ error: SmtpError) -> Bool {
        if error.wasAbandoned || error.replyCode != nil { return false }
        switch (error.stage, error.kind) {
        case (.connect, .refused), (.connect, .timeout): return true
        case (.greeting, .timeout), (.greeting, .protocol): return true
        case (.tls, .tlsHandshake), (.tls, .timeout): return true
        case (.starttls, .mechanismUnsupported), (.starttls, .tlsHandshake), (.starttls, .timeout), (.starttls, .protocol): return true
        default: return false
        }
    }

    /// What to try for settings that failed: on the saved port every other connection
    /// security; on each other port of `usual` its connection security; plain SMTP
    /// only when the settings do not sign in (a password must not travel unencrypted),
    /// and never on an SSL/TLS port. The failed combination itself is not repeated.
    public static func candidates(for settings: SmtpSettings, usual: [SmtpProbe] = usualProbes) -> [SmtpProbe] {
        let plainAllowed = settings.authentication == .none
        let failed = SmtpProbe(port: settings.port, security: normalized(settings.security))
        var result: [SmtpProbe] = []
        func add(_ probe: SmtpProbe) {
            if probe != failed, !result.contains(probe), UInt16(exactly: probe.port).flatMap(PortNumber.init) != nil { result.append(probe) }
        }
        add(SmtpProbe(port: settings.port, security: .implicitTLS))
        add(SmtpProbe(port: settings.port, security: .startTLSRequired))
        if plainAllowed { add(SmtpProbe(port: settings.port, security: .none)) }
        for probe in usual where probe.port != settings.port { add(probe) }
        if plainAllowed {
            for probe in usual where probe.port != settings.port && probe.security != .implicitTLS {
                add(SmtpProbe(port: probe.port, security: .none))
            }
        }
        return Array(result.prefix(maximumProbes))
    }

    /// Runs one probe (blocking, bounded by `seconds`): the settings' host, certificate
    /// check, EHLO name, denied networks and abort, with no sign-in.
    public static func probe(_ probe: SmtpProbe, settings: SmtpSettings, seconds: Double) -> SmtpProbeOutcome {
        var s = settings
        s.port = probe.port
        s.security = probe.security
        s.authentication = .none
        s.username = ""
        s.password = { "" }
        s.accessToken = nil
        s.sessionTimeout = max(0.1, seconds)
        s.connectTimeout = min(settings.connectTimeout, s.sessionTimeout)
        s.commandTimeout = min(settings.commandTimeout, probeCommandTimeout, s.sessionTimeout)
        s.sessionLimitName = nil
        do {
            let report = try SmtpClient.check(s)
            return SmtpProbeOutcome(probe: probe, error: nil, certificate: report.server.certificate, server: report.server)
        } catch let error as SmtpError {
            return SmtpProbeOutcome(probe: probe, error: error, certificate: error.certificate)
        } catch {
            return SmtpProbeOutcome(probe: probe, error: SmtpError(stage: .connect, kind: .protocol, hint: "\(error)"))
        }
    }

    /// Runs `probes` in parallel (one thread each, at most ``maximumProbes``), each
    /// within `seconds`; returns the outcomes that finished, in the order of `probes`.
    public static func run(_ probes: [SmtpProbe], settings: SmtpSettings, seconds: Double) -> [SmtpProbeOutcome] {
        let probes = Array(probes.prefix(maximumProbes))
        let results = Mutex<[Int: SmtpProbeOutcome]>([:])
        let group = DispatchGroup()
        for (index, probe) in probes.enumerated() {
            group.enter()
            startThread {
                let outcome = Self.probe(probe, settings: settings, seconds: seconds)
                results.withLock { $0[index] = outcome }
                group.leave()
            }
        }
        // Every probe ends by its own deadline; the wait is bounded anyway, and a probe
        // that has not answered by then simply counts as not working.
        _ = group.wait(timeout: .now() + seconds + 2)
        let outcomes = results.withLock { $0 }
        return probes.indices.compactMap { outcomes[$0] }
    }

    /// The best working outcome, or nil: implicit TLS over STARTTLS over plain, the
    /// saved port before the others, then the order of `usual`. Only successes count,
    /// and plain SMTP never when the settings sign in.
    public static func choose(_ outcomes: [SmtpProbeOutcome], settings: SmtpSettings,
                              usual: [SmtpProbe] = usualProbes) -> SmtpSuggestion? {
        func rank(_ security: SmtpSettings.Security) -> Int {
            switch security {
            case .implicitTLS: return 0
            case .startTLSRequired: return 1
            case .none, .startTLSOpportunistic: return 2
            }
        }
        func portRank(_ port: Int) -> Int { port == settings.port ? -1 : (usual.firstIndex { $0.port == port } ?? usual.count) }
        let failed = SmtpProbe(port: settings.port, security: normalized(settings.security))
        let usable = outcomes.filter { outcome in
            guard outcome.succeeded, outcome.probe != failed else { return false }
            if rank(outcome.probe.security) == 2 && settings.authentication != .none { return false }
            return true
        }
        guard let best = usable.min(by: { a, b in
            (rank(a.probe.security), portRank(a.probe.port)) < (rank(b.probe.security), portRank(b.probe.port))
        }) else { return nil }
        return SmtpSuggestion(port: best.probe.port, security: best.probe.security,
                              verified: verified(best, settings: settings))
    }

    /// The failure with a suggestion when one of the alternatives works (and a hint
    /// that says so), else with a hint that says which alternatives failed too. Does
    /// nothing for failures ``warrantsProbing(_:)`` rejects, or when less than a second
    /// of the session deadline is left.
    ///
    /// - Parameters:
    ///   - error: the failure of a session run with `settings`.
    ///   - settings: the settings of that session (its `sessionTimeout` is the budget).
    ///   - startedAt: when that session started.
    ///   - usual: the ports and securities to try besides the saved port (tests pass their own).
    public static func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date,
                              usual: [SmtpProbe] = usualProbes) -> SmtpError {
        guard warrantsProbing(error), settings.abort?.hasHungUp != true else { return error }
        let seconds = settings.sessionTimeout - Date().timeIntervalSince(startedAt) - answerReserve
        guard seconds >= 1 else { return error }
        let probes = candidates(for: settings, usual: usual)
        guard !probes.isEmpty else { return error }
        let outcomes = run(probes, settings: settings, seconds: seconds)
        if outcomes.contains(where: { $0.error?.wasAbandoned == true }) { return error }
        var advised = error
        if let suggestion = choose(outcomes, settings: settings, usual: usual) {
            advised.suggestion = suggestion
            advised.hint = error.hint + ". Tried just now without signing in: \(suggestion.verified); "
                + "set Port to \(suggestion.port) and Connection security to \(suggestion.securityLabel), then save"
        } else {
            let tried = outcomes.map(\.probe.description)
            if !tried.isEmpty {
                advised.hint = error.hint + ". Tried just now without signing in, and none works either: " + tried.joined(separator: ", ")
            }
        }
        return advised
    }

    /// "port 465 answers with SSL/TLS (certificate valid for smtp.example.com)".
    static func verified(_ outcome: SmtpProbeOutcome, settings: SmtpSettings) -> String {
        let port = outcome.probe.port
        switch outcome.probe.security {
        case .none, .startTLSOpportunistic:
            return "port \(port) answers without encryption"
        case .implicitTLS, .startTLSRequired:
            let how = "port \(port) answers with \(label(outcome.probe.security))"
            switch settings.verification {
            case .full:
                let host = (try? ConnectTarget.host(settings.host).ascii) ?? settings.host
                return how + " (certificate valid for \(host))"
            case .pinned:
                return how + " (certificate matches the pinned fingerprint)"
            case .none:
                return how + " (certificate not checked: Certificate check is None)"
            }
        }
    }

    /// The page's words for a connection security.
    static func label(_ security: SmtpSettings.Security) -> String {
        switch security {
        case .implicitTLS: return "SSL/TLS"
        case .startTLSRequired: return "STARTTLS"
        case .startTLSOpportunistic, .none: return "None"
        }
    }

    /// "None" (STARTTLS if offered) and plain are one choice of the form.
    static func normalized(_ security: SmtpSettings.Security) -> SmtpSettings.Security {
        security == .startTLSOpportunistic ? .none : security
    }
}
