import Foundation
@testable import Smtp
import TestSupport
import XCTest

/// The choice of verified advice, from fake probe outcomes: what is tried, what is
/// preferred, and that nothing that failed (or would send a password in clear) is
/// ever suggested.
final class AdviceChoiceTests: XCTestCase {
    private func settings(port: Int, security: SmtpSettings.Security, password: Bool = true,
                          verification: SmtpSettings.Verification = .full) -> SmtpSettings {
        var s = SmtpSettings(host: "smtp.example.com", port: port, security: security)
        if password { s.authentication = .plain; s.username = "app" }
        s.verification = verification
        return s
    }

    private func ok(_ port: Int, _ security: SmtpSettings.Security) -> SmtpProbeOutcome {
        SmtpProbeOutcome(probe: SmtpProbe(port: port, security: security), error: nil)
    }

    private func failed(_ port: Int, _ security: SmtpSettings.Security) -> SmtpProbeOutcome {
        SmtpProbeOutcome(probe: SmtpProbe(port: port, security: security),
                         error: SmtpError(stage: .connect, kind: .refused, hint: "connection refused"))
    }

    func testOnlyConnectGreetingTLSAndSTARTTLSFailuresWarrantProbing() {
        XCTAssertTrue(SmtpAdvice.warrantsProbing(SmtpError(stage: .connect, kind: .refused, hint: "")))
        XCTAssertTrue(SmtpAdvice.warrantsProbing(SmtpError(stage: .greeting, kind: .timeout, hint: "")))
        XCTAssertTrue(SmtpAdvice.warrantsProbing(SmtpError(stage: .tls, kind: .tlsHandshake, hint: "")))
        XCTAssertTrue(SmtpAdvice.warrantsProbing(SmtpError(stage: .starttls, kind: .mechanismUnsupported, hint: "")))
        // The server's own answers, sign-in, certificates, DNS and abandoned sessions: no probing.
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .auth, kind: .authRejected, replyCode: 535, hint: "")))
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .greeting, kind: .rejectedPermanent, replyCode: 554, hint: "")))
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .starttls, kind: .rejectedTemporary, replyCode: 454, hint: "")))
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .tls, kind: .tlsVerify, hint: "")))
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .dns, kind: .rejectedPermanent, hint: "")))
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .connect, kind: .invalidInput, hint: "")))
        XCTAssertFalse(SmtpAdvice.warrantsProbing(SmtpError(stage: .connect, kind: .timeout, hint: "", underlying: SessionAbandoned())))
    }

    func testCandidatesNeverRepeatTheFailureNorTryPlainWithAPassword() {
        let probes = SmtpAdvice.candidates(for: settings(port: 587, security: .implicitTLS))
        XCTAssertEqual(probes, [SmtpProbe(port: 587, security: .startTLSRequired), SmtpProbe(port: 465, security: .implicitTLS),
                                SmtpProbe(port: 25, security: .startTLSRequired), SmtpProbe(port: 2525, security: .startTLSRequired)])
        let noSignIn = SmtpAdvice.candidates(for: settings(port: 25, security: .startTLSOpportunistic, password: false))
        XCTAssertTrue(noSignIn.contains(SmtpProbe(port: 587, security: .none)))
        XCTAssertFalse(noSignIn.contains(SmtpProbe(port: 25, security: .none)), "the failed combination (None on 25) again")
        XCTAssertFalse(noSignIn.contains(SmtpProbe(port: 465, security: .none)), "plain text on the SSL/TLS port")
        XCTAssertLessThanOrEqual(noSignIn.count, SmtpAdvice.maximumProbes)
        XCTAssertEqual(SmtpAdvice.candidates(for: settings(port: 4650, security: .startTLSRequired), usual: [SmtpProbe(port: 4651, security: .startTLSRequired)]),
                       [SmtpProbe(port: 4650, security: .implicitTLS), SmtpProbe(port: 4651, security: .startTLSRequired)])
    }

    func testImplicitTLSIsPreferredOverSTARTTLSOverPlain() throws {
        let s = settings(port: 587, security: .implicitTLS, password: false)
        let all = [ok(25, .none), ok(587, .startTLSRequired), ok(465, .implicitTLS)]
        let best = try XCTUnwrap(SmtpAdvice.choose(all, settings: s))
        XCTAssertEqual(best.port, 465)
        XCTAssertEqual(best.storedConnectionType, "SSL")
        XCTAssertEqual(best.verified, "port 465 answers with SSL/TLS (certificate valid for smtp.example.com)")
        let starttls = try XCTUnwrap(SmtpAdvice.choose([ok(25, .none), ok(2525, .startTLSRequired), ok(587, .startTLSRequired)], settings: s))
        XCTAssertEqual(starttls, SmtpSuggestion(port: 587, security: .startTLSRequired,
                                                verified: "port 587 answers with STARTTLS (certificate valid for smtp.example.com)"),
                       "the saved port first among equals")
        let plain = try XCTUnwrap(SmtpAdvice.choose([failed(465, .implicitTLS), ok(25, .none)], settings: s))
        XCTAssertEqual(plain.port, 25)
        XCTAssertEqual(plain.storedConnectionType, "None")
        XCTAssertEqual(plain.verified, "port 25 answers without encryption")
    }

    func testNothingThatFailedIsSuggested() {
        let s = settings(port: 587, security: .implicitTLS)
        XCTAssertNil(SmtpAdvice.choose([failed(465, .implicitTLS), failed(587, .startTLSRequired)], settings: s))
        XCTAssertNil(SmtpAdvice.choose([], settings: s))
        XCTAssertEqual(SmtpAdvice.choose([failed(465, .implicitTLS), ok(2525, .startTLSRequired)], settings: s)?.port, 2525)
        // The failed combination itself, even if a fake says it works.
        XCTAssertNil(SmtpAdvice.choose([ok(587, .implicitTLS)], settings: s))
    }

    func testPlainTextIsNeverSuggestedWhenTheSettingsSignIn() {
        let s = settings(port: 587, security: .implicitTLS, password: true)
        XCTAssertNil(SmtpAdvice.choose([ok(25, .none), ok(587, .none)], settings: s))
    }

    func testVerifiedSentenceFollowsTheCertificateCheck() {
        let pinned = settings(port: 587, security: .startTLSRequired, verification: .pinned(sha256: String(repeating: "a", count: 64)))
        XCTAssertEqual(SmtpAdvice.choose([ok(465, .implicitTLS)], settings: pinned)?.verified,
                       "port 465 answers with SSL/TLS (certificate matches the pinned fingerprint)")
        let unchecked = settings(port: 587, security: .startTLSRequired, verification: .none)
        XCTAssertEqual(SmtpAdvice.choose([ok(465, .implicitTLS)], settings: unchecked)?.verified,
                       "port 465 answers with SSL/TLS (certificate not checked: Certificate check is None)")
    }

    func testSuggestionEncodesAsTheAPIShape() throws {
        let suggestion = SmtpSuggestion(port: 465, security: .implicitTLS, verified: "port 465 answers with SSL/TLS")
        var error = SmtpError(stage: .tls, kind: .tlsHandshake, hint: "h")
        error.suggestion = suggestion
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(error)) as? [String: Any])
        let encoded = try XCTUnwrap(object["suggestion"] as? [String: Any])
        XCTAssertEqual(encoded["port"] as? Int, 465)
        XCTAssertEqual(encoded["smtp_connection_type"] as? String, "SSL")
        XCTAssertEqual(encoded["connection_security"] as? String, "SSL/TLS")
        XCTAssertEqual(encoded["verified"] as? String, "port 465 answers with SSL/TLS")
        XCTAssertEqual(error.suggestion?.port, 465)
    }
}

