@testable import EmailSetupFCGI
import OAuth
import Smtp
import Storage
import XCTest

/// The one schema: what it serves, and that everything else agrees with it.
final class SettingsSchemaTests: XCTestCase {
    var repository: MemorySettingsRepository!
    var handler: APIHandler!

    override func setUp() {
        repository = MemorySettingsRepository()
        handler = APIHandler(repository: repository, logger: .quiet)
    }

    func testEveryWritableKeyHasOneFieldAndStorageAcceptsItsLabel() {
        XCTAssertEqual(Set(SettingsSchema.fields.map(\.key)), Set(SettingsKey.writable))
        XCTAssertEqual(SettingsSchema.fields.count, SettingsKey.writable.count, "one field per key")
        // Storage keeps its own predicate (it must not import this module): it agrees.
        for field in SettingsSchema.fields {
            XCTAssertTrue(SettingsStore.isSettingsLabel(field.key.rawValue), field.key.rawValue)
        }
        for label in SettingsKey.SignIn.labels + [SettingsKey.settingsVersion.rawValue] {
            XCTAssertFalse(SettingsStore.isSettingsLabel(label), label)
        }
        XCTAssertEqual(Set(SettingsKey.secrets), Set(SettingsSchema.fields.filter(\.secret).map(\.key)))
    }

    func testDefaultsAndEnumerationsComeFromTheSchema() {
        XCTAssertEqual(SettingsKey.port.defaultValue, "25")
        XCTAssertNil(SettingsKey.host.defaultValue)
        XCTAssertEqual(SettingsEnumerations.connectionTypes, ["STARTTLS", "SSL", "None", "TLS"])
        XCTAssertEqual(SettingsSchema.field(.port)?.range, 1...65535)
        XCTAssertEqual(SettingsSchema.valueLabel(.authenticationType, "Login"), "LOGIN")
        XCTAssertEqual(SettingsSchema.valueLabel(.connectionType, "None"), "None")
        XCTAssertEqual(SettingsSchema.valueLabel(.authenticationType, "Auto"), "Automatic")
        XCTAssertEqual(SettingsSchema.valueLabel(.tlsVerify, "Pinned"), "Pinned")
        XCTAssertEqual(SettingsSchema.valueLabel(.oauthGrant, "client_credentials"), "App-only")
    }

