import Foundation
@testable import Smtp
import TestSupport
import XCTest

/// A check must not become a way to reach or read internal services: denied networks
/// are refused after resolution, and what a non-SMTP peer sent is shown only as a
/// short, printable excerpt.
final class IPNetworkTests: XCTestCase {
    func testParsesCanonicalises() throws {
        XCTAssertEqual(try IPNetwork("169.254.0.0/16").description, "169.254.0.0/16")
        XCTAssertEqual(try IPNetwork("FE80::/10").description, "fe80::/10")
        XCTAssertEqual(try IPNetwork("192.0.2.7").description, "192.0.2.7/32", "a single address is a /32")
        XCTAssertEqual(try IPNetwork("2001:db8::1").description, "2001:db8::1/128")
        XCTAssertEqual(try IPNetwork("0.0.0.0/0").description, "0.0.0.0/0")
        XCTAssertEqual(try IPNetwork("::ffff:169.254.0.0/112").description, "169.254.0.0/16", "IPv4-mapped networks are IPv4")
        XCTAssertTrue(try IPNetwork("10.0.0.0/8").isIPv4)
    }

    func testRefusesWhatIsNotANetwork() {
        for (bad, words) in [("169.254.0.0/33", "from 0 to 32"), ("fe80::/129", "from 0 to 128"), ("169.254.1.0/16", "169.254.0.0/16"),
                             ("10.0.0.0/", "prefix length"), ("10.0.0.0/+8", "prefix length"), ("127.1/8", "not an IP network"),
                             ("example.com/24", "not an IP network"), ("fe80::1%eth0/64", "not an IP network"), ("", "not an IP network")] {
            do {
                let network = try IPNetwork(bad)
                XCTFail("\(bad) accepted as \(network)")
            } catch {
                XCTAssertTrue(error.reason.contains(words), "\(bad): \(error.reason)")
            }
        }
    }

    func testListSplitsOnCommasAndEmptyIsNone() throws {
        XCTAssertEqual(try IPNetwork.list(IPNetwork.defaultDeniedText).map(\.description), ["169.254.0.0/16", "fe80::/10"])
        XCTAssertEqual(try IPNetwork.list(""), [])
        XCTAssertEqual(try IPNetwork.list(" 10.0.0.0/8 ,, ::1 ").map(\.description), ["10.0.0.0/8", "::1/128"])
        XCTAssertThrowsError(try IPNetwork.list("10.0.0.0/8, nonsense"))
    }

    func testContains() throws {
        let linkLocal = try IPNetwork("169.254.0.0/16")
        XCTAssertTrue(linkLocal.contains("169.254.169.254"))
        XCTAssertTrue(linkLocal.contains("169.254.0.0"))
        XCTAssertTrue(linkLocal.contains("169.254.255.255"))
        XCTAssertFalse(linkLocal.contains("169.255.0.0"))
        XCTAssertFalse(linkLocal.contains("169.253.255.255"))
        XCTAssertTrue(linkLocal.contains("::ffff:169.254.169.254"), "an IPv4-mapped IPv6 address counts as IPv4")
        XCTAssertTrue(linkLocal.contains("::FFFF:a9fe:a9fe"), "in any spelling")
        XCTAssertFalse(linkLocal.contains("fe80::1"))
        XCTAssertFalse(linkLocal.contains("metadata.internal"), "a name is in no network")

        let v6 = try IPNetwork("fe80::/10")
        XCTAssertTrue(v6.contains("fe80::1"))
        XCTAssertTrue(v6.contains("febf:ffff::1"))
        XCTAssertFalse(v6.contains("fec0::1"))
        XCTAssertTrue(v6.contains("fe80::1%eth0"), "getnameinfo adds the scope to a link-local address")
        XCTAssertTrue(v6.contains("[fe80::1]"))
        XCTAssertFalse(v6.contains("169.254.169.254"))

        let odd = try IPNetwork("10.128.0.0/9")
        XCTAssertTrue(odd.contains("10.200.1.1"))
        XCTAssertFalse(odd.contains("10.127.255.255"))
        XCTAssertTrue(try IPNetwork("0.0.0.0/0").contains("203.0.113.9"))
    }

