import Foundation
import TestSupport
import XCTest

/// Shared steps of the end-to-end tests that prove settings against the SMTP
/// fixtures: save a complete set of settings through nginx, then ask for a test
/// email or a check and read the diagnosis.
extension EndToEndEnvironment {
    static let settingsPath = "/api/setup/email_smtp"

    /// Every writable field, so a save never inherits a value from an earlier test.
    /// Short timeouts: hostile cases end in seconds.
    static let baselineSettings: [String: String] = [
        "from_address": "app@example.com", "smtp_username": "", "smtp_host": "127.0.0.1", "smtp_port": "25",
        "smtp_connection_type": "None", "smtp_authentication_type": "None", "smtp_tls_verify": "Full",
        "smtp_tls_pin_sha256": "", "smtp_tls_ca_pem": "", "smtp_connect_timeout": "2", "smtp_command_timeout": "3",
    ]

    /// Saves the baseline overridden by `fields`; `password` nil clears the stored one.
    /// Fails the test unless the answer is 200; returns it (warnings, version).
    @discardableResult
    func saveSettings(_ fields: [String: String], password: String? = nil,
                      file: StaticString = #filePath, line: UInt = #line) throws -> HTTPTestClient.Response {
        var data = Self.baselineSettings.merging(fields) { $1 }
        data["smtp_password"] = try password.map { try admin.encryptedPassword($0) } ?? ""
        let body = try JSONSerialization.data(withJSONObject: ["data": data], options: [.sortedKeys])
        let r = try admin.post(Self.settingsPath, json: String(decoding: body, as: UTF8.self))
        XCTAssertEqual(r.status, 200, r.text, file: file, line: line)
        return r
    }

    /// The version the last save produced (from its answer).
    func version(of saved: HTTPTestClient.Response) throws -> Int {
        try XCTUnwrap(Int(saved.data?["smtp_settings_version"] as? String ?? ""), saved.text)
    }

    /// POST email_test/{address}.
    func sendTestEmail(to address: String = "ops@example.com") throws -> HTTPTestClient.Response {
        try admin.post("/api/setup/email_test/" + (address.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? address), json: "")
    }

    /// POST email_check.
    func checkConnection() throws -> HTTPTestClient.Response {
        try admin.post("/api/setup/email_check", json: "")
    }
}

/// The `diagnosis` object of a failed test or check.
struct SmtpDiagnosis {
    var response: HTTPTestClient.Response
    var object: [String: Any]

    init(_ response: HTTPTestClient.Response, file: StaticString = #filePath, line: UInt = #line) throws {
        self.response = response
        object = try XCTUnwrap(response.json?["diagnosis"] as? [String: Any], "no diagnosis in \(response.status) \(response.text)", file: file, line: line)
    }

    var stage: String? { object["stage"] as? String }
    var kind: String? { object["kind"] as? String }
    var hint: String { object["hint"] as? String ?? "" }
    var code: Int? { object["code"] as? Int }
    var enhancedCode: String? { object["enhanced_code"] as? String }
    var certificate: [String: Any]? { object["certificate"] as? [String: Any] }
    var transcript: [String] { object["transcript"] as? [String] ?? [] }

    /// Status, stage and kind; the hint contains every one of `hintContains`
    /// (case-insensitive); the top-level error repeats the hint; a transcript exists.
    func expect(status: Int, stage: String, kind: String, hintContains: [String],
                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(self.stage, stage, response.text, file: file, line: line)
        XCTAssertEqual(self.kind, kind, response.text, file: file, line: line)
        for fact in hintContains {
            XCTAssertTrue(hint.lowercased().contains(fact.lowercased()), "hint \"\(hint)\" does not mention \"\(fact)\"", file: file, line: line)
        }
        XCTAssertFalse(hint.contains("\n"), "hint is more than one line: \(hint)", file: file, line: line)
        XCTAssertEqual(response.errors?["smtp"], hint, file: file, line: line)
        XCTAssertFalse(transcript.isEmpty, "no transcript: \(response.text)", file: file, line: line)
    }
}

/// SHA-256 fingerprint of a PEM certificate, 64 lower-case hex digits (as the API reports it).
func certificateFingerprint(_ pemPath: String) throws -> String {
    let out = try ScriptRunner.run("/usr/bin/openssl", ["x509", "-in", pemPath, "-noout", "-fingerprint", "-sha256"])
    guard let eq = out.firstIndex(of: "=") else { throw EndToEndFailure("no fingerprint in \(out)") }
    return out[out.index(after: eq)...].trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ":", with: "").lowercased()
}

/// Starts `make` on a well-known port (465, 587), retrying for a while when another
/// run on this machine holds it: the port-specific hints need the real numbers.
func onWellKnownPort<T>(_ port: Int, _ make: (Int) throws -> T) throws -> T {
    let end = Date().addingTimeInterval(30)
    while true {
        do { return try make(port) } catch {
            if Date() > end { throw EndToEndFailure("could not start a fixture on 127.0.0.1:\(port) within 30 s (in use?): \(error)") }
            usleep(500_000)
        }
    }
}

struct EndToEndFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
