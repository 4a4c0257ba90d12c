import Foundation
import XCTest
@testable import Smtp

/// Parses rendered messages back with CPython's `email` package, an independent
/// implementation of RFC 5322, 2045 and 2047, and checks it finds what was put in.
final class MessagePythonRoundTripTests: XCTestCase {
    static let python = "/usr/bin/python3"

    static let script = #"""
import sys, json, email
from email import policy
from email.parser import BytesParser
out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        data = f.read()
    if data.isascii():
        msg = BytesParser(policy=policy.default).parsebytes(data)
    else:
        # RFC 6532 headers: BytesParser would keep non-ASCII octets as surrogates.
        msg = email.message_from_string(data.decode('utf-8'), policy=policy.default)
    def boxes(name):
        h = msg[name]
        if h is None:
            return []
        return [[a.display_name, a.addr_spec] for a in h.addresses]
    defects = [str(d) for d in msg.defects]
    for name in msg.keys():
        defects += ['%s: %s' % (name, d) for d in msg[name].defects]
    out.append({
        'subject': str(msg['subject']),
        'from': boxes('from'), 'to': boxes('to'), 'cc': boxes('cc'), 'bcc': boxes('bcc'),
        'body': msg.get_content().replace('\r\n', '\n'),
        'date': msg['date'].datetime.timestamp(),
        'message_id': str(msg['message-id']),
        'cte': str(msg['content-transfer-encoding']),
        'charset': msg.get_content_charset(),
        'defects': defects,
    })
print(json.dumps(out))
"""#

    struct Parsed: Decodable {
        let subject: String
        let from: [[String]]
        let to: [[String]]
        let cc: [[String]]
        let bcc: [[String]]
        let body: String
        let date: Double
        let message_id: String
        let cte: String
        let charset: String?
        let defects: [String]
    }

    func parseWithPython(_ messages: [[UInt8]]) throws -> [Parsed] {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.python), "\(Self.python) is missing: the CPython cross-check did not run")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("message-roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (index, bytes) in messages.enumerated() {
            let url = directory.appendingPathComponent("\(index).eml")
            try Data(bytes).write(to: url)
            paths.append(url.path)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = ["-c", Self.script] + paths
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, String(decoding: errors, as: UTF8.self))
        do {
            return try JSONDecoder().decode([Parsed].self, from: output)
        } catch {
            XCTFail("python printed: \(String(decoding: output, as: UTF8.self)) \(String(decoding: errors, as: UTF8.self))")
            throw error
        }
    }

    func testPythonReadsBackWhatWasRendered() throws {
        let longWord = String(repeating: "w", count: 3000)
        let cases: [Message] = [
            Fixture.message(),
            try Message(
                from: Mailbox(displayName: "Jörg Müller", address: Fixture.address("jm@bücher.example")),
                to: [Mailbox(displayName: "Doe, Jane", address: Fixture.address("jane@example.com")),
                     Mailbox(displayName: "山田 太郎", address: Fixture.address("taro@example.jp")),
                     Mailbox(Fixture.address("plain@example.org"))],
                cc: (0..<12).map { Mailbox(try Fixture.address("cc\($0)@example.net")) },
                bcc: [Mailbox(Fixture.address("hidden@example.com"))],
                subject: "Grüße — ein Test mit Umlauten, Emoji 👩‍👩‍👧‍👦 und einem sehr langen Betreff, der gefaltet werden muss",
                text: "Hallo,\n\ndies ist ein Test = mit Gleichheitszeichen.\nTrailing space \n.\nFrom here\n\(String(repeating: "ä", count: 200))\n",
                date: Fixture.date, timeZone: Fixture.berlin, messageID: "id.1@xn--bcher-kva.example"),
            Fixture.message(subject: "Long \(longWord) subject", text: "Body \(longWord) end"),
            Fixture.message(subject: (0..<30).map { "word\($0)" }.joined(separator: " "), text: "CRLF\r\nlines\rand CR\n"),
            try Fixture.message(
                subject: "=?utf-8?Q?not_an_encoded_word?=",
                to: [Mailbox(displayName: "Quote \"me\" \\ please", address: Fixture.address("\"odd local\"@[192.0.2.1]"))]),
            Fixture.message(to: [Mailbox(Fixture.address("jörg@example.com"))]),
        ]
        let parsed = try parseWithPython(cases.map { try $0.rendered() })
        XCTAssertEqual(parsed.count, cases.count)
        for (message, result) in zip(cases, parsed) {
            // Python flags every non-ASCII local part, though RFC 6532 allows it.
            let defects = result.defects.filter { !(message.requiresSMTPUTF8 && $0.contains("local-part contains non-ASCII")) }
            XCTAssertEqual(defects, [], message.subject)
            XCTAssertEqual(result.subject, message.subject)
            XCTAssertEqual(result.from.map { $0[1] }, [message.from.address.address])
            XCTAssertEqual(result.from.map { $0[0] }, [message.from.displayName ?? ""])
            XCTAssertEqual(result.to.map { $0[1] }, message.to.map(\.address.address))
            XCTAssertEqual(result.to.map { $0[0] }, message.to.map { $0.displayName ?? "" })
            XCTAssertEqual(result.cc.map { $0[1] }, message.cc.map(\.address.address))
            XCTAssertEqual(result.bcc.count, 0)
            XCTAssertEqual(result.date, message.date.timeIntervalSince1970)
            XCTAssertEqual(result.message_id, "<\(message.messageID)>")
            XCTAssertEqual(result.charset, "utf-8")
            // Python gives the body with LF line ends, and a final one.
            var expectedBody = message.text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            if !expectedBody.isEmpty && !expectedBody.hasSuffix("\n") { expectedBody += "\n" }
            XCTAssertEqual(result.body, expectedBody)
        }
        XCTAssertEqual(parsed[0].cte, "7bit")
        XCTAssertEqual(parsed[1].cte, "quoted-printable")
    }
}
