import Foundation
import TestSupport
import XCTest

/// `emailsetup rotate-kek` against the suite's database and running responder
/// (issue 17): the keys are re-wrapped, the new file installed where the KEK was read,
/// a host with the old file is refused with one line, and the responder keeps
/// answering without a restart. The suite's KEK is put back at the end.
final class SharedKEKEndToEndTests: XCTestCase {
    var env: EndToEndEnvironment!

    override func setUpWithError() throws {
        env = try EndToEndEnvironment.require()
    }

    var config: String { env.stateDirectory + "/emailsetup.conf" }
    var suiteKEK: String { env.stateDirectory + "/keys/kek" }

    func publicKeyByCGI(kek: String) throws -> String {
        try ScriptRunner.runWithStatus(env.binary, [], environment: [
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/api/setup/email_public_key", "REMOTE_USER": "admin",
            "GATEWAY_INTERFACE": "CGI/1.1", "EMAILSETUP_CONFIG": config, "EMAILSETUP_KEK_FILE": kek,
        ]).output
    }

    func testRotateKEKRewrapsInstallsAndRefusesTheOldFile() throws {
        let temporary = try TemporaryDirectory(prefix: "es-kek")
        let hostKEK = temporary.path + "/kek"
        try FileManager.default.copyItem(atPath: suiteKEK, toPath: hostKEK)
        let newKEK = temporary.path + "/kek.new"
        _ = try ScriptRunner.run("/bin/sh", ["-c", "umask 077; openssl rand -hex 32 > '\(newKEK)'"])
        let env = ["EMAILSETUP_KEK_FILE": hostKEK]

        let rotated = try ScriptRunner.runWithStatus(self.env.binary, ["rotate-kek", "--config", config, "--new-kek-file", newKEK], environment: env)
        defer {
            // Put the suite's KEK back for every later test (wrapped rows and file alike).
            let back = try? ScriptRunner.runWithStatus(self.env.binary, ["rotate-kek", "--config", config, "--new-kek-file", suiteKEK], environment: env)
            XCTAssertEqual(back?.status, 0, back?.output ?? "")
        }
        XCTAssertEqual(rotated.status, 0, rotated.output)
        XCTAssertTrue(rotated.output.contains("re-wrapped") && rotated.output.contains("copy that file"), rotated.output)
        XCTAssertEqual(try String(contentsOfFile: hostKEK, encoding: .utf8), try String(contentsOfFile: newKEK, encoding: .utf8))
        XCTAssertFalse(rotated.output.contains(try String(contentsOfFile: newKEK, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)),
                       "the KEK is never printed")

        // A host still holding the old file: one line naming it; with the new one: served.
        let stale = try publicKeyByCGI(kek: suiteKEK)
        XCTAssertFalse(stale.contains("Status: 200 OK"), stale)
        XCTAssertTrue(stale.contains("same KEK file"), stale)
        XCTAssertTrue(try publicKeyByCGI(kek: hostKEK).contains("Status: 200 OK"))
        // The FastCGI responder, not restarted, keeps the keys it already unwrapped.
        let served = try self.env.admin.request("GET", "/api/setup/email_public_key")
        XCTAssertEqual(served.status, 200, served.text)
        // Running it again with the same file (an interrupted run) is safe.
        let again = try ScriptRunner.runWithStatus(self.env.binary, ["rotate-kek", "--config", config, "--new-kek-file", newKEK], environment: env)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("re-wrapped 0 key(s)"), again.output)
    }
}
