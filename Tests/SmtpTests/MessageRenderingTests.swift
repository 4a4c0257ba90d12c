import XCTest
@testable import Smtp

final class MessageRenderingTests: XCTestCase {
    func testHeadersOfASimpleMessage() throws {
        let message = try Message(
            from: Mailbox(displayName: "Example App", address: Fixture.address("app@example.com")),
            to: [Mailbox(Fixture.address("ops@example.com")), try Mailbox("\"Doe, Jane\" <jane@example.org>")],
            cc: [Mailbox(Fixture.address("cc@example.net"))],
            replyTo: [Mailbox(Fixture.address("help@example.com"))],
            subject: "Test email",
            text: "It works.\n",
            date: Fixture.date, timeZone: Fixture.berlin, messageID: "abc.123@example.com",
            extraHeaders: [.init("Auto-Submitted", "auto-generated")])
        let text = String(decoding: try message.rendered(), as: UTF8.self)
        XCTAssertEqual(text, [
            "Date: Tue, 01 Jul 2003 10:52:37 +0200",
            "Message-ID: <abc.123@example.com>",
            "From: Example App <app@example.com>",
            "Reply-To: help@example.com",
            "To: ops@example.com, \"Doe, Jane\" <jane@example.org>",
            "Cc: cc@example.net",
            "Subject: Test email",
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
            "",
            "It works.",
            "",
        ].joined(separator: "\r\n"))
    }

    func testDateFormats() {
        XCTAssertEqual(Message.formatDate(Fixture.date, in: TimeZone(identifier: "UTC")!), "Tue, 01 Jul 2003 08:52:37 +0000")
        XCTAssertEqual(Message.formatDate(Fixture.date, in: TimeZone(identifier: "America/St_Johns")!), "Tue, 01 Jul 2003 06:22:37 -0230")
        XCTAssertEqual(Message.formatDate(Date(timeIntervalSince1970: 0), in: TimeZone(secondsFromGMT: 5 * 3600 + 45 * 60)!), "Thu, 01 Jan 1970 05:45:00 +0545")
    }

    func testGeneratedMessageIDIsAtTheSendersDomain() throws {
        let message = Message(from: Mailbox(Fixture.address("a@bücher.example")), to: [])
        let parts = message.messageID.split(separator: "@")
        XCTAssertEqual(parts.count, 2)
        XCTAssertEqual(parts[0].count, 32)
        XCTAssertEqual(parts[1], "xn--bcher-kva.example")
        XCTAssertNotEqual(message.messageID, Message(from: message.from).messageID)
        XCTAssertEqual(Rendered(try message.rendered()).header("Message-ID"), "<\(message.messageID)>")
    }

    func testBccIsInTheEnvelopeButNotTheHeaders() throws {
        let message = Fixture.message(
            to: [Mailbox(Fixture.address("to@example.com")), Mailbox(Fixture.address("TO@Example.com"))],
            cc: [Mailbox(Fixture.address("cc@example.com")), Mailbox(Fixture.address("to@example.com"))],
            bcc: [Mailbox(Fixture.address("secret@example.com")), Mailbox(Fixture.address("cc@example.com"))],
            from: Mailbox(Fixture.address("from@bücher.example")))
        let rendered = Rendered(try message.rendered())
        XCTAssertFalse(rendered.text.contains("secret"))
        XCTAssertFalse(rendered.text.lowercased().contains("bcc"))
        XCTAssertEqual(message.envelope, Envelope(
            from: "from@xn--bcher-kva.example",
            recipients: ["to@example.com", "TO@example.com", "cc@example.com", "secret@example.com"]))
        XCTAssertFalse(message.envelope.requiresSMTPUTF8)
        XCTAssertFalse(message.requiresSMTPUTF8)
    }

    func testUTF8LocalPartMakesTheMessageNeedSMTPUTF8() throws {
        let message = Fixture.message(to: [Mailbox(Fixture.address("jörg@example.com"))])
        XCTAssertTrue(message.requiresSMTPUTF8)
        XCTAssertTrue(message.envelope.requiresSMTPUTF8)
        XCTAssertEqual(Rendered(try message.rendered()).header("To"), "jörg@example.com")
    }

    // MARK: RFC 2047

