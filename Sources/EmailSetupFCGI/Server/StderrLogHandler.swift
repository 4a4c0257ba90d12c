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
import Logging
import Synchronization

/// Structured logs: one JSON object per line on stderr (stdout is the FastCGI/CGI
/// response and must never carry logs). Fields: `ts`, `level`, `msg`, then metadata.
struct StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let lock = Mutex(())

    func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        var members: [(String, JSONValue)] = [
            ("ts", .string(Self.timestamp())), ("level", .string(level.rawValue)), ("msg", .string(message.description)),
        ]
        // Merging builds a new dictionary; the request log line has no handler metadata.
        let merged = metadata.isEmpty ? (explicit ?? [:]) : metadata.merging(explicit ?? [:]) { $1 }
        for key in merged.keys.sorted() { members.append((key, .string("\(merged[key]!)"))) }
        let line = JSONValue.object(members).serialized() + [0x0A]
        Self.lock.withLock { _ in
            line.withUnsafeBufferPointer { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                    if n < 0, errno == EINTR { continue }
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
    }

    private static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        // Built by hand: String(format:) goes through CoreFoundation and showed in profiles.
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-" + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(Int(tv.tv_usec / 1000), 3) + "Z"
    }
}
