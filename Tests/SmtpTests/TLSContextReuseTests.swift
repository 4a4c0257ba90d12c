@testable import Smtp
import TestSupport
import XCTest

/// Sessions share one TLS context per trust setting: loading the system CA store costs
/// OpenSSL 3 tens of milliseconds, which every test email used to pay.
final class TLSContextReuseTests: XCTestCase {
    func testTheSameTrustSettingsShareOneContextAndOthersDoNot() throws {
        let ca = try SmtpTestCertificates.shared().pem("ca")
        let full = try TLSContext.shared(loadTrustStore: true, extraCAPEM: nil)
        XCTAssertTrue(full === (try TLSContext.shared(loadTrustStore: true, extraCAPEM: nil)))
        let withCA = try TLSContext.shared(loadTrustStore: true, extraCAPEM: ca)
        XCTAssertFalse(full === withCA, "an extra CA is another trust store")
        XCTAssertTrue(withCA === (try TLSContext.shared(loadTrustStore: true, extraCAPEM: ca)))
        XCTAssertFalse(full === (try TLSContext.shared(loadTrustStore: false, extraCAPEM: nil)))
    }
}