    func testNonASCIISubjectAndNamesRoundTrip() throws {
        let subjects = [
            "Grüße aus Köln",
            "日本語の件名とても長い件名です。日本語の件名とても長い件名です。日本語の件名とても長い件名です。",
            "Emoji 👩‍👩‍👧‍👦 family and 🇩🇪 flag, with = and ? and _ signs",
            String(repeating: "é", count: 300),
            "ASCII but contains =?utf-8?Q?x?= an encoded-word lookalike",
        ]
        let names = ["Jörg Müller", "山田 太郎", "Zoë \"Z\" O'Brien, Jr.", "=?utf-8?B?Zm9v?="]
        for subject in subjects {
            for name in names {
                let message = try Fixture.message(
                    subject: subject,
                    to: [Mailbox(displayName: name, address: Fixture.address("to@example.com")),
                         Mailbox(displayName: "Ålice", address: Fixture.address("alice@example.com"))])
                let rendered = Rendered(try message.rendered())
                XCTAssertEqual(Decode.encodedWords(rendered.header("Subject")!), subject)
                XCTAssertTrue(rendered.hasOnlyCRLF)
                for line in rendered.headerLines {
                    XCTAssertLessThanOrEqual(line.utf8.count, 78, line)
                    XCTAssertTrue(line.utf8.allSatisfy { $0 < 0x80 }, "headers are ASCII: \(line)")
                }
                for token in rendered.text.split(whereSeparator: { $0 == " " || $0 == "\r\n" }) where token.hasPrefix("=?") {
                    XCTAssertLessThanOrEqual(token.count, 75 + 1, "encoded-word ≤ 75 (plus a comma): \(token)")
                    if let word = Decode.word(String(token.trimmingCharacters(in: CharacterSet(charactersIn: ",")))) {
                        XCTAssertFalse(word.isEmpty)
                    }
                }
                let to = rendered.header("To")!
                let nameEnd = to.range(of: " <to@example.com>")!.lowerBound
                let renderedName = String(to[..<nameEnd])
                if renderedName.hasPrefix("\"") {
                    XCTFail("a non-ASCII name must be encoded, not quoted: \(renderedName)")
                } else {
                    XCTAssertEqual(Decode.encodedWords(renderedName), name)
                }
                let second = to[to.range(of: "<to@example.com>, ")!.upperBound...]
                XCTAssertTrue(second.hasSuffix(" <alice@example.com>"))
                XCTAssertEqual(Decode.encodedWords(String(second.dropLast(" <alice@example.com>".count))), "Ålice")
            }
        }
    }

    func testEncodedWordsSplitOnCharacterBoundaries() {
        // 4-octet characters: a word must never end inside one.
        let text = String(repeating: "😀", count: 40)
        for encoding in [EncodedWord.Encoding.b, .q] {
            let words = EncodedWord.encode(text, encoding: encoding)
            XCTAssertGreaterThan(words.count, 1)
            var joined = ""
            for word in words {
                XCTAssertLessThanOrEqual(word.count, 75)
                guard let decoded = Decode.word(word) else { return XCTFail("undecodable \(word)") }
                joined += decoded
            }
            XCTAssertEqual(joined, text)
        }
        XCTAssertEqual(EncodedWord.encoding(for: "Grüße"), .b, "the shorter one: 12 against 15 characters")
        XCTAssertEqual(EncodedWord.encoding(for: "Grüße an das ganze Team"), .q)
        XCTAssertEqual(EncodedWord.encoding(for: "日本語"), .b)
        XCTAssertEqual(EncodedWord.encode("Grüße aus Köln", encoding: .q), ["=?utf-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="])
    }

    func testQuotedDisplayNameAndPlainAtoms() throws {
        let cases: [(String, String)] = [
            ("Ops Team", "Ops Team <a@example.com>"),
            ("Doe, Jane", "\"Doe, Jane\" <a@example.com>"),
            ("John Q. Public", "\"John Q. Public\" <a@example.com>"),
            ("back\\slash \"q\"", "\"back\\\\slash \\\"q\\\"\" <a@example.com>"),
            ("  spaced  ", "\"  spaced  \" <a@example.com>"),
            ("", "a@example.com"),
        ]
        for (name, expected) in cases {
            let message = try Fixture.message(to: [Mailbox(displayName: name, address: Fixture.address("a@example.com"))])
            XCTAssertEqual(Rendered(try message.rendered()).header("To"), expected)
        }
    }

