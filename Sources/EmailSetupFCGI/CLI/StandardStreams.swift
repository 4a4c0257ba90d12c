#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole writes to stdout and stderr with write(2), for the command line and start-up
/// failures (FileHandle is full Foundation: docs/DECISIONS.md, "CGI start-up").
enum StandardStreams {
    /// Writes `text` to stderr.
    static func error(_ text: String) { write(Array(text.utf8), to: 2) }

    /// Writes `text` to stdout.
    static func output(_ text: String) { write(Array(text.utf8), to: 1) }

    /// Writes `bytes` to stdout.
    static func output(_ bytes: [UInt8]) { write(bytes, to: 1) }

    private static func write(_ bytes: [UInt8], to fd: Int32) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

/// write(2), named apart from `StandardStreams.write`.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, buffer, count)
    #elseif canImport(Musl)
    Musl.write(fd, buffer, count)
    #else
    Darwin.write(fd, buffer, count)
    #endif
}
