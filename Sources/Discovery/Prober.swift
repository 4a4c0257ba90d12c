#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Smtp

/// One candidate probed with the Smtp module's probe (greeting, EHLO, TLS with full
/// verification, QUIT; never AUTH, never a message), connecting to the addresses
/// discovery's DNS gave.
enum Prober {
    static func verify(_ candidate: Candidate, addresses: [String], address: EmailAddress,
                       options: DiscoveryOptions, deadline: Date) -> Candidate {
        var candidate = candidate
        var settings = SmtpSettings(host: candidate.host, port: candidate.port, security: candidate.security)
        settings.connectAddresses = addresses
        settings.verification = .full
        settings.extraCAPEM = options.caFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        settings.senderAddress = address.address
        settings.ehloName = options.ehloName
        settings.deniedNetworks = options.deniedNetworks
        settings.abort = options.abort
        settings.connectTimeout = 3
        settings.commandTimeout = 5
        func seconds() -> Double { deadline.timeIntervalSinceNow - 0.2 }
        guard seconds() > 0.3 else {
            candidate.verified.error = "no time left before the deadline"
            return candidate
        }
        var outcome = SmtpAdvice.probe(SmtpProbe(port: candidate.port, security: candidate.security), settings: settings, seconds: seconds())
        var certificateValid: Bool? = candidate.security == .none ? nil : true
        if let error = outcome.error, error.kind == .tlsVerify, let pin = outcome.certificate?.sha256Fingerprint, seconds() > 0.3 {
            // TLS works but the certificate is not valid for the host: learn the rest
            // with the certificate pinned, and say so.
            candidate.verified.error = nil
            var pinned = settings
            pinned.verification = .pinned(sha256: pin)
            let again = SmtpAdvice.probe(SmtpProbe(port: candidate.port, security: candidate.security), settings: pinned, seconds: seconds())
            if again.succeeded {
                certificateValid = false
                outcome = SmtpProbeOutcome(probe: again.probe, error: nil, certificate: again.certificate, server: again.server)
                candidate.verified.error = nil
                candidate.verified.certificateSHA256 = pin
                candidate.verified.greeting = true
                candidate.verified.tls = true
                candidate.verified.certificateValid = false
                candidate.verified.authMechanisms = again.server?.capabilities.authMechanisms ?? []
                candidate.authentication = Ranking.authentication(candidate.authentication, offered: candidate.verified.authMechanisms, security: candidate.security)
                return candidate
            }
            outcome.error = error
        }
        if let error = outcome.error, candidate.security == .startTLSRequired, error.stage == .starttls,
           error.kind == .mechanismUnsupported, seconds() > 0.3 {
            // No STARTTLS on offer: what plain SMTP offers is still worth knowing.
            let plain = SmtpAdvice.probe(SmtpProbe(port: candidate.port, security: .none), settings: settings, seconds: seconds())
            if plain.succeeded {
                candidate.security = .none
                outcome = plain
                certificateValid = nil
            }
        }
        candidate.verified.certificateSHA256 = outcome.certificate?.sha256Fingerprint
        if let error = outcome.error {
            candidate.verified.error = error.hint
            candidate.verified.greeting = ![.dns, .connect, .greeting].contains(error.stage)
                && !(error.stage == .tls && candidate.security == .implicitTLS)
            candidate.verified.tls = error.kind == .tlsVerify
            candidate.verified.certificateValid = error.kind == .tlsVerify ? false : nil
            return candidate
        }
        candidate.verified.greeting = true
        candidate.verified.tls = candidate.security != .none
        candidate.verified.certificateValid = certificateValid
        candidate.verified.authMechanisms = outcome.server?.capabilities.authMechanisms ?? []
        candidate.authentication = Ranking.authentication(candidate.authentication, offered: candidate.verified.authMechanisms, security: candidate.security)
        return candidate
    }
}
