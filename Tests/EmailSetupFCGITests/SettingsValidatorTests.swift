@testable import EmailSetupFCGI
import Smtp
import XCTest

final class SettingsValidatorTests: XCTestCase {
    let validator = SettingsValidator()
    let base: [(String, JSONValue)] = [("from_address", "app@example.com"), ("smtp_host", "smtp.example.com")]

    func values(_ extra: [(String, JSONValue)], stored: [String: String] = [:]) -> Result<ValidatedSettings, SettingsRefusal> {
        validator.validate(base + extra, stored: stored)
    }

    func testDefaultsFillMissingFields() throws {
        let v = try values([]).get()
        XCTAssertEqual(v.values["smtp_port"], "25")
        XCTAssertEqual(v.values["smtp_connection_type"], "None")
        XCTAssertEqual(v.values["smtp_tls_verify"], "Full")
        XCTAssertEqual(v.values["smtp_connect_timeout"], "10")
        XCTAssertEqual(v.password, .unchanged)
    }

    func testEnumerationsAreCanonicalised() throws {
        let v = try values([("smtp_connection_type", "starttls"), ("smtp_authentication_type", "cram-md5"),
                            ("smtp_username", "u"), ("smtp_tls_verify", "none")]).get()
        XCTAssertEqual(v.values["smtp_connection_type"], "STARTTLS")
        XCTAssertEqual(v.values["smtp_authentication_type"], "Cram_MD5")
        XCTAssertEqual(v.values["smtp_tls_verify"], "None")
    }

    func testNumbersAcceptedAsJSONNumbers() throws {
        let v = try values([("smtp_port", .number(465)), ("smtp_command_timeout", .number(60))]).get()
        XCTAssertEqual(v.values["smtp_port"], "465")
        XCTAssertEqual(v.values["smtp_command_timeout"], "60")
        XCTAssertThrowsError(try values([("smtp_port", .number(25.5))]).get())
        XCTAssertThrowsError(try values([("smtp_port", .bool(true))]).get())
    }

    func testPortAndTimeoutRanges() {
        for bad in ["0", "65536", "-1", "+25", "025", " ", "2 5", "abc"] {
            XCTAssertThrowsError(try values([("smtp_port", .string(bad))]).get(), bad)
        }
        XCTAssertThrowsError(try values([("smtp_connect_timeout", "121")]).get())
        XCTAssertThrowsError(try values([("smtp_command_timeout", "0")]).get())
        XCTAssertNoThrow(try values([("smtp_connect_timeout", "120"), ("smtp_command_timeout", "600")]).get())
    }

    func testPinnedNeedsFingerprintAndNormalisesColons() throws {
        XCTAssertThrowsError(try values([("smtp_tls_verify", "Pinned")]).get())
        let colon = (0..<32).map { _ in "AB" }.joined(separator: ":")
        let v = try values([("smtp_tls_verify", "Pinned"), ("smtp_tls_pin_sha256", .string(colon))]).get()
        XCTAssertEqual(v.values["smtp_tls_pin_sha256"], String(repeating: "ab", count: 32))
        XCTAssertThrowsError(try values([("smtp_tls_pin_sha256", .string(String(repeating: "g", count: 64)))]).get())
    }

    func testAuthenticationNeedsUsername() {
        guard case .failure(let e) = values([("smtp_authentication_type", "Plain")]) else { return XCTFail("accepted") }
        XCTAssertTrue(e.errors.contains { $0.0 == "smtp_username" })
    }

    func testAbsentFieldsKeepStoredValues() throws {
        let v = try validator.validate([("smtp_port", "2525")], stored: ["from_address": "a@b.example", "smtp_host": "h.example", "smtp_username": "bob"]).get()
        XCTAssertEqual(v.values["smtp_username"], "bob")
        XCTAssertEqual(v.values["smtp_host"], "h.example")
        XCTAssertEqual(v.values["smtp_port"], "2525")
    }

    func testReadOnlyFieldsFromGetAreIgnored() {
        XCTAssertNoThrow(try values([("smtp_settings_version", "7"), ("smtp_password_set", .bool(true))]).get())
    }

    func testCAPEMMayHoldLineBreaksButOtherFieldsMayNot() throws {
        let pem = Self.realCertificate.replacingOccurrences(of: "\n", with: "\r\n")
        let v = try values([("smtp_tls_ca_pem", .string(pem))]).get()
        XCTAssertFalse(v.values["smtp_tls_ca_pem"]!.contains("\r"))
        XCTAssertThrowsError(try values([("smtp_tls_ca_pem", "not a pem")]).get())
        // Looks like PEM, is not a certificate: OpenSSL is the judge, as in the SMTP client.
        XCTAssertThrowsError(try values([("smtp_tls_ca_pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")]).get())
        XCTAssertThrowsError(try values([("smtp_username", "a\nb")]).get())
    }

    /// Found by Fuzz/JSONBody (corpus: regress-pem-lone-cr): a lone CR was stored as it came.
    func testCAPEMLoneCRBecomesLF() throws {
        // Old Mac line ends (lone CR) and CRLF mixed: stored with LF only.
        var lines = Self.realCertificate.split(separator: "\n").map(String.init)
        let pem = lines.enumerated().map { $0.offset % 2 == 0 ? $0.element + "\r" : $0.element + "\r\n" }.joined()
        let v = try values([("smtp_tls_ca_pem", .string(pem))]).get()
        lines = lines.map { $0 + "\n" }
        XCTAssertEqual(v.values["smtp_tls_ca_pem"], lines.joined())
    }

