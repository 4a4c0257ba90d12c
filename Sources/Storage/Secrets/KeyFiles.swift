// File-system primitives for key files: strict permission checks on the open file
// (not on a path that could change in between), and crash-safe, race-safe creation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Key files on disk. Every function throws `StorageError` with code `.keyFile`
/// and one line naming the file.
enum KeyFiles {
    /// Key files and the key directory must grant nothing to group or others.
    static let forbiddenBits: mode_t = 0o077
    /// Key files are small; anything larger is not one of ours.
    static let maximumSize = 64 * 1024

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// Makes `path` (only its last component) with mode 0700 if missing, then checks
    /// that it is a directory that grants nothing to group or others.
    static func prepareDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            let e = errno
            throw StorageError(.keyFile, "key directory \(path) cannot be created: \(errnoText(e))")
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StorageError(.keyFile, "key directory \(path) cannot be examined: \(errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw StorageError(.keyFile, "key directory \(path) is not a directory")
        }
        guard info.st_mode & forbiddenBits == 0 else {
            throw StorageError(.keyFile, "key directory \(path) has mode \(octal(info.st_mode)); it must grant nothing to group or others (chmod 700 \(path))")
        }
    }

    /// Reads a whole key file, or returns nil when it does not exist. Refuses a file
    /// that is a symbolic link, not a regular file, too large, or whose mode grants
    /// anything to group or others — checked with `fstat` on the opened descriptor.
    static func readFile(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return nil }
            if e == ELOOP { throw StorageError(.keyFile, "key file \(path) is a symbolic link; key files must be regular files") }
            throw StorageError(.keyFile, "key file \(path) cannot be opened: \(errnoText(e))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw StorageError(.keyFile, "key file \(path) cannot be examined: \(errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw StorageError(.keyFile, "key file \(path) is not a regular file")
        }
        guard info.st_mode & forbiddenBits == 0 else {
            throw StorageError(.keyFile, "key file \(path) has mode \(octal(info.st_mode)); it must not be readable or writable by group or others (chmod 600 \(path))")
        }
        guard Int(info.st_size) <= maximumSize else {
            throw StorageError(.keyFile, "key file \(path) is \(info.st_size) bytes, too large for a key file")
        }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                cleanse(&contents)
                throw StorageError(.keyFile, "key file \(path) cannot be read: \(errnoText(e))")
            }
            if n == 0 { break }
            contents.append(contentsOf: buffer[..<n])
            guard contents.count <= maximumSize else {
                cleanse(&contents)
                throw StorageError(.keyFile, "key file \(path) grew past \(maximumSize) bytes while being read")
            }
        }
        cleanse(&buffer)
        return contents
    }

    /// Creates `directory/name` with `contents` and mode 0600 unless it already
    /// exists: writes a temporary file (O_CREAT|O_EXCL, 0600), fsyncs it, then
    /// hard-links it to the final name — `link` fails with EEXIST instead of replacing,
    /// so of two processes racing, exactly one wins and the other learns it lost.
    /// Returns false when the file already existed (the caller re-reads it).
    static func createExclusively(directory: String, name: String, contents: [UInt8]) throws -> Bool {
        let target = directory + "/" + name
        let temporary = try writeTemporary(directory: directory, for: target, contents: contents)
        defer { unlink(temporary) }
        if link(temporary, target) != 0 {
            let e = errno
            if e == EEXIST { return false }
            throw StorageError(.keyFile, "key file \(target) cannot be created: \(errnoText(e))")
        }
        try syncDirectory(directory)
        return true
    }

    /// Replaces `directory/name` atomically (temporary file, fsync, rename): a reader
    /// sees the old or the new contents, never a mix, even after a crash.
    static func replace(directory: String, name: String, contents: [UInt8]) throws {
        let target = directory + "/" + name
        let temporary = try writeTemporary(directory: directory, for: target, contents: contents)
        if rename(temporary, target) != 0 {
            let e = errno
            unlink(temporary)
            throw StorageError(.keyFile, "key file \(target) cannot be replaced: \(errnoText(e))")
        }
        try syncDirectory(directory)
    }

    /// Deletes a key file (missing is fine) and makes the deletion durable.
    static func remove(directory: String, name: String) throws {
        let target = directory + "/" + name
        if unlink(target) != 0 && errno != ENOENT {
            throw StorageError(.keyFile, "key file \(target) cannot be deleted: \(errnoText())")
        }
        try syncDirectory(directory)
    }

    /// The names in a directory, without "." and "..".
    static func names(in directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            throw StorageError(.keyFile, "key directory \(directory) cannot be listed: \(errnoText())")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func writeTemporary(directory: String, for target: String, contents: [UInt8]) throws -> String {
        let suffix = try secureRandomBytes(8).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let temporary = directory + "/.tmp-" + suffix
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StorageError(.keyFile, "key file \(target) cannot be written (temporary file \(temporary)): \(errnoText())")
        }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temporary) }
        }
        // The umask can only remove bits from 0600, but be explicit.
        guard fchmod(fd, 0o600) == 0 else {
            throw StorageError(.keyFile, "key file \(target) cannot be set to mode 0600: \(errnoText())")
        }
        var offset = 0
        while offset < contents.count {
            let n = contents.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError(.keyFile, "key file \(target) cannot be written: \(errnoText())")
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            throw StorageError(.keyFile, "key file \(target) cannot be flushed to disk: \(errnoText())")
        }
        ok = true
        return temporary
    }

    private static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StorageError(.keyFile, "key directory \(directory) cannot be opened to flush it: \(errnoText())")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw StorageError(.keyFile, "key directory \(directory) cannot be flushed to disk: \(errnoText())")
        }
    }
}

/// `read(2)`, named apart from `KeyFiles.readFile` and portable across C libraries.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// Lowercase hex of some bytes.
func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
}

/// Bytes from lowercase or uppercase hex, or nil.
func bytesFromHex(_ text: Substring) -> [UInt8]? {
    guard text.count % 2 == 0, text.allSatisfy(\.isHexDigit) else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.count / 2)
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}
