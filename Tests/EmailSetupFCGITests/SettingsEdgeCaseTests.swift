@testable import EmailSetupFCGI
import Foundation
import Storage
import XCTest

/// Tests/Fixtures/settings/edge-cases.json through the validator a save and
/// `POST …/email_smtp/validate` use: for every case, exactly the fields named have
/// errors, warnings and fixes. The browser tests run the same file through the page.
final class SettingsEdgeCaseTests: XCTestCase {
    struct Case {
        var name: String
        var data: [(String, JSONValue)]
        var errors: Set<String>
        var warnings: Set<String>
        var fixes: Set<String>
    }

    static func cases() throws -> [Case] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/settings/edge-cases.json")
        let json = try JSONValue.parse(Array(try Data(contentsOf: url)))
        guard case .array(let list) = json else { throw XCTSkip("edge-cases.json is not a list") }
        func names(_ value: JSONValue?) -> Set<String> {
            guard case .array(let items)? = value else { return [] }
            return Set(items.compactMap(\.stringValue))
        }
        return list.map { item in
            Case(name: item["name"]?.stringValue ?? "?", data: item["data"]?.objectMembers ?? [],
                 errors: names(item["errors"]), warnings: names(item["warnings"]), fixes: names(item["fixes"]))
        }
    }

    func testEveryCaseAnswersExactlyTheFieldsItNames() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        XCTAssertEqual(Set(cases.map(\.name)).count, cases.count, "case names are unique")
        let validator = SettingsValidator()
        for c in cases {
            let result = validator.check(c.data, stored: [:])
            XCTAssertEqual(Set(result.errors.map(\.0)), c.errors, "\(c.name): errors \(result.errors)")
            XCTAssertEqual(Set(result.warnings.map(\.0)), c.warnings, "\(c.name): warnings \(result.warnings)")
            XCTAssertEqual(Set(result.fixes.map(\.0)), c.fixes, "\(c.name): fixes \(result.fixes.map { ($0.0, $0.1.set) })")
            XCTAssertEqual(result.isValid, c.errors.isEmpty, c.name)
            // A save of the same body refuses with the same messages.
            switch validator.validate(c.data, stored: [:]) {
            case .success: XCTAssertTrue(c.errors.isEmpty, "\(c.name): saved")
            case .failure(let refusal): XCTAssertEqual(refusal.errors.map(\.1), result.errors.map(\.1), c.name)
            }
            for (field, message) in result.errors + result.warnings {
                XCTAssertTrue(message.hasSuffix("."), "\(c.name): \(field): not a sentence: \(message)")
                XCTAssertFalse(message.contains("smtp_authentication_type") || message.contains("smtp_tls_verify"),
                               "\(c.name): \(field): names a key, not a label: \(message)")
            }
            // Applying a fix repairs the field it is on.
            for (field, fix) in result.fixes {
                let fixed = c.data.filter { key, _ in !fix.set.contains { $0.0 == key } } + fix.set.map { ($0.0, JSONValue.string($0.1)) }
                let after = validator.check(fixed, stored: [:])
                XCTAssertFalse(after.errors.contains { $0.0 == field }, "\(c.name): the fix \(fix.set) leaves \(after.errors)")
            }
        }
    }
}
