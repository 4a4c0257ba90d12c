import Discovery
import XCTest

/// SRV order (RFC 2782/6186), the "." target, and MX provider recognition.
final class SourceRulesTests: XCTestCase {
    func testSRVOrderIsPriorityThenHeavierWeight() {
        let records = [ServiceRecord(priority: 10, weight: 1, port: 1, target: "c"),
                       ServiceRecord(priority: 0, weight: 5, port: 2, target: "b"),
                       ServiceRecord(priority: 0, weight: 50, port: 3, target: "a")]
        XCTAssertEqual(ServiceRecord.ordered(records).map(\.target), ["a", "b", "c"])
        XCTAssertTrue(ServiceRecord(priority: 0, weight: 0, port: 0, target: ".").notOffered)
    }

    func testMXProvidersAreRecognised() {
        let microsoft = KnownProvider.recognise(mx: "contoso-com.mail.protection.outlook.com.")
        XCTAssertEqual(microsoft?.host, "smtp.office365.com")
        XCTAssertEqual(microsoft?.port, 587)
        XCTAssertEqual(microsoft?.security, .startTLSRequired)
        XCTAssertEqual(microsoft?.authentication, "XOAUTH2")
        XCTAssertEqual(KnownProvider.recognise(mx: "aspmx.l.google.com")?.host, "smtp.gmail.com")
        XCTAssertEqual(KnownProvider.recognise(mx: "alt1.aspmx.l.google.com")?.host, "smtp.gmail.com")
        XCTAssertEqual(KnownProvider.recognise(mx: "aspmx2.googlemail.com")?.host, "smtp.gmail.com")
        XCTAssertEqual(KnownProvider.recognise(mx: "inbound-smtp.eu-west-1.amazonaws.com")?.host, "email-smtp.eu-west-1.amazonaws.com")
        XCTAssertEqual(KnownProvider.recognise(mx: "mx.sendgrid.net")?.username, "apikey")
        XCTAssertEqual(KnownProvider.recognise(mx: "mxa.eu.mailgun.org")?.host, "smtp.eu.mailgun.org")
        XCTAssertEqual(KnownProvider.recognise(mx: "mxb.mailgun.org")?.host, "smtp.mailgun.org")
        XCTAssertNil(KnownProvider.recognise(mx: "mail.example.org"))
        XCTAssertNil(KnownProvider.recognise(mx: "outlook.com.evil.example"))
        XCTAssertNil(KnownProvider.recognise(mx: "notgoogle.com"))
    }
}
