import ArgumentParser
@testable import EmailSetupFCGI
import Foundation
@testable import Smtp
import XCTest

/// `emailsetup`'s argument handling without running anything: usage errors are exit 2,
/// `serve` stays the default, CGI argv words are ignored, and `send` builds its message
/// with the real builder.
final class CommandLineParsingTests: XCTestCase {
    /// The status `main()` exits with for these arguments' parse error (nil: it parsed).
    private func parseStatus(_ arguments: [String]) -> Int32? {
        do {
            _ = try EmailSetupCommand.parseAsRoot(arguments)
            return nil
        } catch {
            return EmailSetupCommand.usageStatus(for: error) ?? EmailSetupCommand.exitCode(for: error).rawValue
        }
    }

    func testParseErrorsAreExitTwoNotSixtyFour() {
        XCTAssertEqual(parseStatus(["send", "--bogus"]), 2)
        XCTAssertEqual(parseStatus(["send", "--to"]), 2)                       // missing value
        XCTAssertEqual(parseStatus(["check", "--port", "many"]), 2)            // not a number
        XCTAssertEqual(parseStatus(["frobnicate"]), 2)                         // unexpected word
        XCTAssertEqual(parseStatus(["serve", "--socket", "/a", "--listen", "127.0.0.1:1"]), 2)  // validate()
    }

    func testUsageMessageIsArgumentParsersOwn() {
        XCTAssertThrowsError(try EmailSetupCommand.parseAsRoot(["send", "--bogus"])) { error in
            let message = EmailSetupCommand.fullMessage(for: error)
            XCTAssertTrue(message.contains("Unknown option '--bogus'"), message)
            XCTAssertTrue(message.contains("emailsetup send"), message)
        }
    }

    func testHelpIsExitZeroAndExitCodesPassThrough() throws {
        for arguments in [["send", "--help"], ["--help"], ["help", "check"]] {
            // --help parses to ArgumentParser's help command, whose run() throws CleanExit.
            var help = try EmailSetupCommand.parseAsRoot(arguments)
            XCTAssertThrowsError(try help.run(), "\(arguments)") { error in
                XCTAssertNil(EmailSetupCommand.usageStatus(for: error))
                XCTAssertEqual(EmailSetupCommand.exitCode(for: error), .success)
            }
        }
        XCTAssertNil(EmailSetupCommand.usageStatus(for: ExitCode(3)))
        XCTAssertNil(EmailSetupCommand.usageStatus(for: ExitCode(64)))
        XCTAssertEqual(EmailSetupCommand.usageStatus(for: ArgumentParser.ValidationError("bad")), 2)
    }

    func testServeIsTheDefaultSubcommand() throws {
        XCTAssertTrue(try EmailSetupCommand.parseAsRoot([]) is ServeCommand)
        XCTAssertTrue(try EmailSetupCommand.parseAsRoot(["--config", "/x"]) is ServeCommand)
        XCTAssertTrue(try EmailSetupCommand.parseAsRoot(["send", "--to", "a@example.com"]) is SendCommand)
    }

    func testCGIQueryWordsInArgvAreIgnored() {
        let cgi = ["GATEWAY_INTERFACE": "CGI/1.1", "QUERY_STRING": "send+--to+x%40example.com"]
        XCTAssertEqual(EmailSetupCommand.effectiveArguments(["send", "--to", "x@example.com"], environment: cgi), [])
        XCTAssertEqual(EmailSetupCommand.effectiveArguments(["send", "--to", "x%40example.com"], environment: cgi), [])
        // Not those words, a query with "=", or not CGI: the arguments stand.
        XCTAssertEqual(EmailSetupCommand.effectiveArguments(["migrate"], environment: cgi), ["migrate"])
        XCTAssertEqual(EmailSetupCommand.effectiveArguments(["a"], environment: ["GATEWAY_INTERFACE": "CGI/1.1", "QUERY_STRING": "a=1"]), ["a"])
        XCTAssertEqual(EmailSetupCommand.effectiveArguments(["send"], environment: ["QUERY_STRING": "send"]), ["send"])
        XCTAssertEqual(EmailSetupCommand.effectiveArguments([], environment: cgi), [])
    }

    // MARK: - send

    private func send(_ arguments: [String]) throws -> SendCommand {
        try SendCommand.parse(arguments + ["--host", "127.0.0.1", "--security", "none", "--from", "app@example.com"])
    }

