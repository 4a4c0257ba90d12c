#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain CGI (RFC 3875) for shared hosting: the request is this process's
/// environment and stdin, the response goes to stdout, then the process exits.
enum CGIResponder {
    /// Answers the one request; returns the exit status (0 once a response was written).
    static func answerOneRequest(handler: (Request) -> Response, environment: [String: String]) -> Int32 {
        let wanted = Request.bodyBytesToRead(environment)
        var body: [UInt8] = []
        body.reserveCapacity(wanted)
        var chunk = [UInt8](repeating: 0, count: 8192)
        while body.count < wanted {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress!, min($0.count, wanted - body.count)) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            body.append(contentsOf: chunk[0..<n])
        }
        let response = handler(Request(cgiEnvironment: environment, body: body))
        let bytes = response.cgiBytes()
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress!, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return 1 }
            offset += n
        }
        return 0
    }
}
