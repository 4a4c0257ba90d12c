import CFuzzerDriver
import Foundation

/// The `main` of every harness: libFuzzer's driver when scripts/fuzz built the
/// program, else `replayMain`.
///
/// ```swift
/// @main enum Main { static func main() { fuzzMain(corpus: corpusDirectory(#filePath), fuzzOneInput) } }
/// ```
public func fuzzMain(corpus: String, _ testOneInput: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> Never {
    if CFuzzerDriver_isLinked() != 0 {
        exit(CFuzzerDriver_run(CommandLine.argc, CommandLine.unsafeArgv, testOneInput))
    }
    replayMain(corpus: corpus) { testOneInput($0, $1) }
    exit(0)
}

/// Shared by the fuzz harnesses (see Fuzz/README.md): the fuzzer-independent
/// replay entry point and the check that turns a broken invariant into a crash.
///
/// Built without libFuzzer (a plain `swift build`), each harness is an ordinary
/// program that runs its entry point once per file — the files and directories
/// named on the command line, or its committed corpus when none are — so the
/// corpus doubles as a regression test without libFuzzer:
///
public func replayMain(corpus: String, _ testOneInput: (UnsafePointer<UInt8>, Int) -> CInt) {
    let arguments = CommandLine.arguments.dropFirst().filter { !$0.hasPrefix("-") }
    var files: [String] = []
    for path in arguments.isEmpty ? [corpus] : Array(arguments) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            FileHandle.standardError.write(Data("\(path): no such file or directory\n".utf8))
            exit(2)
        }
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files += names.filter { !$0.hasPrefix(".") }.sorted().map { path + "/" + $0 }
        } else {
            files.append(path)
        }
    }
    for file in files {
        guard let data = FileManager.default.contents(atPath: file) else { continue }
        var bytes = [UInt8](data)
        bytes.append(0) // never an empty buffer, so the pointer below is valid
        _ = bytes.withUnsafeBufferPointer { testOneInput($0.baseAddress!, data.count) }
    }
    print("replayed \(files.count) inputs without a failure")
}

/// The corpus folder next to a harness source file (`#filePath`).
public func corpusDirectory(_ sourceFile: String) -> String {
    URL(fileURLWithPath: sourceFile).deletingLastPathComponent().appendingPathComponent("corpus").path
}

/// Crashes with `message` when an invariant does not hold, so libFuzzer keeps the input.
/// (`precondition` would do, but this prints the reason in every build configuration.)
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    if condition() { return }
    FileHandle.standardError.write(Data("fuzz invariant failed at \(file):\(line): \(message())\n".utf8))
    abort()
}

/// Splits fuzz input into fields at `separator` (0xFF: never valid in UTF-8, so it
/// cannot collide with text the fuzzer wants to put in a field).
public func fuzzFields(_ bytes: UnsafeBufferPointer<UInt8>, separator: UInt8 = 0xFF) -> [String] {
    bytes.split(separator: separator, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}