    /// The values the schema offers the page (and serves) are exactly the ones a save
    /// accepts and the session and OAuth code understand, nothing more, nothing less.
    func testEveryEnumerationTheSchemaServesIsWhatTheValidatorAndTheSessionAccept() throws {
        let r = handler.handle(get("/api/setup/email_smtp/schema"))
        guard case .array(let served)? = r.json["data"]?["fields"] else { return XCTFail("no fields") }
        let validator = SettingsValidator()
        let pin = String(repeating: "ab", count: 32)
        var accepted: [SettingsKey: [String]] = [:]
        for json in served where json["type"]?.stringValue == "enum" {
            let key = try XCTUnwrap(json["key"]?.stringValue.flatMap(SettingsKey.init(rawValue:)))
            guard case .array(let values)? = json["values"] else { return XCTFail("\(key) serves no values") }
            var spellings = values.compactMap { $0["value"]?.stringValue }
            XCTAssertEqual(spellings.count, values.count)
            XCTAssertEqual(values.compactMap { $0["label"]?.stringValue }.filter { !$0.isEmpty }.count, values.count, "every value has a label")
            // The page names values in messages by short_label: the server's cut, served, never re-implemented.
            for value in values {
                let spelling = try XCTUnwrap(value["value"]?.stringValue)
                XCTAssertEqual(value["short_label"]?.stringValue, SettingsSchema.valueLabel(key, spelling), "\(key.rawValue)=\(spelling)")
            }
            if case .array(let also)? = json["also_accepted"] { spellings += also.compactMap(\.stringValue) }
            accepted[key] = spellings
            for value in spellings {
                let check = validator.check([(key.rawValue, .string(value)), (SettingsKey.tlsPinSHA256.rawValue, .string(pin))], stored: [:])
                XCTAssertFalse(check.errors.contains { $0.0 == key.rawValue }, "a save refuses \(key.rawValue)=\(value)")
            }
            let refused = validator.check([(key.rawValue, .string("Carrier-Pigeon"))], stored: [:])
            XCTAssertTrue(refused.errors.contains { $0.0 == key.rawValue }, "a save accepts a value the schema does not list for \(key.rawValue)")
        }
        XCTAssertEqual(Set(accepted.keys), [.connectionType, .tlsVerify, .authenticationType, .oauthProvider, .oauthGrant])
        XCTAssertEqual(accepted[.connectionType], SettingsEnumerations.connectionTypes)
        XCTAssertEqual(accepted[.authenticationType], SettingsEnumerations.authenticationTypes)
        XCTAssertEqual(accepted[.tlsVerify], SettingsEnumerations.tlsVerifyModes)
        XCTAssertEqual(accepted[.oauthProvider], SettingsEnumerations.oauthProviders)
        XCTAssertEqual(accepted[.oauthGrant], SettingsEnumerations.oauthGrants)

        // The session's and OAuth's own parsers: every value parses, every case is reachable.
        let security = try (accepted[.connectionType] ?? []).map { try XCTUnwrap(SmtpSettings.Security(storedValue: $0), $0) }
        XCTAssertEqual(Set(security), Set(SmtpSettings.Security.allCases).subtracting([.none]), "plain-only (never TLS) is the CLI's, not a setting")
        let authentication = try (accepted[.authenticationType] ?? []).map { try XCTUnwrap(SmtpSettings.Authentication(storedValue: $0), $0) }
        XCTAssertEqual(Set(authentication), Set(SmtpSettings.Authentication.allCases))
        XCTAssertEqual(Set(SettingsEnumerations.oauthAuthenticationTypes.compactMap(SmtpSettings.Authentication.init(storedValue:))), [.xoauth2, .oauthBearer])
        let verification = try (accepted[.tlsVerify] ?? []).map { try XCTUnwrap(SmtpSettings.Verification(storedValue: $0, pin: pin), $0) }
        XCTAssertEqual(verification, [.full, .pinned(sha256: pin), .none])
        let providers = try (accepted[.oauthProvider] ?? []).map { try XCTUnwrap(OAuthProvider(storedValue: $0), $0) }
        XCTAssertEqual(Set(providers), Set(OAuthProvider.allCases))
        let grants = try (accepted[.oauthGrant] ?? []).map { try XCTUnwrap(OAuthGrant(rawValue: $0), $0) }
        XCTAssertEqual(Set(grants), Set(OAuthGrant.allCases).subtracting([.deviceCode]), "a device sign-in is stored as authorization_code")
    }

    func testSchemaEndpointServesEveryFieldInPageOrder() throws {
        let r = handler.handle(get("/api/setup/email_smtp/schema"))
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        guard case .array(let fields)? = r.json["data"]?["fields"] else { return XCTFail("no fields") }
        XCTAssertEqual(fields.compactMap { $0["key"]?.stringValue }, SettingsSchema.fields.map(\.key.rawValue))
        let port = try XCTUnwrap(fields.first { $0["key"]?.stringValue == "smtp_port" })
        XCTAssertEqual(port["type"]?.stringValue, "integer")
        XCTAssertEqual(port["default"]?.stringValue, "25")
        XCTAssertEqual(port["label"]?.stringValue, "Port")
        XCTAssertEqual(port["help"]?.stringValue, "Usually 587, 465 or 25.")
        let host = try XCTUnwrap(fields.first { $0["key"]?.stringValue == "smtp_host" })
        XCTAssertEqual(host["required"], .bool(true))
        let password = try XCTUnwrap(fields.first { $0["key"]?.stringValue == "smtp_password" })
        XCTAssertEqual(password["secret"], .bool(true))
        let security = try XCTUnwrap(fields.first { $0["key"]?.stringValue == "smtp_connection_type" })
        guard case .array(let values)? = security["values"] else { return XCTFail("no values") }
        XCTAssertEqual(values.first?["label"]?.stringValue, "STARTTLS, required (port 587)")
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp/schema", "{}")).status, 405)
    }

