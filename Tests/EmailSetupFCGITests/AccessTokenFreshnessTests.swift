@testable import EmailSetupFCGI
import Storage
import XCTest

/// When a cached access token is renewed: `renewBefore` seconds before expiry, but never
/// in the first half of its life, so a provider that grants short tokens (shorter than
/// twice the margin) does not make every session renew one.
final class AccessTokenFreshnessTests: XCTestCase {
    func fresh(left: Double?, age: Double?) -> Bool {
        AccessTokenSource.isFresh(CachedAccessToken(sealed: "v1:x", secondsLeft: left, age: age), renewBefore: 120)
    }

    func testAnHourLongTokenIsRenewedTwoMinutesBeforeExpiry() {
        XCTAssertTrue(fresh(left: 3000, age: 600))
        XCTAssertTrue(fresh(left: 121, age: 3479))
        XCTAssertFalse(fresh(left: 119, age: 3481))
    }

    func testAShortLivedTokenIsUsedForHalfItsLife() {
        // 60 s tokens: a token just renewed (by another process) is used, not renewed again.
        XCTAssertTrue(fresh(left: 59.5, age: 0.5))
        XCTAssertTrue(fresh(left: 31, age: 29))
        XCTAssertFalse(fresh(left: 29, age: 31))
    }

    func testExpiredOrUnknownIsNeverFresh() {
        XCTAssertFalse(fresh(left: 0, age: 60))
        XCTAssertFalse(fresh(left: -5, age: 65))
        XCTAssertFalse(fresh(left: nil, age: 1))
        // Without its age only the margin counts.
        XCTAssertFalse(fresh(left: 100, age: nil))
        XCTAssertTrue(fresh(left: 200, age: nil))
    }
}
