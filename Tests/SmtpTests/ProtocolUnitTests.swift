import XCTest
@testable import Smtp
import Synchronization

/// Fast tests of the pure protocol pieces: reply parsing, dot-stuffing, AUTH encodings,
/// hints, error rendering.
final class ReplyParserTests: XCTestCase {
    private func reply(_ text: String, enhanced: Bool = true, lineLimit: Int = 4096) throws -> SmtpReply {
        let peer = ScriptedPeer(greeting: text) { _ in nil }
        return try LineReader(lineLimit: lineLimit).readReply(from: peer, deadline: .after(seconds: 1), enhancedCodes: enhanced) { _ in }
    }

    func testSingleLine() throws {
        let r = try reply("250 OK\r\n")
        XCTAssertEqual(r.code, 250)
        XCTAssertEqual(r.lines, ["OK"])
        XCTAssertNil(r.enhancedCode)
    }

    func testMultilineWithEnhancedCodes() throws {
        let r = try reply("550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third\r\n")
        XCTAssertEqual(r.code, 550)
        XCTAssertEqual(r.enhancedCode, "5.1.1")
        XCTAssertEqual(r.lines, ["first", "second", "third"])
        XCTAssertTrue(r.isPermanentNegative)
    }

    func testEnhancedCodeIgnoredWhenNotNegotiatedOrMismatched() throws {
        XCTAssertNil(try reply("535 5.7.8 bad\r\n", enhanced: false).enhancedCode)
        XCTAssertNil(try reply("250 5.7.8 class does not match\r\n").enhancedCode)
        XCTAssertNil(try reply("250 2.0 too short\r\n").enhancedCode)
        XCTAssertEqual(try reply("451 4.3.0\r\n").enhancedCode, "4.3.0")
    }

    func testBareCodeAndBareLF() throws {
        let r = try reply("221\n")
        XCTAssertEqual(r.code, 221)
        XCTAssertEqual(r.lines, [""])
    }

    func testGarbageIsMalformed() {
        XCTAssertThrowsError(try reply("HTTP/1.1 400 Bad Request\r\n")) { error in
            guard case ReplyParseFailure.malformed = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try reply("25\r\n"))
        XCTAssertThrowsError(try reply("250xOK\r\n"))
        XCTAssertThrowsError(try reply("999 nine\r\n"))
    }

    func testCodeChangeWithinReplyIsMalformed() {
        XCTAssertThrowsError(try reply("250-first\r\n251 second\r\n"))
    }

    func testOverlongLineIsRefusedWithoutWaitingForCRLF() {
        let long = String(repeating: "A", count: 100_000)
        XCTAssertThrowsError(try reply(long)) { error in
            XCTAssertEqual(error as? ReplyParseFailure, .lineTooLong(limit: 4096))
        }
        XCTAssertThrowsError(try reply("250 " + String(repeating: "x", count: 5000) + "\r\n"))
    }

    /// RFC 5321 sets no limit on the lines of a reply: 300 extensions are fine; a reply
    /// beyond 64 KiB is not SMTP any more.
    func testManyLinesAreFineAndTheReplyIsBoundedByBytes() throws {
        let many = String(repeating: "250-X-EXTENSION-FOR-SOMETHING\r\n", count: 300) + "250 end\r\n"
        XCTAssertEqual(try reply(many).lines.count, 301)
        let huge = String(repeating: "250-" + String(repeating: "x", count: 1000) + "\r\n", count: 70) + "250 end\r\n"
        XCTAssertThrowsError(try reply(huge)) { error in
            XCTAssertEqual(error as? ReplyParseFailure, .tooLong(limit: 65536))
        }
    }

    func testCapabilitiesParsing() {
        let caps = SmtpCapabilities(ehloLines: ["mx.test greets", "PIPELINING", "size 1000", "AUTH=LOGIN", "AUTH PLAIN cram-md5", "8BITMIME", "SMTPUTF8", "STARTTLS"])
        XCTAssertTrue(caps.pipelining)
        XCTAssertTrue(caps.startTLS)
        XCTAssertTrue(caps.smtpUTF8)
        XCTAssertTrue(caps.eightBitMIME)
        XCTAssertEqual(caps.maximumSize, 1000)
        XCTAssertEqual(Set(caps.authMechanisms), ["LOGIN", "PLAIN", "CRAM-MD5"])
        XCTAssertNil(SmtpCapabilities(ehloLines: ["x", "SIZE 0"]).maximumSize)
    }
}