    func testScreenSkipsDeniedAddressesAndNamesTheSetting() throws {
        let denied = try IPNetwork.list("169.254.0.0/16, fe80::/10")
        let name = try HostName("metadata.example")
        let (allowed, refusals) = ConnectTarget.screen(["169.254.169.254", "192.0.2.1", "fe80::1%eth0"], host: name, denied: denied)
        XCTAssertEqual(allowed, [1])
        XCTAssertEqual(refusals, [
            "metadata.example resolves to 169.254.169.254, which is in smtp_denied_networks (169.254.0.0/16) of the responder's configuration; this destination is refused",
            "metadata.example resolves to fe80::1%eth0, which is in smtp_denied_networks (fe80::/10) of the responder's configuration; this destination is refused",
        ])
        let literal = try HostName("169.254.169.254")
        XCTAssertEqual(ConnectTarget.screen(["169.254.169.254"], host: literal, denied: denied).refusals,
                       ["169.254.169.254 is in smtp_denied_networks (169.254.0.0/16) of the responder's configuration; this destination is refused"])
        XCTAssertEqual(ConnectTarget.screen(["169.254.169.254"], host: literal, denied: []).allowed, [0], "nothing denied, nothing refused")
    }

    func testExcerptIsShortAndPrintable() {
        XCTAssertEqual(ReplyParser.excerpt("220 mail.example.com ESMTP"), "220 mail.example.com ESMTP")
        let long = String(repeating: "x", count: 300)
        XCTAssertEqual(ReplyParser.excerpt(long), String(repeating: "x", count: 80) + "…")
        XCTAssertEqual(ReplyParser.excerpt(String(repeating: "x", count: 80)), String(repeating: "x", count: 80), "exactly 80 is not cut")
        XCTAssertEqual(ReplyParser.excerpt("a\u{1B}[31mb\u{0}c\u{7F}d\u{85}e\u{202E}f\u{200B}g\u{2028}h"), "a?[31mb?c?d?e?f?g?h")
        XCTAssertEqual(ReplyParser.excerpt(String(decoding: [0x41, 0xFF, 0x42], as: UTF8.self)), "A\u{FFFD}B", "invalid UTF-8 is replaced")
    }
}

/// The same defences against real peers on loopback.
final class ProbingDefenceIntegrationTests: XCTestCase {
    private func check(_ settings: SmtpSettings) -> SmtpError? {
        do {
            _ = try SmtpClient.check(settings)
            return nil
        } catch let error as SmtpError {
            return error
        } catch {
            XCTFail("not an SmtpError: \(error)")
            return nil
        }
    }

    func testDeniedLiteralIsRefusedBeforeConnecting() throws {
        let server = try HostileSmtpServer(mode: "normal")
        let settings = try loopbackSettings(port: server.port, security: .none) {
            $0.deniedNetworks = try! IPNetwork.list("127.0.0.0/8")
        }
        let error = try XCTUnwrap(check(settings), "a denied destination was connected to")
        XCTAssertEqual(error.stage, .connect)
        XCTAssertEqual(error.kind, .invalidInput)
        XCTAssertEqual(error.hint, "127.0.0.1 is in smtp_denied_networks (127.0.0.0/8) of the responder's configuration; this destination is refused")
        XCTAssertTrue(server.received.isEmpty, "bytes reached the denied server: \(server.received.count)")
        XCTAssertTrue(error.transcript.text.contains("smtp_denied_networks"), error.transcript.text)

        // The same server without the denial: the check passes, so the refusal above was the denial's.
        let allowed = try loopbackSettings(port: server.port, security: .none) { $0.deniedNetworks = try! IPNetwork.list("169.254.0.0/16") }
        XCTAssertNil(check(allowed))
    }

    func testNameResolvingIntoADeniedNetworkIsRefused() throws {
        let server = try HostileSmtpServer(mode: "normal")
        // localhost resolves to 127.0.0.1 and/or ::1 (/etc/hosts), which stands in for
        // a name resolving to 169.254.169.254: checked after resolution, not on the name.
        let settings = try loopbackSettings(port: server.port, security: .none, host: "localhost") {
            $0.deniedNetworks = try! IPNetwork.list("127.0.0.0/8, ::1/128")
        }
        let error = try XCTUnwrap(check(settings), "a name resolving into a denied network was connected to")
        XCTAssertEqual(error.stage, .connect)
        XCTAssertEqual(error.kind, .invalidInput)
        XCTAssertTrue(error.hint.hasPrefix("localhost resolves to "), error.hint)
        XCTAssertTrue(error.hint.contains("of the responder's configuration; this destination is refused"), error.hint)
        XCTAssertTrue(server.received.isEmpty)

        // Only the IPv6 loopback denied: the IPv4 one is still tried and works.
        let partly = try loopbackSettings(port: server.port, security: .none, host: "localhost") {
            $0.deniedNetworks = try! IPNetwork.list("::1/128")
        }
        XCTAssertNil(check(partly), "an allowed address of the same name must still be used")
    }

