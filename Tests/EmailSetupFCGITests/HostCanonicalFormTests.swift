@testable import EmailSetupFCGI
import Foundation
import Glibc
@testable import Smtp
import XCTest

/// Property: every host a save accepts is stored in the one form the SMTP client
/// connects to — the client's target is the stored text, an IP literal resolves
/// (numerically) to exactly that text, and a name is never read as a number — and
/// every host a save refuses, the client refuses with the same words.
final class HostCanonicalFormTests: XCTestCase {
    /// SplitMix64: a fixed seed gives the same inputs on every run.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
        mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    }

    static let fullWidthDigits = Array("０１２３４５６７８９")

    static func ipv4(_ g: inout Generator) -> String {
        let bytes = (0..<4).map { _ in g.chance(30) ? g.pick([0, 1, 127, 169, 254, 255]) : g.int(0...255) }
        let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        var text: String
        switch g.int(0...8) {
        case 0, 1, 2: text = bytes.map(String.init).joined(separator: ".")
        case 3: text = bytes.map { g.chance(50) ? "0" + String($0) : String($0) }.joined(separator: ".")
        case 4: text = bytes.map { "0x" + String($0, radix: 16) }.joined(separator: ".")
        case 5: text = String(value)
        case 6: text = "0x" + String(value, radix: 16, uppercase: g.chance(50))
        case 7: text = "\(bytes[0]).\(UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))"
        default: text = String(bytes.map(String.init).joined(separator: ".").map { $0.isNumber ? fullWidthDigits[Int(String($0))!] : $0 })
        }
        if g.chance(10) { text += "." }
        return text
    }

    static func ipv6(_ g: inout Generator) -> String {
        var groups = (0..<8).map { _ in g.chance(40) ? 0 : g.int(0...0xFFFF) }
        if g.chance(20) { groups = [0, 0, 0, 0, 0, 0xFFFF, g.int(0...0xFFFF), g.int(0...0xFFFF)] }
        if g.chance(15) { groups[0] = g.pick([0xFE80, 0xFEBF, 0xFEC0]) }
        var text = groups.map { String($0, radix: 16, uppercase: g.chance(30)) }.joined(separator: ":")
        if g.chance(40), let canonical = InternetAddress.canonicalIPv6(text) { text = canonical.uppercased() }
        if g.chance(10) { text += "%eth0" }
        if g.chance(30) { text = "[\(text)]" }
        return text
    }

    static func name(_ g: inout Generator) -> String {
        let ascii = Array("abcdefghijklmnopqrstuvwxyz0123456789-")
        let others: [Character] = ["ü", "é", "ß", "例", "ａ", "Ｍ", "Ä", "_", " ", "x"]
        var labels: [String] = []
        for _ in 0..<g.int(1...4) {
            var label = String((0..<g.int(1...12)).map { _ in g.pick(ascii) })
            if g.chance(25) { label.insert(g.pick(others), at: label.index(label.startIndex, offsetBy: g.int(0...label.count))) }
            if g.chance(20) { label = label.uppercased() }
            if g.chance(5) { label = "xn--" + label }
            labels.append(label)
        }
        var text = labels.joined(separator: g.chance(10) ? "。" : ".")
        if g.chance(15) { text += "." }
        return text
    }

    /// What getaddrinfo reads as a number (AI_NUMERICHOST, glibc's inet_aton_exact
    /// for IPv4 — the same parse that runs before a name is looked up), as text.
    static func numericAddress(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, "25", &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
        return String(cString: name)
    }

    func testEveryAcceptedHostIsConnectedToExactlyAsStored() throws {
        var g = Generator(state: 20_261_202)
        var validator = SettingsValidator()
        validator.deniedNetworks = try IPNetwork.list(IPNetwork.defaultDeniedText)
        var accepted = 0, refused = 0, literals = 0
        for round in 0..<3000 {
            let typed: String
            switch round % 3 {
            case 0: typed = Self.ipv4(&g)
            case 1: typed = Self.ipv6(&g)
            default: typed = Self.name(&g)
            }
            let result = validator.validate([("from_address", "app@example.com"), ("smtp_host", .string(typed))], stored: [:])
            // A form trims the spaces around what was typed (every field), then checks that.
            let checked = typed.trimmingCharacters(in: .whitespaces)
            switch result {
            case .success(let saved):
                accepted += 1
                let stored = try XCTUnwrap(saved.values["smtp_host"])
                // The session the API would run with these values, and where it goes.
                let settings = try SmtpSettingsMapper.smtpSettings(from: saved.values, deniedNetworks: validator.deniedNetworks) { "" }
                XCTAssertEqual(settings.host, stored, typed)
                let target = try ConnectTarget.host(settings.host)
                XCTAssertEqual(target.ascii, stored, "the client would connect to another form than the one saved (typed \(typed.debugDescription))")
                XCTAssertEqual(try ConnectTarget.host(checked).ascii, stored, "the same text typed on the command line goes elsewhere: \(typed.debugDescription)")
                // What people are shown maps back to the same host.
                let shown = APIHandler.publicView(SettingsSnapshot(values: saved.values, version: 1), lastKnownGood: nil)
                guard case .string(let unicode)? = shown.first(where: { $0.0 == "smtp_host_unicode" })?.1 else { return XCTFail("no smtp_host_unicode") }
                XCTAssertEqual(try HostName(unicode).ascii, stored, "smtp_host_unicode \(unicode) names another host")
                if target.kind == .domainName {
                    XCTAssertNil(Self.numericAddress(stored), "the name \(stored) would be read as an address (typed \(typed.debugDescription))")
                } else {
                    literals += 1
                    XCTAssertEqual(Self.numericAddress(stored), stored, typed)
                    let resolved = try SocketStream.resolve(host: stored, port: 25, deadline: .after(seconds: 1)).map(\.text)
                    XCTAssertEqual(resolved, [stored], "a literal resolves to exactly what was saved (typed \(typed.debugDescription))")
                    XCTAssertEqual(ConnectTarget.screen(resolved, host: target, denied: validator.deniedNetworks).allowed, [0],
                                   "saved, then refused at connect: \(stored)")
                }
            case .failure(let error):
                refused += 1
                let sentence = try XCTUnwrap(error.errors.first { $0.0 == "smtp_host" }?.1, "\(typed.debugDescription): \(error.errors)")
                // The save says it as a sentence that names the field; the words inside are the client's.
                XCTAssertTrue(sentence.hasSuffix("."), sentence)
                var message = String(sentence.dropLast())
                if message.hasPrefix("SMTP server ") { message = String(message.dropFirst("SMTP server ".count)) }
                // The client, given the same host, refuses it with the same words.
                do {
                    let target = try ConnectTarget.host(checked)
                    let resolved = try SocketStream.resolve(host: target.ascii, port: 25, deadline: .after(seconds: 1)).map(\.text)
                    let refusals = ConnectTarget.screen(resolved, host: target, denied: validator.deniedNetworks).refusals
                    XCTAssertEqual(refusals, [message], "refused at save only: \(typed.debugDescription)")
                } catch let smtp as SmtpError {
                    XCTAssertEqual(smtp.kind, .invalidInput)
                    XCTAssertTrue(smtp.hint.hasSuffix(message), "\(typed.debugDescription): save says “\(message)”, client says “\(smtp.hint)”")
                }
            }
        }
        // The generator must exercise both sides, and literals among the accepted.
        XCTAssertGreaterThan(accepted, 600)
        XCTAssertGreaterThan(refused, 600)
        XCTAssertGreaterThan(literals, 300)
    }
}