/// Probes and advice against real aiosmtpd servers on loopback. The well-known ports
/// need root and may be taken, so the fixtures' ports are passed as the port list;
/// production probes ``SmtpAdvice/usualProbes``.
final class AdviceIntegrationTests: XCTestCase {
    private func failure(_ settings: SmtpSettings) throws -> SmtpError {
        do {
            _ = try SmtpClient.check(settings)
        } catch let error as SmtpError {
            return error
        }
        throw EndToEndTestFailure("the check succeeded with \(settings.port)/\(settings.security)")
    }

    func testSSLOnASTARTTLSPortSuggestsTheImplicitTLSPortThatAnswers() throws {
        let starttls = try SmtpTestServer(mode: .starttls, user: "alice", password: "pw")
        let implicit = try SmtpTestServer(mode: .implicit, user: "alice", password: "pw")
        let settings = try loopbackSettings(port: starttls.port, security: .implicitTLS) {
            $0.authentication = .plain; $0.username = "alice"; $0.password = { "pw" }
        }
        let started = Date()
        let error = try failure(settings)
        XCTAssertEqual(error.stage, .tls)
        let advised = SmtpAdvice.advise(error, settings: settings, startedAt: started, usual: [SmtpProbe(port: implicit.port, security: .implicitTLS),
                                                                                                  SmtpProbe(port: smtpUnusedLoopbackPort(), security: .startTLSRequired)])
        let suggestion = try XCTUnwrap(advised.suggestion, advised.hint)
        XCTAssertEqual(suggestion.port, implicit.port)
        XCTAssertEqual(suggestion.security, .implicitTLS)
        XCTAssertEqual(suggestion.verified, "port \(implicit.port) answers with SSL/TLS (certificate valid for 127.0.0.1)")
        XCTAssertTrue(advised.hint.hasPrefix(error.hint), advised.hint)
        XCTAssertTrue(advised.hint.contains(suggestion.verified), advised.hint)
        XCTAssertTrue(advised.hint.contains("Connection security to SSL/TLS"), advised.hint)
        XCTAssertLessThan(Date().timeIntervalSince(started), settings.sessionTimeout)
        // Probes never sign in and never send.
        XCTAssertEqual(implicit.messageCount, 0)
    }

