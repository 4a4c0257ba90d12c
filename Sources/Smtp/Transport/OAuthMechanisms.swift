#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// SASL for OAuth 2.0 bearer tokens: XOAUTH2 (Google's and Microsoft's) and OAUTHBEARER
/// (RFC 7628). Pure functions, tested against the examples the three documents publish.
enum OAuthSASL {
    /// The OAuth mechanisms in the order Auto prefers them: the standard one first.
    static let mechanisms = ["OAUTHBEARER", "XOAUTH2"]

    /// What the client answers an OAUTHBEARER error challenge with: the single byte
    /// %x01, base64 (RFC 7628 §3.2.3). XOAUTH2 answers with an empty line instead.
    static let oauthBearerAcknowledgement = "AQ=="

    /// XOAUTH2 initial response: base64("user=" user %x01 "auth=Bearer " token %x01 %x01).
    static func xoauth2(username: String, token: String) -> String {
        AuthEncoding.base64(Array("user=\(username)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8))
    }

    /// OAUTHBEARER initial response (RFC 7628 §3.1): the GS2 header `n,a=<user>,` (or
    /// `n,,` without a user), then `host=`, `port=` and `auth=Bearer <token>`, each
    /// ended by %x01, and a final %x01.
    static func oauthBearer(username: String, token: String, host: String, port: Int) -> String {
        let header = username.isEmpty ? "n,," : "n,a=\(saslName(username)),"
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        return AuthEncoding.base64(Array("\(header)\u{1}host=\(name)\u{1}port=\(port)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8))
    }

    /// RFC 5801 saslname: "=" and "," are GS2 syntax, so they travel as "=3D" and "=2C".
    static func saslName(_ name: String) -> String {
        name.reduce(into: "") { out, c in out += c == "=" ? "=3D" : c == "," ? "=2C" : String(c) }
    }

    /// The error a server sends in its 334 challenge instead of accepting the token
    /// (RFC 7628 §3.2.2; Gmail sends the same JSON for XOAUTH2).
    struct ServerError: Equatable {
        /// "invalid_token", "insufficient_scope", or an HTTP status ("400", "401").
        var status: String?
        /// The schemes the server takes ("bearer").
        var schemes: String?
        /// The scope a token needs here ("https://mail.google.com/").
        var scope: String?
        /// The decoded JSON, control characters removed, for the transcript.
        var json: String
    }

    /// Decodes a 334 challenge's text; nil when it is not base64 JSON (an empty challenge).
    static func serverError(challenge: String) -> ServerError? {
        guard let bytes = AuthEncoding.decodeBase64(challenge.trimmingWhitespace()), !bytes.isEmpty,
              let object = try? JSONDecoder().decode(ErrorObject.self, from: Data(bytes)) else { return nil }
        let json = ReplyParser.printable(String(decoding: bytes, as: UTF8.self).trimmingWhitespace(newlines: true))
        return ServerError(status: object.status?.text, schemes: object.schemes?.text, scope: object.scope?.text, json: json)
    }

    /// The members of the challenge's JSON object that matter, each a string or a number.
    private struct ErrorObject: Decodable {
        var status: Member?
        var schemes: Member?
        var scope: Member?

        /// A string (made printable) or a number as text ("400"); other kinds are nil.
        struct Member: Decodable {
            var text: String?
            init(from decoder: Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let text = try? value.decode(String.self) {
                    self.text = ReplyParser.printable(text)
                } else if let number = try? value.decode(Int.self) {
                    text = String(number)
                } else if let number = try? value.decode(Double.self) {
                    text = String(number)
                }
            }
        }
    }
}

extension SmtpConnection {
    /// AUTH XOAUTH2 or OAUTHBEARER with the token from `settings.accessToken`, the
    /// initial response redacted in the transcript. On an error challenge (334 with
    /// base64 JSON) it answers as the mechanism asks and reads the final reply, so the
    /// server's JSON and its final words both reach the diagnosis.
    func authenticate(withTokenUsing mechanism: String) throws {
        let token = try accessToken(for: mechanism)
        let user = settings.username
        guard mechanism != "XOAUTH2" || !user.isEmpty else {
            throw makeError(stage: .auth, kind: .invalidInput, hint: "XOAUTH2 needs the mailbox to send as: set User name to it")
        }
        let response = mechanism == "XOAUTH2" ? OAuthSASL.xoauth2(username: user, token: token)
            : OAuthSASL.oauthBearer(username: user, token: token, host: settings.host, port: settings.port)
        let enhanced = capabilities.enhancedStatusCodes
        let reply = try command("AUTH \(mechanism) \(response)", redacted: "AUTH \(mechanism) <redacted>",
                                stage: .auth, accepting: nil, enhanced: enhanced)
        if reply.code == 235 { return }
        var final = reply
        var serverError: OAuthSASL.ServerError?
        if reply.code == 334 {
            serverError = OAuthSASL.serverError(challenge: reply.lines.first ?? "")
            if let serverError { recorder.note("the server's OAuth error: \(serverError.json)") }
            final = try command(mechanism == "OAUTHBEARER" ? OAuthSASL.oauthBearerAcknowledgement : "",
                                stage: .auth, accepting: nil, enhanced: enhanced)
            if final.code == 235 { return }
            if final.code == 334 {
                // RFC 4954: "*" cancels; the server answers 501.
                _ = try? command("*", stage: .auth, accepting: nil, enhanced: enhanced)
                throw makeError(stage: .auth, kind: .protocol, hint: "the server kept asking after its OAuth error; cancelled AUTH \(mechanism)", reply: final)
            }
        }
        let (kind, hint) = Diagnosis.oauthReply(final, serverError: serverError, context: diagnosisContext)
        throw makeError(stage: .auth, kind: kind, hint: hint, reply: final)
    }

    /// Calls the token source once; its failures are stage `oauth`.
    private func accessToken(for mechanism: String) throws -> String {
        guard let source = settings.accessToken else {
            throw makeError(stage: .oauth, kind: .invalidInput,
                            hint: "\(mechanism) needs an OAuth 2.0 access token and none is configured: sign in with OAuth 2.0 first")
        }
        let token: String
        do {
            token = try source()
        } catch let error as SmtpError {
            throw withContext(error)
        } catch {
            throw makeError(stage: .oauth, kind: .protocol, hint: "the OAuth 2.0 access token could not be obtained: \(error)", underlying: error)
        }
        guard !token.isEmpty else {
            throw makeError(stage: .oauth, kind: .invalidInput, hint: "the OAuth 2.0 access token is empty: sign in with OAuth 2.0 again")
        }
        // RFC 6750 b64token is printable ASCII without spaces; anything else would break the SASL framing.
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw makeError(stage: .oauth, kind: .invalidInput,
                            hint: "the OAuth 2.0 access token contains spaces, control or non-ASCII characters; refused before sending")
        }
        return token
    }
}