final class DataEncodingTests: XCTestCase {
    private func payload(_ text: String) throws -> String {
        String(decoding: try DataEncoding.prepare(Array(text.utf8)).payload, as: UTF8.self)
    }

    func testDotStuffingAndTerminator() throws {
        XCTAssertEqual(try payload("a\r\n.b\r\n..c\r\n.\r\n"), "a\r\n..b\r\n...c\r\n..\r\n.\r\n")
        XCTAssertEqual(try payload(".first"), "..first\r\n.\r\n")
        XCTAssertEqual(try payload(""), ".\r\n")
        XCTAssertEqual(try payload("x.y\r\n"), "x.y\r\n.\r\n")
    }

    func testBareLineEndingsBecomeCRLF() throws {
        XCTAssertEqual(try payload("a\nb\rc\r\n\n.d"), "a\r\nb\r\nc\r\n\r\n..d\r\n.\r\n")
        // "\r\n.\r\n" split as bare LF + ".": still stuffed, never an early end of data.
        XCTAssertEqual(try payload("x\n.\ny"), "x\r\n..\r\ny\r\n.\r\n")
    }

    /// The memchr-based encoder against a byte-at-a-time reference, on random messages.
    func testMatchesReferenceOnRandomMessages() throws {
        func reference(_ message: [UInt8]) -> [UInt8] {
            var lines: [[UInt8]] = [[]]
            var index = 0
            while index < message.count {
                let byte = message[index]
                if byte == 0x0D || byte == 0x0A {
                    if byte == 0x0D, index + 1 < message.count, message[index + 1] == 0x0A { index += 1 }
                    lines.append([])
                } else {
                    lines[lines.count - 1].append(byte)
                }
                index += 1
            }
            if lines.last!.isEmpty { lines.removeLast() }
            var out: [UInt8] = []
            for line in lines { out += (line.first == UInt8(ascii: ".") ? [UInt8(ascii: ".")] : []) + line + [0x0D, 0x0A] }
            return out + Array(".\r\n".utf8)
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x61, 0x2E, 0x2E, 0x0D, 0x0A, 0x0A, 0xC3, 0xBC, 0x20]
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let message = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            let prepared = try DataEncoding.prepare(message)
            XCTAssertEqual(prepared.payload, reference(message), "\(message)")
            XCTAssertEqual(prepared.hasEightBit, message.contains { $0 >= 0x80 })
        }
    }

    func testEightBitSizeAndRefusals() throws {
        let prepared = try DataEncoding.prepare(Array("Grüße\r\n".utf8))
        XCTAssertTrue(prepared.hasEightBit)
        XCTAssertEqual(prepared.messageSize, Array("Grüße\r\n".utf8).count)
        XCTAssertFalse(try DataEncoding.prepare(Array("plain\r\n".utf8)).hasEightBit)
        XCTAssertThrowsError(try DataEncoding.prepare([0x41, 0x00, 0x42])) { XCTAssertEqual($0 as? DataEncoding.Failure, .nul(offset: 1)) }
        XCTAssertNoThrow(try DataEncoding.prepare(Array(String(repeating: "x", count: 998).utf8)))
        XCTAssertThrowsError(try DataEncoding.prepare(Array(("ok\r\n" + String(repeating: "x", count: 999)).utf8))) {
            XCTAssertEqual($0 as? DataEncoding.Failure, .lineTooLong(line: 2, length: 999))
        }
    }
}

