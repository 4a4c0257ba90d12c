import Foundation
import TestSupport
import XCTest

/// The helper that runs programs for the end-to-end tests must survive the programs.
final class ScriptRunnerTests: XCTestCase {
    /// A program that exits without reading its input (as cgi-fcgi does when the
    /// responder is not listening yet) closed the pipe under the input write, and the
    /// SIGPIPE killed the whole test process. 1 MiB is more than a pipe holds, so the
    /// write always outlives the program here.
    func testAProgramThatExitsWithoutReadingItsInputDoesNotKillTheTests() throws {
        let input = [UInt8](repeating: 0x61, count: 1 << 20)
        let result = try ScriptRunner.runWithStatus("/bin/sh", ["-c", "echo gone; exit 3"], input: input, timeout: 10)
        XCTAssertEqual(result.status, 3)
        XCTAssertEqual(result.output, "gone\n")
    }

    /// Input larger than a pipe's buffer still reaches a program that reads it all.
    func testInputLargerThanAPipeArrivesWhole() throws {
        let input = [UInt8](repeating: 0x61, count: 1 << 20)
        let result = try ScriptRunner.runWithStatus("/usr/bin/wc", ["-c"], input: input, timeout: 10)
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), String(1 << 20))
    }
}
