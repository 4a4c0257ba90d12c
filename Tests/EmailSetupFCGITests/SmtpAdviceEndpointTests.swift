import Foundation
@testable import EmailSetupFCGI
import Smtp
import XCTest
import Synchronization

/// How the handler passes a failure through verified advice and renders
/// `diagnosis.suggestion`, with a scripted SMTP peer (the probing itself is proven
/// against real servers in SmtpTests and EndToEndTests).
final class SmtpAdviceEndpointTests: XCTestCase {
    /// Fails every session at TLS; `advise` records what it was given and adds a suggestion.
    final class AdvisingSmtp: SmtpOperations, Sendable {
        private let calls = Mutex<[(settings: SmtpSettings, startedAt: Date)]>([])
        var advised: [(settings: SmtpSettings, startedAt: Date)] { calls.withLock { $0 } }
        let failure = SmtpError(stage: .tls, kind: .tlsHandshake, hint: "the server answered in plain text")

        func check(_ settings: SmtpSettings) throws -> SmtpCheckReport { throw failure }
        func send(envelope: Envelope, message: [UInt8], settings: SmtpSettings) throws -> SmtpDeliveryReport { throw failure }
        func advise(_ error: SmtpError, settings: SmtpSettings, startedAt: Date) -> SmtpError {
            calls.withLock { $0.append((settings, startedAt)) }
            var advised = error
            advised.suggestion = SmtpSuggestion(port: 465, security: .implicitTLS,
                                                verified: "port 465 answers with SSL/TLS (certificate valid for smtp.example.com)")
            advised.hint += ". Tried just now"
            return advised
        }
    }

    private func handler(_ smtp: SmtpOperations) -> APIHandler {
        let repository = MemorySettingsRepository()
        repository.values = ["from_address": "app@example.com", "smtp_host": "smtp.example.com", "smtp_port": "587",
                             "smtp_connection_type": "SSL"]
        repository.version = 2
        var handler = APIHandler(repository: repository, logger: .quiet)
        handler.smtp = smtp
        handler.sessionLimit = 40
        return handler
    }

    func testTheDiagnosisCarriesTheSuggestionAndTheAmendedHint() throws {
        let smtp = AdvisingSmtp()
        let before = Date()
        for path in ["/api/setup/email_check", "/api/setup/email_test/ops%40example.com"] {
            let r = handler(smtp).answer(post(path, "{}"))
            XCTAssertEqual(r.status, 502, path)
            let suggestion = try XCTUnwrap(r.json["diagnosis"]?["suggestion"], String(decoding: r.body, as: UTF8.self))
            XCTAssertEqual(suggestion["port"], .number(465))
            XCTAssertEqual(suggestion["smtp_connection_type"], "SSL")
            XCTAssertEqual(suggestion["connection_security"], "SSL/TLS")
            XCTAssertEqual(suggestion["verified"], "port 465 answers with SSL/TLS (certificate valid for smtp.example.com)")
            XCTAssertEqual(r.error("smtp"), "the server answered in plain text. Tried just now")
            XCTAssertEqual(r.json["diagnosis"]?["hint"], "the server answered in plain text. Tried just now")
        }
        // Advice gets the session's own settings (deadline capped by smtp_session_limit) and start.
        XCTAssertEqual(smtp.advised.count, 2)
        for call in smtp.advised {
            XCTAssertEqual(call.settings.port, 587)
            XCTAssertEqual(call.settings.security, .implicitTLS)
            XCTAssertLessThanOrEqual(call.settings.sessionTimeout, 40)
            XCTAssertGreaterThanOrEqual(call.startedAt, before)
        }
    }

    func testWithoutAdviceTheSuggestionIsNull() {
        let smtp = ScriptedSmtp()
        smtp.failure = SmtpError(stage: .tls, kind: .tlsHandshake, hint: "the server answered in plain text")
        let r = handler(smtp).answer(post("/api/setup/email_check", "{}"))
        XCTAssertEqual(r.status, 502)
        XCTAssertEqual(r.json["diagnosis"]?["suggestion"], .null)
        XCTAssertEqual(r.error("smtp"), "the server answered in plain text")
    }
}