final class AuthEncodingTests: XCTestCase {
    func testCramMD5AgainstRFC2195Example() {
        let response = AuthEncoding.cramMD5(username: "tim", password: "tanstaaftanstaaf",
                                            challengeBase64: "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
        XCTAssertEqual(response, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")
        XCTAssertEqual(AuthEncoding.decodeBase64(response!).map { String(decoding: $0, as: UTF8.self) }, "tim b913a602c7eda7a495b4e6e7334d3890")
        XCTAssertNil(AuthEncoding.cramMD5(username: "u", password: "p", challengeBase64: "not base64!"))
    }

    func testPlainAndLoginWithUTF8() {
        XCTAssertEqual(AuthEncoding.plain(username: "tim", password: "tanstaaf"), "AHRpbQB0YW5zdGFhZg==")
        let utf8 = AuthEncoding.plain(username: "jörg", password: "pässwörd✓")
        XCTAssertEqual(AuthEncoding.decodeBase64(utf8), [0] + Array("jörg".utf8) + [0] + Array("pässwörd✓".utf8))
        XCTAssertEqual(AuthEncoding.login("Username:"), "VXNlcm5hbWU6")
    }

    func testBase64RoundTrip() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(($0 * 37 + 11) & 0xff) }
            XCTAssertEqual(AuthEncoding.decodeBase64(AuthEncoding.base64(bytes)), bytes)
        }
    }
}

final class DiagnosisTests: XCTestCase {
    private let context = Diagnosis.Context(host: "smtp.example.com", port: 465, security: .startTLSRequired,
                                            commandTimeout: 10, connectTimeout: 10, sessionTimeout: 60)

    func testHints() {
        XCTAssertEqual(Diagnosis.stream(.timeout, stage: .greeting, context: context).1, "no greeting within 10 s: port 465 expects SSL/TLS (implicit TLS), not STARTTLS: set Connection security to SSL/TLS")
        var c587 = context
        c587.port = 587
        c587.security = .implicitTLS
        XCTAssertEqual(Diagnosis.stream(.tls(function: "SSL_connect", errors: ["error:0A00010B:SSL routines::wrong version number"]), stage: .tls, context: c587).1,
                       "the server answered in plain text: port 587 expects STARTTLS, not SSL/TLS: set Connection security to STARTTLS")
        let refused = Diagnosis.connect(.connect([("192.0.2.1", .system(function: "connect", errno: ECONNREFUSED))]), context: context)
        XCTAssertEqual(refused.0, .connect)
        XCTAssertEqual(refused.1, .refused)
        XCTAssertEqual(refused.2, "connection refused: nothing listens on smtp.example.com:465; check the port and that the SMTP server runs")
        let silent = Diagnosis.connect(.connect([("192.0.2.1", .timeout)]), context: context)
        XCTAssertEqual(silent.1, .timeout)
        XCTAssertEqual(silent.2, "no answer within 10 s from smtp.example.com:465: a firewall may drop the traffic")
        let auth = Diagnosis.reply(SmtpReply(code: 535, enhancedCode: "5.7.8", lines: ["bad"]), stage: .auth, context: context)
        XCTAssertEqual(auth.0, .authRejected)
        XCTAssertEqual(auth.1, "credentials rejected (535 5.7.8): check the user name and password (some providers require an app password)")
        XCTAssertEqual(Diagnosis.reply(SmtpReply(code: 451, lines: ["later"]), stage: .data, context: context).0, .rejectedTemporary)
        XCTAssertEqual(Diagnosis.reply(SmtpReply(code: 421, lines: ["busy"]), stage: .greeting, context: context).0, .rejectedTemporary)
        var deadline = context
        deadline.sessionDeadlineHit = true
        XCTAssertEqual(Diagnosis.stream(.timeout, stage: .ehlo, context: deadline).1, "the session deadline of 60 s passed during ehlo")
    }