    func testLongAddressListsFoldBetweenMailboxes() throws {
        let to = (0..<30).map { Mailbox(Fixture.address("recipient\($0)@example.com")) }
        let rendered = Rendered(try Fixture.message(to: to).rendered())
        XCTAssertEqual(rendered.header("To"), to.map(\.address.address).joined(separator: ", "))
        XCTAssertGreaterThan(rendered.headerLines.filter { $0.hasPrefix(" ") }.count, 5)
        for line in rendered.headerLines { XCTAssertLessThanOrEqual(line.utf8.count, 78) }
    }

    func testLongASCIISubjectFoldsAtSpacesAndKeepsRunsOfSpaces() throws {
        let subject = (0..<40).map { "word\($0)" }.joined(separator: " ") + "  two  spaces"
        let rendered = Rendered(try Fixture.message(subject: subject).rendered())
        XCTAssertEqual(rendered.header("Subject"), subject)
        XCTAssertFalse(rendered.header("Subject")!.contains("=?"))
        for line in rendered.headerLines {
            XCTAssertLessThanOrEqual(line.utf8.count, 78)
            XCTAssertFalse(line.trimmingCharacters(in: .whitespaces).isEmpty, "no whitespace-only folded line")
        }
    }

    // MARK: 998

    func testAVeryLongUnbrokenWordNeverMakesALineOver998() throws {
        let word = String(repeating: "x", count: 5000)
        let wordé = String(repeating: "é", count: 3000)
        let message = try Fixture.message(
            subject: "Start \(word) end",
            text: "\(word)\n\(wordé)\nshort\n",
            to: [Mailbox(displayName: String(repeating: "N", count: 2000) + ", Sr.", address: Fixture.address("to@example.com"))],
            extraHeaders: [.init("X-Long", word)])
        let raw = try message.rendered()
        let rendered = Rendered(raw)
        XCTAssertTrue(rendered.hasOnlyCRLF)
        for line in rendered.lines { XCTAssertLessThanOrEqual(line.count, 998) }
        for line in rendered.headerLines { XCTAssertLessThanOrEqual(line.utf8.count, 78, line) }
        XCTAssertEqual(Decode.encodedWords(rendered.header("Subject")!), "Start \(word) end")
        XCTAssertEqual(Decode.encodedWords(rendered.header("X-Long")!), word)
        XCTAssertEqual(rendered.header("Content-Transfer-Encoding"), "quoted-printable")
        XCTAssertEqual(Decode.quotedPrintable(rendered.body), Array("\(word)\n\(wordé)\nshort\n".utf8))
    }

    // MARK: Quoted-printable

    func testQuotedPrintableVectors() {
        func qp(_ text: String) -> [String] {
            BodyEncoding.quotedPrintable(BodyEncoding.lines(of: text)).map { String(decoding: $0, as: UTF8.self) }
        }
        XCTAssertEqual(qp("a=b"), ["a=3Db"])
        XCTAssertEqual(qp("="), ["=3D"])
        XCTAssertEqual(qp("trailing  \nspace\tinside\t\n"), ["trailing =20", "space\tinside=09"])
        XCTAssertEqual(qp("Grüße"), ["Gr=C3=BC=C3=9Fe"])
        XCTAssertEqual(qp("."), ["."], "the transport dot-stuffs; the encoding leaves a lone dot alone")
        XCTAssertEqual(qp("a\r\nb\rc\nd"), ["a", "b", "c", "d"], "CRLF, CR and LF are all hard breaks")
        XCTAssertEqual(qp("a\n\nb\n"), ["a", "", "b"])
        XCTAssertEqual(qp("nul\0bell\u{7}"), ["nul=00bell=07"])

        let exact76 = String(repeating: "a", count: 76)
        XCTAssertEqual(qp(exact76), [exact76], "76 octets fit without a soft break")
        let long = String(repeating: "a", count: 77)
        XCTAssertEqual(qp(long), [String(repeating: "a", count: 75) + "=", "aa"])
        // An escape is never split by a soft break.
        let escapes = String(repeating: "a", count: 74) + "é"
        XCTAssertEqual(qp(escapes), [String(repeating: "a", count: 74) + "=", "=C3=A9"])
        // A space before a soft break stays literal (it is not at the end of the encoded line).
        let spaceAt75 = String(repeating: "a", count: 74) + " bc"
        XCTAssertEqual(qp(spaceAt75), [String(repeating: "a", count: 74) + " =", "bc"])

        for text in ["", "x", "=\n", "a \n", String(repeating: "é =", count: 100), "x\n.\n..\nFrom here\n \n"] {
            let encoded = qp(text)
            for line in encoded { XCTAssertLessThanOrEqual(line.utf8.count, 76); XCTAssertFalse(line.hasSuffix(" ")) }
            let decoded = Decode.quotedPrintable(encoded.joined(separator: "\r\n") + (encoded.isEmpty ? "" : "\r\n"))
            XCTAssertEqual(decoded, Array(text.utf8.filter { $0 != 0x0D }) + (text.isEmpty || text.hasSuffix("\n") ? [] : [0x0A]), text)
        }
    }