    func testIPv4MappedLiteralCountsAsIPv4() throws {
        let settings = try loopbackSettings(port: smtpUnusedLoopbackPort(), security: .none, host: "::ffff:127.0.0.1") {
            $0.deniedNetworks = try! IPNetwork.list("127.0.0.0/8")
        }
        let error = try XCTUnwrap(check(settings))
        XCTAssertEqual(error.kind, .invalidInput, error.hint)
        XCTAssertTrue(error.hint.contains("(127.0.0.0/8)"), error.hint)
    }

    func testHostRefusedWithTheValidatorsWords() throws {
        for (typed, reason) in [("0x7f000001", "some programs read it as 127.0.0.1"), ("127.1", "write IPv4 addresses as a dotted quad"),
                                ("bad host", "space")] {
            let settings = try loopbackSettings(port: smtpUnusedLoopbackPort(), security: .none, host: typed)
            let error = try XCTUnwrap(check(settings), typed)
            XCTAssertEqual(error.stage, .dns, typed)
            XCTAssertEqual(error.kind, .invalidInput, typed)
            guard case .failure(let refusal) = HostName.validate(typed) else { return XCTFail("\(typed) accepted") }
            XCTAssertTrue(error.hint.hasSuffix(HostName.refusal(refusal)), "\(typed): \(error.hint)")
            XCTAssertTrue(error.hint.contains(reason), "\(typed): \(error.hint)")
        }
    }

    /// An SSH server's 300-byte banner: the hint, the reply text and the transcript
    /// show at most 80 printable characters of it.
    func testSSHBannerShownOnlyAsAShortExcerpt() throws {
        let server = try HostileSmtpServer(mode: "ssh_banner")
        let settings = try loopbackSettings(port: server.port, security: .none) { $0.commandTimeout = 3 }
        let error = try XCTUnwrap(check(settings))
        XCTAssertEqual(error.stage, .greeting)
        XCTAssertEqual(error.kind, .protocol)
        XCTAssertTrue(error.hint.contains("does not speak SMTP"), error.hint)
        XCTAssertTrue(error.hint.contains("SSH-2.0-OpenSSH_9.2p1"), error.hint)
        assertShortAndPrintable(error)
    }

    func testRejectingGreetingOfAnUnprovenPeerIsCut() throws {
        let server = try HostileSmtpServer(mode: "banner_554_long")
        let settings = try loopbackSettings(port: server.port, security: .none) { $0.commandTimeout = 3 }
        let error = try XCTUnwrap(check(settings))
        XCTAssertEqual(error.stage, .greeting)
        XCTAssertEqual(error.replyCode, 554)
        let replyText = try XCTUnwrap(error.replyText)
        XCTAssertLessThanOrEqual(replyText.unicodeScalars.count, 81, replyText)
        XCTAssertTrue(replyText.hasSuffix("…"), replyText)
        assertShortAndPrintable(error)
    }

    private func assertShortAndPrintable(_ error: SmtpError, file: StaticString = #filePath, line: UInt = #line) {
        let shown = [error.hint, error.replyText ?? "", String(describing: error.underlying.map { "\($0)" } ?? "")]
            + error.transcript.entries.map(\.text)
        for text in shown {
            XCTAssertFalse(text.contains("secret-build-id"), "more than 80 characters shown: \(text)", file: file, line: line)
            XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0 == "\u{202E}" },
                           "a control character shown: \(text.debugDescription)", file: file, line: line)
        }
        for entry in error.transcript.entries where entry.direction == .server {
            XCTAssertLessThanOrEqual(entry.text.unicodeScalars.count, 81, entry.text, file: file, line: line)
        }
    }
}