    func testRelayAndTLSRequiredHintsNameTheFix() {
        let relay = Diagnosis.reply(SmtpReply(code: 554, enhancedCode: "5.7.1", lines: ["<x@elsewhere.example>: Relay access denied"]), stage: .rcpt, context: context)
        XCTAssertEqual(relay.0, .rejectedPermanent)
        XCTAssertTrue(relay.1.hasPrefix("relay denied (554 5.7.1 <x@elsewhere.example>: Relay access denied): authenticate"), relay.1)
        // Not every 550 is relaying: an unknown mailbox stays "recipient refused".
        XCTAssertTrue(Diagnosis.reply(SmtpReply(code: 550, enhancedCode: "5.1.1", lines: ["no such user"]), stage: .rcpt, context: context).1.hasPrefix("recipient refused"))
        let tls = Diagnosis.reply(SmtpReply(code: 530, enhancedCode: "5.7.0", lines: ["Must issue a STARTTLS command first"]), stage: .mail, context: context)
        XCTAssertTrue(tls.1.hasPrefix("the server requires STARTTLS first (530 5.7.0)"), tls.1)
        XCTAssertTrue(tls.1.contains("set Connection security to SSL/TLS"), tls.1)
        let auth = Diagnosis.reply(SmtpReply(code: 530, enhancedCode: "5.7.0", lines: ["Authentication required"]), stage: .mail, context: context)
        XCTAssertEqual(auth.1, "the server requires authentication (530 5.7.0): choose a Sign-in method and enter the User name and Password")
    }

    func testEveryVerificationHintNamesCoverageExpiryAndPin() {
        let pin = String(repeating: "cd", count: 32)
        let selfSigned = SmtpCertificate(subject: "CN=localhost", issuer: "CN=localhost", notBefore: "2025-01-01T00:00:00Z", notAfter: "2035-01-01T00:00:00Z",
                                         sha256Fingerprint: pin, subjectAlternativeNames: ["DNS:localhost", "IP:127.0.0.1"])
        for code in [10, 9, 18, 20, 62, 99] {
            let hint = Diagnosis.verification(TLSVerifyResult(code: code, message: "m"), certificate: selfSigned, host: "mail.example.com")
            XCTAssertTrue(hint.hasSuffix("(covers localhost, 127.0.0.1; valid until 2035-01-01T00:00:00Z; fingerprint to pin: \(pin))"), "\(code): \(hint)")
        }
    }

    func testVerificationHints() {
        let cert = SmtpCertificate(subject: "CN=mail.example.org,O=Example", issuer: "CN=CA", notBefore: "2020-01-01T00:00:00Z",
                                   notAfter: "2021-01-01T00:00:00Z", sha256Fingerprint: String(repeating: "ab", count: 32),
                                   subjectAlternativeNames: ["DNS:mail.example.org"])
        XCTAssertEqual(Diagnosis.verification(TLSVerifyResult(code: 62, message: "hostname mismatch"), certificate: cert, host: "smtp.example.com"),
                       "certificate is for mail.example.org, not smtp.example.com: set SMTP server to one of these names, or set Certificate check to Pinned "
                       + "(covers mail.example.org; valid until 2021-01-01T00:00:00Z; fingerprint to pin: " + String(repeating: "ab", count: 32) + ")")
        XCTAssertTrue(Diagnosis.verification(TLSVerifyResult(code: 10, message: "expired"), certificate: cert, host: "x").hasPrefix("certificate expired on 2021-01-01T00:00:00Z"))
    }