    /// Found by Fuzz/JSONBody (corpus: regress-username-del): a user name with DEL was
    /// saved, and then every test email failed before AUTH with "contains a control character".
    func testUserNameWithDELRefusedAsTheSMTPClientWould() {
        for bad in ["a\u{7F}b", "a\u{1B}b", "\u{7F}"] {
            let result = values([("smtp_authentication_type", "Plain"), ("smtp_username", .string(bad))])
            guard case .failure(let error) = result else { return XCTFail("accepted \(bad.debugDescription)") }
            XCTAssertTrue(error.errors.contains { $0.0 == "smtp_username" }, "\(error.errors)")
        }
        XCTAssertNoThrow(try values([("smtp_authentication_type", "Plain"), ("smtp_username", "jörg müller")]).get())
    }

    func hostError(_ host: String, _ validator: SettingsValidator = SettingsValidator()) -> String? {
        guard case .failure(let error) = validator.validate([("from_address", "app@example.com"), ("smtp_host", .string(host))], stored: [:]) else { return nil }
        return error.errors.first { $0.0 == "smtp_host" }?.1
    }

    /// Stored in the form the SMTP client connects to, not as typed.
    func testHostIsStoredInCanonicalForm() throws {
        for (typed, stored) in [("localhost.", "localhost"), ("Mail.Example.COM.", "mail.example.com"), ("ａｂｃ.example", "abc.example"),
                                ("Bücher.example", "xn--bcher-kva.example"), ("[2001:DB8:0::1]", "2001:db8::1"),
                                ("::FFFF:192.0.2.1", "::ffff:192.0.2.1"), ("１９２.０.２.１", "192.0.2.1")] {
            let v = try validator.validate([("from_address", "app@example.com"), ("smtp_host", .string(typed))], stored: [:]).get()
            XCTAssertEqual(v.values["smtp_host"], stored, typed)
        }
    }

    func testLegacyIPv4SpellingsRefusedAskingForADottedQuad() {
        for typed in ["0x7f000001", "127.1", "0177.0.0.1"] {
            let message = hostError(typed) ?? ""
            XCTAssertTrue(message.hasPrefix("SMTP server is not a valid host name or IP address: "), "\(typed): \(message)")
            XCTAssertTrue(message.contains("dotted quad") && message.contains("127.0.0.1"), "\(typed): \(message)")
        }
    }

    func testIPLiteralInADeniedNetworkIsRefusedNamingTheSetting() throws {
        var denying = SettingsValidator()
        denying.deniedNetworks = try IPNetwork.list(IPNetwork.defaultDeniedText)
        XCTAssertEqual(hostError("169.254.169.254", denying),
                       "169.254.169.254 is in smtp_denied_networks (169.254.0.0/16) of the responder's configuration; this destination is refused.")
        XCTAssertEqual(hostError("[::ffff:169.254.169.254]", denying),
                       "::ffff:169.254.169.254 is in smtp_denied_networks (169.254.0.0/16) of the responder's configuration; this destination is refused.")
        XCTAssertEqual(hostError("FE80::1", denying),
                       "fe80::1 is in smtp_denied_networks (fe80::/10) of the responder's configuration; this destination is refused.")
        XCTAssertNil(hostError("metadata.example", denying), "names are checked after resolution, at connect time")
        XCTAssertNil(hostError("169.254.169.254"), "no denied networks, no refusal")
    }

    func testWarningsForLikelyMistakes() throws {
        let w = try values([("smtp_port", "465"), ("smtp_connection_type", "STARTTLS"), ("smtp_tls_verify", "None")]).get().warnings
        XCTAssertTrue(w.contains { $0.0 == "smtp_connection_type" && $0.1.contains("465") })
        XCTAssertTrue(w.contains { $0.0 == "smtp_tls_verify" })
        let w2 = try values([("smtp_port", "587"), ("smtp_connection_type", "SSL")]).get().warnings
        XCTAssertTrue(w2.contains { $0.1.contains("587") })
    }

    /// A self-signed certificate made once with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=test-ca -days 3650 -nodes`.
    static let realCertificate = """
-----BEGIN CERTIFICATE-----
MIIBejCCAR+gAwIBAgIUAaYaElNfnjEUB/xA6tGEyZpGLOIwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHdGVzdC1jYTAeFw0yNjExMjUxNjIyMTFaFw0zNjExMjIxNjIy
MTFaMBIxEDAOBgNVBAMMB3Rlc3QtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AAQ4dESxdtWC3rUAFc/NuxkYiuP1V+sfM7aB5SZ+GiH7+Edf6wlxuvyJeo3Pl2JD
+cSvPgQMXLlMgdpjO/AOZuhao1MwUTAdBgNVHQ4EFgQU3M9xD+LwWK+HWC7iB4hS
aQjkBjkwHwYDVR0jBBgwFoAU3M9xD+LwWK+HWC7iB4hSaQjkBjkwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAyi9M07tLuni6omm4DyU8tvD+/o7t
KZOZQweylYxtCekCIQCR/ZXWgGizxZ088a/MAh6sJkl5pLpVAVHEpllZ39WZXA==
-----END CERTIFICATE-----
"""
}
