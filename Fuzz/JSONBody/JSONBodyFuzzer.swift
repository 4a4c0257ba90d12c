// Fuzzes JSON body decoding and settings validation: the input is the body of
// POST /api/setup/email_smtp, answered by the real APIHandler over an in-memory
// repository holding valid settings. Checks: the parser and serializer agree,
// the answer is well formed (FuzzSupport.checkWellFormed), and whatever is saved
// is one-line and usable by the SMTP client (FuzzSupport.checkSaved).
#if DEBUG
@testable import EmailSetupFCGI
@testable import FuzzSupport
import Foundation
import Synchronization

/// libFuzzer calls in from one thread; the Mutex is what makes the global Sendable.
private let responder = Mutex(FuzzResponder())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))

    // The parser accepts what the serializer writes, and reads back the same value.
    if let value = try? JSONValue.parse(body) {
        let text = value.serialized()
        guard let again = try? JSONValue.parse(text, maxDepth: 64) else {
            fuzzCheck(false, "serialized JSON does not parse: \(String(decoding: text.prefix(300), as: UTF8.self))")
            return 0
        }
        fuzzCheck(again == value, "JSON changes in a round trip: \(String(decoding: text.prefix(300), as: UTF8.self))")
        // The validator alone, against empty storage (the handler below runs it against full storage).
        if let members = value["data"]?.objectMembers {
            _ = SettingsValidator().validate(members, stored: [:])
        }
    }

    let request = Request(method: "POST", path: "/api/setup/email_smtp",
                          headers: ["x-requested-with": "EmailSetup", "host": "127.0.0.1:8080", "content-type": "application/json"],
                          body: body, remoteUser: "admin", remoteAddress: "127.0.0.1")
    let response = responder.withLock { $0.answer(request) }
    fuzzCheck([200, 400, 413].contains(response.status), "POST email_smtp answered \(response.status)")
    return 0
}

@main enum Main { static func main() { fuzzMain(corpus: corpusDirectory(#filePath), fuzzOneInput) } }
#else
@main enum Main { static func main() { print("fuzz harnesses need a debug build (swift build -c debug)") } }
#endif