    func testErrorRendering() throws {
        let error = SmtpError(stage: .auth, kind: .authRejected, replyCode: 535, enhancedCode: "5.7.8", replyText: "no",
                              hint: "credentials rejected (535 5.7.8)",
                              transcript: SmtpTranscript(entries: [.init(milliseconds: 3, direction: .client, text: "AUTH PLAIN <redacted>")]))
        XCTAssertFalse(error.isTransient)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(error)) as? [String: Any]
        XCTAssertEqual(json?["stage"] as? String, "auth")
        XCTAssertEqual(json?["kind"] as? String, "auth_rejected")
        XCTAssertEqual(json?["code"] as? Int, 535)
        XCTAssertEqual(json?["enhanced_code"] as? String, "5.7.8")
        XCTAssertEqual(json?["hint"] as? String, "credentials rejected (535 5.7.8)")
        XCTAssertEqual(json?["transcript"] as? [String], ["+3ms C: AUTH PLAIN <redacted>"])
        XCTAssertTrue(json?.keys.contains("certificate") ?? false)
        XCTAssertEqual(json?["kind"] as? String, "auth_rejected")
        XCTAssertEqual(SmtpError.Kind.tlsVerify.rawValue, "tls_verify")
        XCTAssertEqual(SmtpError(stage: .data, kind: .rejectedTemporary, replyCode: 451, hint: "").isTransient, true)
    }

    func testANameThatDoesNotExistIsPermanentAndAResolverHiccupIsNot() {
        XCTAssertFalse(SmtpError(stage: .dns, kind: .rejectedPermanent, hint: "").isTransient, "retrying will not create the name")
        XCTAssertTrue(SmtpError(stage: .dns, kind: .timeout, hint: "").isTransient, "EAI_AGAIN and resolver timeouts")
        XCTAssertTrue(SmtpError(stage: .connect, kind: .refused, hint: "").isTransient, "a network that is down may come back")
        XCTAssertTrue(SmtpError(stage: .connect, kind: .refused, hint: "").isTransient)
    }

    func testPinNormalisation() {
        let pin = String(repeating: "AB", count: 32)
        XCTAssertEqual(SmtpClient.normalizedPin(pin), String(repeating: "ab", count: 32))
        XCTAssertEqual(SmtpClient.normalizedPin(stride(from: 0, to: 64, by: 2).map { _ in "AB" }.joined(separator: ":")), String(repeating: "ab", count: 32))
        XCTAssertNil(SmtpClient.normalizedPin("abc"))
        XCTAssertNil(SmtpClient.normalizedPin(String(repeating: "zz", count: 32)))
    }

    func testStoredValues() {
        XCTAssertEqual(SmtpSettings.Security(storedValue: "None"), .startTLSOpportunistic)
        XCTAssertEqual(SmtpSettings.Security(storedValue: "STARTTLS"), .startTLSRequired)
        XCTAssertEqual(SmtpSettings.Security(storedValue: "TLS"), .implicitTLS)
        XCTAssertNil(SmtpSettings.Security(storedValue: "tls1.3"))
        XCTAssertEqual(SmtpSettings.Authentication(storedValue: "Cram_MD5"), .cramMD5)
        XCTAssertEqual(SmtpSettings.Verification(storedValue: "Pinned", pin: String(repeating: "AB", count: 32)),
                       .pinned(sha256: String(repeating: "ab", count: 32)))
        XCTAssertNil(SmtpSettings.Verification(storedValue: "Pinned", pin: ""))
        XCTAssertEqual(SmtpSettings.Verification(storedValue: "Full", pin: ""), .full)
    }

    func testPEMValidation() {
        XCTAssertThrowsError(try SmtpClient.validateCertificatesPEM("hello")) { error in
            XCTAssertEqual((error as? SmtpError)?.kind, .invalidInput)
        }
        XCTAssertThrowsError(try SmtpClient.validateCertificatesPEM("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
    }
}

final class ScriptedSessionTests: XCTestCase {
    func testPipelinedTransactionIsOneWriteAndRSETBetweenMessages() throws {
        let peer = ScriptedPeer.standard()
        let connection = try openScripted(peer, scriptedSettings())
        let envelope = Envelope(from: "app@example.com", recipients: ["a@example.com", "b@example.com"])
        let writesBefore = peer.writeCount
        let report = try connection.send(envelope: envelope, message: Array("Subject: x\r\n\r\n.hi\r\n".utf8))
        XCTAssertEqual(report.reply.code, 250)
        XCTAssertEqual(report.reply.enhancedCode, "2.0.0")
        XCTAssertEqual(report.recipients.map(\.delivered), [true, true])
        // One write for MAIL+RCPT+RCPT+DATA, one for the content.
        XCTAssertEqual(peer.writeCount - writesBefore, 2)
        XCTAssertTrue(peer.receivedText.contains("MAIL FROM:<app@example.com> SIZE=19\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"))
        XCTAssertTrue(peer.receivedText.contains("\r\n..hi\r\n.\r\n"))
        _ = try connection.send(envelope: envelope, message: Array("x\r\n".utf8))
        XCTAssertTrue(peer.receivedText.contains("RSET\r\nMAIL FROM:"))
        try connection.quit()
        XCTAssertTrue(peer.receivedText.hasSuffix("QUIT\r\n"))
    }

    func testBatchPipelinesContentWithTheNextGroupAndReportsEachMessage() throws {
        let peer = ScriptedPeer.standard { $0 == "RCPT TO:<bad@example.com>" ? "550 5.1.1 unknown\r\n" : nil }
        let connection = try openScripted(peer, scriptedSettings())
        let items = ["a@example.com", "bad@example.com", "c@example.com", "d@example.com"].map {
            SmtpClient.Outgoing(envelope: Envelope(from: "app@example.com", recipients: [$0]), message: Array("Subject: \($0)\r\n\r\nx\r\n".utf8))
        } + [SmtpClient.Outgoing(envelope: Envelope(from: "app@example.com", recipients: ["e@example.com"]), message: [0])]
        let before = peer.writeCount
        var results: [Int: Result<SmtpDeliveryReport, SmtpError>] = [:]
        let handled = connection.sendBatch(items[...]) { results[$0] = $1 }
        XCTAssertEqual(handled, 5)
        XCTAssertEqual(results.count, 5)
        XCTAssertEqual(try results[0]?.get().reply.code, 250)
        XCTAssertThrowsError(try results[1]?.get()) { XCTAssertEqual(($0 as? SmtpError)?.stage, .rcpt) }
        XCTAssertEqual(try results[2]?.get().reply.code, 250)
        XCTAssertEqual(try results[3]?.get().recipients.map(\.address), ["d@example.com"])
        XCTAssertThrowsError(try results[4]?.get()) { XCTAssertEqual(($0 as? SmtpError)?.kind, .invalidInput) }
        // Groups: [a], [bad], [".", c], [content c, d], [content d] — one write each.
        XCTAssertEqual(peer.writeCount - before, 5)
        XCTAssertTrue(peer.receivedText.contains("x\r\n.\r\nRSET\r\nMAIL FROM:<app@example.com> SIZE=31\r\nRCPT TO:<bad@example.com>\r\nDATA\r\n"))
        XCTAssertTrue(peer.receivedText.contains("DATA\r\n.\r\nRSET\r\nMAIL FROM:<app@example.com> SIZE=29\r\nRCPT TO:<c@example.com>"))
        XCTAssertFalse(connection.isBroken)
        try connection.quit()
    }

    func testWithoutPipeliningCommandsGoOneByOne() throws {
        let peer = ScriptedPeer.standard(ehlo: ["8BITMIME"])
        let connection = try openScripted(peer, scriptedSettings())
        let before = peer.writeCount
        _ = try connection.send(envelope: Envelope(from: "", recipients: ["a@example.com"]), message: Array("x\r\n".utf8))
        XCTAssertEqual(peer.writeCount - before, 4)  // MAIL, RCPT, DATA, content
        XCTAssertTrue(peer.receivedText.contains("MAIL FROM:<>\r\n"))
    }

    func testPartialRecipientRefusalDeliversToTheOthers() throws {
        let peer = ScriptedPeer.standard { $0 == "RCPT TO:<bad@example.com>" ? "550 5.1.1 unknown\r\n" : nil }
        let connection = try openScripted(peer, scriptedSettings())
        let report = try connection.send(envelope: Envelope(from: "a@example.com", recipients: ["ok@example.com", "bad@example.com"]),
                                         message: Array("x\r\n".utf8))
        XCTAssertEqual(report.recipients.map(\.delivered), [true, false])
        XCTAssertEqual(report.recipients[1].error?.replyCode, 550)
        XCTAssertEqual(report.recipients[1].error?.enhancedCode, "5.1.1")
        XCTAssertFalse(report.allDelivered)
    }

    func testAllRecipientsRefusedEndsAcceptedDataEmpty() throws {
        let peer = ScriptedPeer.standard { $0.hasPrefix("RCPT") ? "550 5.1.1 unknown\r\n" : nil }
        let connection = try openScripted(peer, scriptedSettings())
        XCTAssertThrowsError(try connection.send(envelope: Envelope(from: "a@example.com", recipients: ["x@example.com"]),
                                                 message: Array("secret body\r\n".utf8))) { error in
            let e = error as! SmtpError
            XCTAssertEqual(e.stage, .rcpt)
            XCTAssertEqual(e.kind, .rejectedPermanent)
            XCTAssertEqual(e.replyCode, 550)
        }
        XCTAssertFalse(peer.receivedText.contains("secret body"))
        XCTAssertTrue(peer.receivedText.hasSuffix("DATA\r\n.\r\n"))
        // The connection stays usable.
        XCTAssertFalse(connection.isBroken)
    }

    func testAuthLoginIsRedactedInTranscript() throws {
        let peer = ScriptedPeer.standard { line in
            switch line {
            case "AUTH LOGIN": return "334 VXNlcm5hbWU6\r\n"
            case AuthEncoding.login("jörg"): return "334 UGFzc3dvcmQ6\r\n"
            case AuthEncoding.login("pässwörd"): return "235 2.7.0 OK\r\n"
            default: return nil
            }
        }
        let calls = Counter()
        let settings = scriptedSettings {
            $0.authentication = .login
            $0.username = "jörg"
            $0.password = { calls.increment(); return "pässwörd" }
            $0.allowCleartextAuthentication = true
        }
        let connection = try openScripted(peer, settings)
        XCTAssertEqual(calls.value, 1)
        let text = connection.transcript.text
        XCTAssertFalse(text.contains(AuthEncoding.login("jörg")))
        XCTAssertFalse(text.contains(AuthEncoding.login("pässwörd")))
        XCTAssertTrue(text.contains("C: <redacted password>"))
        XCTAssertEqual(connection.server.authMechanism, "LOGIN")
    }

    func testAutoPicksCramMD5AndNeverCleartextWithoutTLS() throws {
        var challengeSeen = false
        let peer = ScriptedPeer.standard { line in
            if line == "AUTH CRAM-MD5" { challengeSeen = true; return "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n" }
            if line == "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw" { return "235 2.7.0 OK\r\n" }
            return nil
        }
        let connection = try openScripted(peer, scriptedSettings {
            $0.authentication = .auto
            $0.username = "tim"
            $0.password = { "tanstaaftanstaaf" }
        })
        XCTAssertTrue(challengeSeen)
        XCTAssertEqual(connection.server.authMechanism, "CRAM-MD5")
        XCTAssertTrue(connection.transcript.text.contains("<redacted CRAM-MD5 response>"))
        XCTAssertFalse(connection.transcript.text.contains("dGltIGI5"))

        let plainOnly = ScriptedPeer.standard(ehlo: ["AUTH PLAIN LOGIN"])
        let called = Counter()
        XCTAssertThrowsError(try openScripted(plainOnly, scriptedSettings {
            $0.authentication = .auto
            $0.username = "tim"
            $0.password = { called.increment(); return "x" }
        })) { error in
            XCTAssertEqual((error as? SmtpError)?.kind, .mechanismUnsupported)
            XCTAssertEqual((error as? SmtpError)?.stage, .auth)
        }
        XCTAssertEqual(called.value, 0, "the password provider must not be called when AUTH is not attempted")
        XCTAssertFalse(plainOnly.receivedText.contains("AUTH"))
    }

    func testHELOFallbackAndReplyTimeout() throws {
        let peer = ScriptedPeer.standard { $0.hasPrefix("EHLO") ? "502 5.5.1 no\r\n" : nil }
        let connection = try openScripted(peer, scriptedSettings())
        XCTAssertFalse(connection.server.capabilities.extended)
        XCTAssertTrue(peer.receivedText.contains("HELO example.com\r\n"))

        let silent = ScriptedPeer.standard { $0.hasPrefix("EHLO") ? "" : nil }
        XCTAssertThrowsError(try openScripted(silent, scriptedSettings())) { error in
            XCTAssertEqual((error as? SmtpError)?.stage, .ehlo)
            XCTAssertEqual((error as? SmtpError)?.kind, .timeout)
        }
    }

    func testInjectionIsRefusedBeforeTheWire() throws {
        let peer = ScriptedPeer.standard()
        let connection = try openScripted(peer, scriptedSettings())
        let before = peer.received.count
        for (from, to) in [("a@example.com\r\nRCPT TO:<x@evil>", "b@example.com"), ("a@example.com", "b@example.com\nDATA"),
                           ("a\0@example.com", "b@example.com"), ("a@example.com", "<b@example.com>")] {
            XCTAssertThrowsError(try connection.send(envelope: Envelope(from: from, recipients: [to]), message: Array("x\r\n".utf8))) { error in
                XCTAssertEqual((error as? SmtpError)?.kind, .invalidInput)
            }
        }
        XCTAssertEqual(peer.received.count, before)
        XCTAssertThrowsError(try openScripted(ScriptedPeer.standard(), scriptedSettings { $0.ehloName = "evil\r\nMAIL FROM:<x>" })) { error in
            XCTAssertEqual((error as? SmtpError)?.kind, .invalidInput)
        }
        XCTAssertThrowsError(try SmtpConnection.validate(scriptedSettings { $0.authentication = .plain; $0.username = "u\r\nQUIT" }))
        XCTAssertThrowsError(try SmtpConnection.validate(scriptedSettings { $0.ehloName = "bücher.example" }))
    }

    func testEHLONameDefaults() {
        XCTAssertEqual(scriptedSettings().effectiveEHLOName, "example.com")
        XCTAssertEqual(scriptedSettings { $0.ehloName = "client.test" }.effectiveEHLOName, "client.test")
        XCTAssertFalse(scriptedSettings { $0.senderAddress = nil }.effectiveEHLOName.isEmpty)
        XCTAssertNotEqual(scriptedSettings { $0.senderAddress = "a@bücher.example" }.effectiveEHLOName, "bücher.example")
    }

    func testSizeSMTPUTF8AndEightBitChecks() throws {
        let peer = ScriptedPeer.standard(ehlo: ["PIPELINING", "SIZE 10", "8BITMIME"])
        let connection = try openScripted(peer, scriptedSettings())
        XCTAssertThrowsError(try connection.send(envelope: Envelope(from: "a@example.com", recipients: ["b@example.com"]),
                                                 message: Array(String(repeating: "x", count: 20).utf8))) { error in
            XCTAssertEqual((error as? SmtpError)?.stage, .mail)
            XCTAssertEqual((error as? SmtpError)?.hint, "the message is 22 bytes; the server accepts at most 10 (SIZE)")
        }
        XCTAssertThrowsError(try connection.send(envelope: Envelope(from: "ä@example.com", recipients: ["b@example.com"]),
                                                 message: Array("x\r\n".utf8))) { error in
            XCTAssertEqual((error as? SmtpError)?.kind, .mechanismUnsupported)
        }
        _ = try connection.send(envelope: Envelope(from: "a@example.com", recipients: ["b@example.com"]), message: Array("ü\r\n".utf8))
        XCTAssertTrue(peer.receivedText.contains("MAIL FROM:<a@example.com> SIZE=4 BODY=8BITMIME\r\n"))
    }

    func testRedactionOfAuthPlain() throws {
        let peer = ScriptedPeer.standard()
        let connection = try openScripted(peer, scriptedSettings {
            $0.authentication = .plain
            $0.username = "alice"
            $0.password = { "hunter2" }
            $0.allowCleartextAuthentication = true
        })
        XCTAssertTrue(peer.receivedText.contains("AUTH PLAIN " + AuthEncoding.plain(username: "alice", password: "hunter2")))
        XCTAssertTrue(connection.transcript.text.contains("C: AUTH PLAIN <redacted>"))
        XCTAssertFalse(connection.transcript.text.contains(AuthEncoding.plain(username: "alice", password: "hunter2")))
    }
}

/// A thread-safe counter for password-provider calls.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
