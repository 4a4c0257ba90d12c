// Fuzzes the FastCGI request adapter: the input is the params libfcgi hands over
// ("NAME=VALUE" entries, each ended by NUL; an empty entry ends them) followed by
// the request body. They become a Request exactly as FastCGIServer.readRequest
// builds one (Request.environment(fastCGIParams:), then the body cut where the
// server stops reading) and the real APIHandler answers it over an in-memory
// repository, a fake vault and an SMTP stub that never touches the network.
// Checks: the answer is always a well-formed JSON response with a valid status.
#if DEBUG
@testable import EmailSetupFCGI
@testable import FuzzSupport
import Foundation
import Synchronization

/// With an allow-list, so REMOTE_USER decides between 401, 403 and an answer.
/// libFuzzer calls in from one thread; the Mutex is what makes the global Sendable.
private let responder = Mutex(FuzzResponder(policy: AccessPolicy(mode: .remoteUser, admins: ["admin", "ops"])))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    var params: [String] = []
    var index = 0
    while index < input.count {
        let end = input[index...].firstIndex(of: 0) ?? input.count
        if end == index { index += 1; break } // the empty entry: body follows
        params.append(String(decoding: input[index..<end], as: UTF8.self))
        index = end + 1
    }
    let env = Request.environment(fastCGIParams: params)
    let available = Array(input[min(index, input.count)...])
    let body = Array(available.prefix(Request.bodyBytesToRead(env)))
    let request = Request(cgiEnvironment: env, body: body)

    fuzzCheck(!request.path.contains("?"), "query left in the path: \(request.path.debugDescription)")
    fuzzCheck(request.headers.keys.allSatisfy { $0 == $0.lowercased() }, "header names not lower-case")
    _ = responder.withLock { $0.answer(request) }
    return 0
}

@main enum Main { static func main() { fuzzMain(corpus: corpusDirectory(#filePath), fuzzOneInput) } }
#else
@main enum Main { static func main() { print("fuzz harnesses need a debug build (swift build -c debug)") } }
#endif
