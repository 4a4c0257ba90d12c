@testable import EmailSetupFCGI
import Storage
import XCTest

/// The handler's side of single-use transport ciphertexts and of restoring a
/// version whose password was removed from history (the store's side runs against
/// MariaDB in StorageTests, the whole path through nginx in EndToEndTests).
final class TransportSecretHandlerTests: XCTestCase {
    var repository: MemorySettingsRepository!
    var handler: APIHandler!
    let path = "/api/setup/email_smtp"

    override func setUp() {
        repository = MemorySettingsRepository()
        handler = APIHandler(repository: repository, vault: PlainVault(), logger: .quiet)
    }

    func body(password: String) -> String {
        #"{"data":{"from_address":"app@example.com","smtp_host":"smtp.example.com","smtp_password":"\#(password)"}}"#
    }

    /// A nonce as the page gets it.
    func freshNonce() throws -> String {
        let r = handler.handle(get("/api/setup/email_public_key"))
        XCTAssertEqual(r.status, 200)
        return try XCTUnwrap(r.data("nonce"))
    }

    func testPublicKeyHandsOutAFreshNonceThatIsNotCached() throws {
        let r = handler.handle(get("/api/setup/email_public_key"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json["data"]?["nonce_expires_in"], .number(600))
        XCTAssertEqual(r.header("Cache-Control"), "no-store")
        XCTAssertNotNil(r.data("public_key"))
        XCTAssertNotEqual(r.data("nonce"), try freshNonce())
    }

    func testACiphertextIsAcceptedOnce() throws {
        let cipher = PlainVault.ciphertext(nonce: try freshNonce(), secret: "s3cret")
        let first = handler.handle(post(path, body(password: cipher)))
        XCTAssertEqual(first.status, 200, String(decoding: first.body, as: UTF8.self))
        XCTAssertEqual(repository.values["smtp_password"], "sealed:s3cret")

        let again = handler.handle(post(path, body(password: cipher)))
        XCTAssertEqual(again.status, 400)
        let message = try XCTUnwrap(again.error("smtp_password"))
        XCTAssertTrue(message.contains("already used") && message.contains("GET /api/setup/email_public_key"), message)
        XCTAssertEqual(repository.saves.count, 1)
    }

    func testUnknownNonceAndUnframedPlaintextAreFieldErrors() throws {
        let unknown = handler.handle(post(path, body(password: PlainVault.ciphertext(nonce: "AAAAAAAAAAAAAAAAAAAAAA", secret: "x"))))
        XCTAssertEqual(unknown.status, 400)
        XCTAssertTrue(unknown.error("smtp_password")?.contains("nonce") ?? false, String(decoding: unknown.body, as: UTF8.self))

        let bare = Data("just the password".utf8).base64EncodedString()
        let unframed = handler.handle(post(path, body(password: bare)))
        XCTAssertEqual(unframed.status, 400)
        let message = try XCTUnwrap(unframed.error("smtp_password"))
        XCTAssertTrue(message.contains(#"{"nonce""#) && message.contains("fresh key and nonce"), message)
        XCTAssertTrue(repository.saves.isEmpty)
    }

    func testANonceSurvivesASaveThatFailed() throws {
        let nonce = try freshNonce()
        let stale = handler.handle(post(path, body(password: PlainVault.ciphertext(nonce: nonce, secret: "pw")), headers: ["if-match": "\"9\""]))
        XCTAssertEqual(stale.status, 409)
        let retried = handler.handle(post(path, body(password: PlainVault.ciphertext(nonce: nonce, secret: "pw"))))
        XCTAssertEqual(retried.status, 200, String(decoding: retried.body, as: UTF8.self))
    }

    func testRestoreOfAPurgedVersionKeepsTheClearedPasswordAndSaysSo() throws {
        XCTAssertEqual(handler.handle(post(path, body(password: PlainVault.ciphertext(nonce: try freshNonce(), secret: "old")))).status, 200)
        XCTAssertEqual(handler.handle(post(path, body(password: ""))).status, 200)
        let restored = handler.handle(post("/api/setup/email_history/1/restore", ""))
        XCTAssertEqual(restored.status, 200, String(decoding: restored.body, as: UTF8.self))
        XCTAssertEqual(restored.json["data"]?["smtp_password_set"], .bool(false))
        let warning = try XCTUnwrap(restored.json["data"]?["warnings"]?["smtp_password"]?.stringValue)
        XCTAssertTrue(warning.contains("removed from history") && warning.contains("current password state is kept"), warning)

        let plain = handler.handle(post("/api/setup/email_history/2/restore", ""))
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.json["data"]?["warnings"], .object([]), "nothing to say when the password state is the version's")
    }
}
