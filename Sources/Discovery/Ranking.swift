import Smtp

/// Which verified candidate is best, what it becomes in the form, and the words for it.
/// Order: implicit TLS with a valid certificate, STARTTLS with one, then the same with a
/// certificate that is not valid (proposed pinned), then plain SMTP; among equals the
/// source (SRV, autoconfig, MX, guess) and then the source's own order decide.
enum Ranking {
    static func sorted(_ candidates: [Candidate]) -> [Candidate] {
        func key(_ c: Candidate) -> (Int, Int, Int) {
            guard c.usable else { return (9, 9, c.source.rank) }
            let tier = c.security == .none ? 2 : (c.verified.certificateValid == false ? 1 : 0)
            return (tier, c.security == .implicitTLS ? 0 : 1, c.source.rank)
        }
        return candidates.enumerated().sorted { a, b in
            let (ka, kb) = (key(a.element), key(b.element))
            return (ka.0, ka.1, ka.2, a.offset) < (kb.0, kb.1, kb.2, b.offset)
        }.map(\.element)
    }

    /// The stored sign-in method for what a source suggested and the server offers:
    /// plain SMTP never signs in (a password must not travel unencrypted); OAuth when
    /// suggested and offered; `Auto` (the strongest offered) when any password mechanism
    /// is offered; `None` when nothing is offered.
    static func authentication(_ suggested: String, offered: [String], security: SmtpSettings.Security) -> String {
        if security == .none || suggested == "None" { return "None" }
        let passwords = offered.contains { ["PLAIN", "LOGIN", "CRAM-MD5"].contains($0) }
        if suggested == "XOAUTH2" {
            if offered.isEmpty || offered.contains("XOAUTH2") { return "XOAUTH2" }
            if offered.contains("OAUTHBEARER") { return "OAUTHBEARER" }
        }
        if passwords { return "Auto" }
        if offered.contains("XOAUTH2") { return "XOAUTH2" }
        if offered.contains("OAUTHBEARER") { return "OAUTHBEARER" }
        return "None"
    }

    static func proposal(_ best: Candidate) -> Proposal {
        let signsIn = best.authentication != "None"
        let pinned = best.verified.certificateValid == false
        return Proposal(host: best.host, port: best.port, connectionType: best.connectionType,
                        authentication: best.authentication, tlsVerify: pinned ? "Pinned" : "Full",
                        pin: pinned ? best.verified.certificateSHA256 : nil,
                        username: signsIn ? best.username : nil,
                        oauthProvider: ["XOAUTH2", "OAUTHBEARER"].contains(best.authentication) ? best.oauthProvider : nil)
    }

    static func explain(proposal: Proposal?, best: Candidate?, candidates: [Candidate], domain: String) -> String {
        guard let proposal, let best else {
            let tried = candidates.prefix(4).map { "\($0.label): \($0.verified.error ?? "not verified")" }
            var text = "No SMTP server could be verified for \(domain)."
            if !tried.isEmpty { text += " Tried " + tried.joined(separator: "; ") + "." }
            else { text += " No SRV record, autoconfig document or known provider names one, and neither smtp.\(domain) nor mail.\(domain) answers." }
            return text + " Ask the mail provider for its submission server (host, port, connection security) and enter it by hand."
        }
        let source: String = switch best.source {
        case .srv: "the domain's SRV record"
        case .autoconfig: "the domain's autoconfig document"
        case .mx: "the domain's mail provider (from its MX record)"
        case .probe: "trying the usual host names and ports"
        }
        var text = "\(best.label) works, found by \(source): "
        switch (best.security, best.verified.certificateValid) {
        case (.none, _), (.startTLSOpportunistic, _):
            text += "it answers only without encryption, so nothing that signs in is proposed; use it only for a relay inside your network."
        case (_, false?):
            text += "TLS works, but its certificate is not valid for \(best.host), so the proposal pins this certificate; ask the provider for a valid certificate, then choose Full."
        default:
            text += "TLS works with a certificate valid for \(best.host)"
            text += best.verified.authMechanisms.isEmpty ? ", and it offers no sign-in." : ", and it offers sign-in with \(best.verified.authMechanisms.joined(separator: ", "))."
        }
        if proposal.authentication != "None" {
            text += proposal.username == nil ? " Enter the user name and password" : " Check the user name, enter the password"
            text += ["XOAUTH2", "OAUTHBEARER"].contains(proposal.authentication) ? " (or sign in with OAuth)" : ""
            text += ", then save: nothing was saved yet."
        } else {
            text += " Nothing was saved yet."
        }
        return text
    }
}