    func testMessageIsBuiltWithTheBuilder() throws {
        let command = try send(["--to", "ops@example.com", "--to", "Desk Team <desk@bücher.example>", "--subject", "Grüße aus Köln"])
        let settings = try command.options.settings()
        let message = try command.makeMessage(sender: settings.senderAddress ?? "", to: try command.mailboxes(), body: "Zeile 1\nÄrger\n")
        XCTAssertEqual(message.envelope, Envelope(from: "app@example.com", recipients: ["ops@example.com", "desk@xn--bcher-kva.example"]))
        let text = String(decoding: try message.rendered(), as: UTF8.self)
        XCTAssertTrue(text.contains("\r\nSubject: =?utf-8?"), text)
        XCTAssertFalse(text.contains("Köln"), "the subject must be RFC 2047-encoded")
        XCTAssertTrue(text.contains("To: ops@example.com, Desk Team <desk@xn--bcher-kva.example>\r\n"), text)
        XCTAssertTrue(text.contains("Content-Transfer-Encoding: quoted-printable\r\n"), text)
        XCTAssertTrue(text.contains("\r\n\r\nZeile 1\r\n=C3=84rger\r\n"), text)
    }

    func testBulkCopiesHaveTheirOwnMessageIDs() throws {
        let command = try send(["--to", "ops@example.com"])
        let message = try command.makeMessage(sender: "app@example.com", to: try command.mailboxes(), body: "x")
        let copies = try SendCommand.copies(of: message, count: 3)
        let ids = copies.map { String(decoding: $0.message, as: UTF8.self).components(separatedBy: "Message-ID: ")[1].prefix(40) }
        XCTAssertEqual(Set(ids).count, 3)
        XCTAssertTrue(copies.allSatisfy { $0.envelope == message.envelope })
    }

    /// The spliced copies are exactly what the builder renders with their ids.
    func testBulkCopiesAreWhatTheBuilderRenders() throws {
        let command = try send(["--to", "ops@example.com", "--to", "Zoë <zoe@example.com>", "--subject", "Grüße"])
        let body = String(repeating: "Ärger über lange Zeilen ", count: 20) + "\n.\n"
        let message = try command.makeMessage(sender: "app@bücher.example", to: try command.mailboxes(), body: body)
        for copy in try SendCommand.copies(of: message, count: 2) {
            let text = String(decoding: copy.message, as: UTF8.self)
            let id = try XCTUnwrap(text.components(separatedBy: "Message-ID: <").last?.components(separatedBy: ">").first)
            XCTAssertTrue(id.hasSuffix("@xn--bcher-kva.example"), id)
            XCTAssertEqual(id.count, 32 + "@xn--bcher-kva.example".count)
            var expected = message
            expected.messageID = id
            XCTAssertEqual(copy.message, try expected.rendered())
        }
    }

    func testBadAddressesAreUsageErrors() throws {
        for bad in ["nobody", "a@@example.com", "a@example.com\r\nRCPT TO:<x@y>", "<a@example.com"] {
            let command = try send(["--to", "ok@example.com", "--to", bad])
            XCTAssertThrowsError(try command.mailboxes(), bad) { error in
                XCTAssertTrue(error is CLIUsage, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("--to "), "\(error)")
            }
        }
        let badSender = try SendCommand.parse(["--to", "a@example.com", "--host", "h", "--from", "no-at-sign"])
        XCTAssertThrowsError(try badSender.options.settings()) { XCTAssertTrue("\($0)".contains("--from"), "\($0)") }
        let command = try send(["--to", "a@example.com", "--subject", "two\nlines"])
        XCTAssertThrowsError(try command.makeMessage(sender: "app@example.com", to: try command.mailboxes(), body: "")) {
            XCTAssertTrue("\($0)".contains("subject"), "\($0)")
        }
    }

    // MARK: - --stored

    func testStoredRefusesConflictingSettingsOptions() throws {
        let command = try SendCommand.parse(["--to", "a@example.com", "--stored", "--host", "h", "--verify", "none"])
        XCTAssertThrowsError(try command.options.settings()) { error in
            XCTAssertTrue(error is CLIUsage)
            XCTAssertTrue("\(error)".contains("--host, --verify"), "\(error)")
        }
        let withoutStored = try SendCommand.parse(["--to", "a@example.com", "--config", "/x", "--host", "h", "--from", "a@example.com"])
        XCTAssertThrowsError(try withoutStored.options.settings()) { XCTAssertTrue("\($0)".contains("--config"), "\($0)") }
    }

    func testStoredWithAnUnreadableConfigurationSaysSo() throws {
        let command = try CheckCommand.parse(["--stored", "--helo", "me.example", "--config", "/nonexistent/emailsetup.conf"])
        XCTAssertThrowsError(try command.options.settings(environment: [:])) { error in
            XCTAssertTrue(error is CLIUsage)
            XCTAssertTrue("\(error)".hasPrefix("--stored: cannot use the responder configuration /nonexistent/emailsetup.conf"), "\(error)")
        }
    }

    func testExplicitDefaultsAndTimeoutChecks() throws {
        let settings = try send(["--to", "a@example.com"]).options.settings()
        XCTAssertEqual(settings.port, 25)
        XCTAssertEqual(settings.connectTimeout, 10)
        XCTAssertEqual(settings.commandTimeout, 30)
        XCTAssertEqual(settings.sessionTimeout, 120)
        XCTAssertEqual(settings.verification, .full)
        XCTAssertThrowsError(try send(["--to", "a@example.com", "--deadline", "0"]).options.settings())
    }
}
