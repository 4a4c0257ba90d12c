@testable import EmailSetupFCGI
import XCTest

final class JSONValueTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONValue.parse(Array(s.utf8)) }

    func testRoundTrip() throws {
        let text = #"{"a":"x\"y\\z","b":[1,2.5,true,false,null],"c":{"d":"é😀"}}"#
        let v = try parse(text)
        XCTAssertEqual(try JSONValue.parse(v.serialized()), v)
        XCTAssertEqual(v["c"]?["d"]?.stringValue, "é😀")
    }

    func testEscapesAndSurrogates() throws {
        XCTAssertEqual(try parse(#""\u00e9\ud83d\ude00\n""#), .string("é😀\n"))
        XCTAssertThrowsError(try parse(#""\ud83d""#))
        XCTAssertThrowsError(try parse(#""\ude00x""#))
    }

    func testRefusals() {
        for bad in ["", " ", "{", "{\"a\"}", "{\"a\":1,}", "[1,]", "01", "1.", "-", "tru", "\"a\u{01}\"", "{\"a\":1}{",
                    "{\"a\":1,\"a\":2}", String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "1e999"] {
            XCTAssertThrowsError(try parse(bad), bad)
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22]))
    }

    func testSerializerEscapesControlAndAngleBrackets() {
        let s = String(decoding: JSONValue.string("<script>\u{01}").serialized(), as: UTF8.self)
        XCTAssertEqual(s, #""\u003cscript\u003e\u0001""#)
    }
}