    func testBodyEncodingChoice() throws {
        func encoding(_ text: String) throws -> String? {
            Rendered(try Fixture.message(text: text).rendered()).header("Content-Transfer-Encoding")
        }
        XCTAssertEqual(try encoding("Plain ASCII.\nShort lines.\n.\n"), "7bit")
        XCTAssertEqual(try encoding(""), "7bit")
        XCTAssertEqual(try encoding("Grüße"), "quoted-printable")
        XCTAssertEqual(try encoding(String(repeating: "a", count: 79)), "quoted-printable")
        XCTAssertEqual(try encoding("trailing space \n"), "quoted-printable")
        XCTAssertEqual(try encoding("nul\0"), "quoted-printable")

        let rendered = Rendered(try Fixture.message(text: "line one\nline two\r\n.\n\nend").rendered())
        XCTAssertEqual(rendered.body, "line one\r\nline two\r\n.\r\n\r\nend\r\n")
        XCTAssertTrue(rendered.hasOnlyCRLF)
    }

    // MARK: Header injection

    func testHeaderInjectionIsRefusedNotStripped() throws {
        let evil = ["x\r\nBcc: victim@example.com", "x\nBcc: victim@example.com", "x\rBcc: v@example.com", "x\0y", "x\u{2028}y", "x\u{85}y"]
        for payload in evil {
            XCTAssertThrowsError(try Fixture.message(subject: payload).rendered(), payload.debugDescription) { error in
                XCTAssertTrue((error as? ValidationError)?.reason.hasPrefix("the subject contains") == true, "\(error)")
            }
            XCTAssertThrowsError(try Fixture.message(extraHeaders: [.init("X-Note", payload)]).rendered())
            XCTAssertThrowsError(try Fixture.message(extraHeaders: [.init(payload, "v")]).rendered())
            XCTAssertThrowsError(try EmailAddress("a\(payload)@example.com"))
            XCTAssertThrowsError(try Mailbox(displayName: payload, address: Fixture.address("a@example.com")))

            // A display name set after construction is checked again when rendering.
            var mailbox = Mailbox(Fixture.address("a@example.com"))
            mailbox.displayName = payload
            XCTAssertThrowsError(try Fixture.message(to: [mailbox]).rendered()) { error in
                XCTAssertTrue((error as? ValidationError)?.reason.contains("the display name contains") == true, "\(error)")
                XCTAssertTrue((error as? ValidationError)?.reason.contains("(in To: a@example.com)") == true, "\(error)")
            }
            var message = Fixture.message()
            message.messageID = "a@b\(payload)"
            XCTAssertThrowsError(try message.rendered())
        }
        XCTAssertThrowsError(try Fixture.message(subject: "x\r\nBcc: v@example.com").rendered()) { error in
            XCTAssertEqual(error as? ValidationError, ValidationError(.lineBreak, "the subject contains a line break"))
        }
    }

    func testExtraHeadersCannotReplaceTheBuildersHeaders() {
        for name in ["Bcc", "from", "CONTENT-TYPE", "Subject", "Message-ID"] {
            XCTAssertThrowsError(try Fixture.message(extraHeaders: [.init(name, "x")]).rendered()) { error in
                XCTAssertEqual((error as? ValidationError)?.code, .notAllowed)
            }
        }
        for name in ["", "Has Space", "Colon:", "Ü-Header", String(repeating: "X", count: 77)] {
            XCTAssertThrowsError(try Fixture.message(extraHeaders: [.init(name, "x")]).rendered(), name)
        }
    }

    func testNonASCIIExtraHeaderValueIsEncoded() throws {
        let rendered = Rendered(try Fixture.message(extraHeaders: [.init("X-Note", "Grüße")]).rendered())
        XCTAssertEqual(rendered.header("X-Note"), "=?utf-8?B?R3LDvMOfZQ==?=")
        XCTAssertEqual(Decode.encodedWords(rendered.header("X-Note")!), "Grüße")
    }
}