    func testSTARTTLSOnTheSamePortIsSuggestedWhenNoOtherPortAnswers() throws {
        let starttls = try SmtpTestServer(mode: .starttls)
        let settings = try loopbackSettings(port: starttls.port, security: .implicitTLS)
        let error = try failure(settings)
        let advised = SmtpAdvice.advise(error, settings: settings, startedAt: Date(), usual: [SmtpProbe(port: smtpUnusedLoopbackPort(), security: .startTLSRequired)])
        XCTAssertEqual(advised.suggestion, SmtpSuggestion(port: starttls.port, security: .startTLSRequired,
                                                          verified: "port \(starttls.port) answers with STARTTLS (certificate valid for 127.0.0.1)"))
    }

    func testNoSuggestionWhenEveryAlternativeFails() throws {
        // A plain-only server (no STARTTLS) with a password: plain text is no option;
        // an SSL/TLS port whose certificate is for another name fails verification.
        let plain = try SmtpTestServer(mode: .plain)
        let wrongName = try SmtpTestServer(mode: .implicit, certificate: "wronghost")
        let settings = try loopbackSettings(port: plain.port, security: .implicitTLS) {
            $0.authentication = .plain; $0.username = "alice"; $0.password = { "pw" }
        }
        let error = try failure(settings)
        let advised = SmtpAdvice.advise(error, settings: settings, startedAt: Date(), usual: [SmtpProbe(port: wrongName.port, security: .implicitTLS)])
        XCTAssertNil(advised.suggestion, advised.hint)
        XCTAssertTrue(advised.hint.contains("none works either"), advised.hint)
        XCTAssertTrue(advised.hint.contains("port \(wrongName.port) with SSL/TLS"), advised.hint)
        XCTAssertTrue(advised.hint.contains("port \(plain.port) with STARTTLS"), advised.hint)
    }

    func testProbeHonoursDeniedNetworksAndTheDeadline() throws {
        let implicit = try SmtpTestServer(mode: .implicit)
        var settings = try loopbackSettings(port: smtpUnusedLoopbackPort(), security: .startTLSRequired)
        let error = try failure(settings)
        XCTAssertEqual(error.kind, .refused)
        settings.deniedNetworks = try IPNetwork.list("127.0.0.0/8")
        XCTAssertNil(SmtpAdvice.advise(error, settings: settings, startedAt: Date(), usual: [SmtpProbe(port: implicit.port, security: .implicitTLS)]).suggestion)
        settings.deniedNetworks = []
        // No time left in the session: nothing is tried.
        let late = SmtpAdvice.advise(error, settings: settings, startedAt: Date().addingTimeInterval(-settings.sessionTimeout), usual: [SmtpProbe(port: implicit.port, security: .implicitTLS)])
        XCTAssertNil(late.suggestion)
        XCTAssertEqual(late.hint, error.hint)
        XCTAssertEqual(SmtpAdvice.advise(error, settings: settings, startedAt: Date(), usual: [SmtpProbe(port: implicit.port, security: .implicitTLS)]).suggestion?.port, implicit.port)
    }
}

struct EndToEndTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