    func testValidateAnswers200WithErrorsWarningsValuesAndFixesAndSavesNothing() throws {
        let body = #"{"data":{"from_address":"app@example.com","smtp_host":"smtp.example.com:587","smtp_port":"465","smtp_connection_type":"STARTTLS","smtp_authentication_type":"Login","smtp_username":"app"}}"#
        let r = handler.handle(post("/api/setup/email_smtp/validate", body))
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        let data = try XCTUnwrap(r.json["data"])
        XCTAssertEqual(data["valid"], .bool(false))
        XCTAssertEqual(data["errors"]?["smtp_host"]?.stringValue,
                       "SMTP server “smtp.example.com:587” holds a port too; enter the server here and the port under Port.")
        XCTAssertEqual(data["warnings"]?["smtp_password"]?.stringValue, "Sign-in method LOGIN is chosen but no password is set.")
        XCTAssertNotNil(data["warnings"]?["smtp_connection_type"], "warnings from the valid fields, though the host has an error")
        XCTAssertEqual(data["fixes"]?["smtp_host"]?["set"]?["smtp_host"]?.stringValue, "smtp.example.com")
        XCTAssertEqual(data["fixes"]?["smtp_host"]?["set"]?["smtp_port"]?.stringValue, "587")
        XCTAssertEqual(data["fixes"]?["smtp_host"]?["note"]?.stringValue, "Split “smtp.example.com:587” into server and port.")
        XCTAssertEqual(data["values"]?["smtp_connection_type"]?.stringValue, "STARTTLS")
        XCTAssertNil(data["values"]?["smtp_password"], "secrets are never in values")
        XCTAssertTrue(repository.saves.isEmpty, "validate saves nothing")

        // A save of the same body: 400 with the same messages.
        let save = handler.handle(post("/api/setup/email_smtp", body))
        XCTAssertEqual(save.status, 400)
        XCTAssertEqual(save.error("smtp_host"), data["errors"]?["smtp_host"]?.stringValue)

        let smtps = handler.handle(post("/api/setup/email_smtp/validate", #"{"data":{"smtp_host":"smtps://mail.example.com"}}"#))
        XCTAssertEqual(smtps.json["data"]?["fixes"]?["smtp_host"]?["set"]?["smtp_port"]?.stringValue, "465")
        XCTAssertEqual(smtps.json["data"]?["fixes"]?["smtp_host"]?["set"]?["smtp_connection_type"]?.stringValue, "SSL")
        XCTAssertEqual(smtps.json["data"]?["errors"]?["from_address"]?.stringValue, "From address is required: the address every email is sent from.")

        let valid = handler.handle(post("/api/setup/email_smtp/validate", #"{"data":{"from_address":"app@example.com","smtp_host":"Mail.Example.COM."}}"#))
        XCTAssertEqual(valid.json["data"]?["valid"], .bool(true))
        XCTAssertEqual(valid.json["data"]?["values"]?["smtp_host"]?.stringValue, "mail.example.com")
    }

    func testValidateRefusesWhatASaveRefusesBeforeValidation() {
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp/validate", "not json")).status, 400)
        XCTAssertEqual(handler.handle(post("/api/setup/email_smtp/validate", #"{"smtp_host":"x"}"#)).status, 400)
        var noHeader = post("/api/setup/email_smtp/validate", #"{"data":{}}"#)
        noHeader.headers["x-requested-with"] = nil
        XCTAssertEqual(handler.handle(noHeader).status, 403)
        XCTAssertEqual(handler.handle(get("/api/setup/email_smtp/validate")).status, 405)
    }

    /// A stored port that does not parse is no longer used as 25: the session refuses, naming the field.
    func testACorruptStoredPortIsAnIncompleteNamingTheField() {
        let stored = ["from_address": "app@example.com", "smtp_host": "smtp.example.com", "smtp_port": "25x"]
        XCTAssertThrowsError(try SmtpSettingsMapper.smtpSettings(from: stored) { "" }) { error in
            XCTAssertEqual(error as? EmailSettings.Incomplete,
                           EmailSettings.Incomplete(field: "smtp_port", message: "The saved Port “25x” is not valid; save the settings again."))
        }
        XCTAssertThrowsError(try SmtpSettingsMapper.smtpSettings(from: stored.merging(["smtp_port": "70000"]) { $1 }) { "" })
        XCTAssertThrowsError(try SmtpSettingsMapper.smtpSettings(from: stored.merging(["smtp_port": "587", "smtp_authentication_type": "Kerberos"]) { $1 }) { "" })
        XCTAssertEqual(try SmtpSettingsMapper.smtpSettings(from: stored.merging(["smtp_port": "587"]) { $1 }) { "" }.port, 587)

        repository.values = stored
        let r = handler.handle(post("/api/setup/email_check", ""))
        XCTAssertEqual(r.status, 409, String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(r.error("smtp_port"), "The saved Port “25x” is not valid; save the settings again.")
    }
}
