@testable import OAuth
import XCTest

final class PKCETests: XCTestCase {
    /// RFC 7636 Appendix B: the verifier and S256 challenge of the specification.
    func testAppendixBVector() throws {
        let pkce = try PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        XCTAssertEqual(pkce.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        XCTAssertEqual(pkce.method, "S256")
    }

    func testGeneratedVerifiersAreLongUniqueAndUnreserved() throws {
        let first = try PKCE.generate(), second = try PKCE.generate()
        XCTAssertNotEqual(first.verifier, second.verifier)
        XCTAssertEqual(first.verifier.count, 43)
        XCTAssertEqual(first.challenge.count, 43)
        XCTAssertNil(first.verifier.rangeOfCharacter(from: CharacterSet(charactersIn: "+/=")))
        XCTAssertEqual(try PKCE(verifier: first.verifier).challenge, first.challenge)
    }

    func testVerifierOutsideRFC7636IsRefused() {
        for bad in [String(repeating: "a", count: 42), String(repeating: "a", count: 129), String(repeating: "a", count: 42) + "+"] {
            XCTAssertThrowsError(try PKCE(verifier: bad)) { error in
                XCTAssertEqual((error as? OAuthError)?.kind, .invalidInput)
            }
        }
    }

    func testStateIsRandomBase64URL() throws {
        let first = try OAuthState.random(), second = try OAuthState.random()
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(first.count, 43)
        XCTAssertNil(first.rangeOfCharacter(from: CharacterSet(charactersIn: "+/=")))
    }
}
