// SMTP AUTH of an SmtpConnection: the mechanism chosen from the settings and the
// server's offer, and each mechanism's exchange (the password opened only here).
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
    /// Mechanisms that send a reusable secret as it is: never without TLS unless allowed.
    static let cleartextMechanisms: Set<String> = ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"]

    func authenticate() throws {
        let wanted: String
        switch settings.authentication {
        case .none: return
        case .plain: wanted = "PLAIN"
        case .login: wanted = "LOGIN"
        case .cramMD5: wanted = "CRAM-MD5"
        case .xoauth2: wanted = "XOAUTH2"
        case .oauthBearer: wanted = "OAUTHBEARER"
        case .auto: wanted = "AUTO"
        }
        let oauth = OAuthSASL.mechanisms.contains(wanted)
        let encrypted = tls != nil
        let cleartextAllowed = encrypted || settings.allowCleartextAuthentication
        let offered = capabilities.authMechanisms
        guard !offered.isEmpty else {
            throw makeError(stage: .auth, kind: .mechanismUnsupported,
                            hint: encrypted ? "the server offers no AUTH; choose authentication None"
                                : "the server offers no AUTH on this unencrypted connection; set Connection security to STARTTLS or SSL/TLS, or Sign-in method to None")
        }
        let mechanism: String
        if wanted == "AUTO" {
            // A configured token source means the administrator chose OAuth 2.0.
            let preference = (settings.accessToken != nil ? OAuthSASL.mechanisms : []) + ["CRAM-MD5", "PLAIN", "LOGIN"]
            let candidates = preference.filter(offered.contains)
            guard let best = candidates.first(where: { !Self.cleartextMechanisms.contains($0) || cleartextAllowed }) else {
                let secret = settings.accessToken != nil ? "the access token or password" : "the password"
                throw makeError(stage: .auth, kind: .mechanismUnsupported,
                                hint: candidates.isEmpty ? "the server offers AUTH \(offered.joined(separator: " ")), none of \(preference.joined(separator: ", "))"
                                    : "refusing to send \(secret) without TLS (the server offers \(candidates.joined(separator: " ")) only); set Connection security to STARTTLS or SSL/TLS")
            }
            mechanism = best
        } else {
            guard offered.contains(wanted) else {
                throw makeError(stage: .auth, kind: .mechanismUnsupported,
                                hint: "the server offers AUTH \(offered.joined(separator: " ")), not \(wanted); choose one of these or Auto")
            }
            guard !Self.cleartextMechanisms.contains(wanted) || cleartextAllowed else {
                throw makeError(stage: .auth, kind: .mechanismUnsupported,
                                hint: oauth ? "refusing to send the access token with \(wanted) without TLS; set Connection security to STARTTLS or SSL/TLS"
                                    : "refusing to send the password with \(wanted) without TLS; set Connection security to STARTTLS or SSL/TLS, or Sign-in method to CRAM-MD5")
            }
            mechanism = wanted
        }
        if OAuthSASL.mechanisms.contains(mechanism) {
            try authenticate(withTokenUsing: mechanism)
            authMechanism = mechanism
            return
        }
        let password: String
        do {
            password = try settings.password()
        } catch {
            throw makeError(stage: .auth, kind: .invalidInput, hint: "the password could not be read: \(error)", underlying: error)
        }
        guard !password.utf8.contains(0) else {
            throw makeError(stage: .auth, kind: .invalidInput, hint: "the password contains NUL; refused before sending")
        }
        let user = settings.username
        let enhanced = capabilities.enhancedStatusCodes
        switch mechanism {
        case "PLAIN":
            _ = try command("AUTH PLAIN " + AuthEncoding.plain(username: user, password: password), redacted: "AUTH PLAIN <redacted>",
                            stage: .auth, accepting: [235], enhanced: enhanced)
        case "LOGIN":
            _ = try command("AUTH LOGIN", stage: .auth, accepting: [334], enhanced: enhanced)
            _ = try command(AuthEncoding.login(user), redacted: "<redacted user name>", stage: .auth, accepting: [334], enhanced: enhanced)
            _ = try command(AuthEncoding.login(password), redacted: "<redacted password>", stage: .auth, accepting: [235], enhanced: enhanced)
        default:
            let challenge = try command("AUTH CRAM-MD5", stage: .auth, accepting: [334], enhanced: enhanced)
            guard let response = AuthEncoding.cramMD5(username: user, password: password, challengeBase64: challenge.lines.first ?? "") else {
                _ = try? command("*", stage: .auth, accepting: [501], enhanced: enhanced)
                throw makeError(stage: .auth, kind: .protocol, hint: "the server's CRAM-MD5 challenge is not base64")
            }
            _ = try command(response, redacted: "<redacted CRAM-MD5 response>", stage: .auth, accepting: [235], enhanced: enhanced)
        }
        authMechanism = mechanism
    }
}
