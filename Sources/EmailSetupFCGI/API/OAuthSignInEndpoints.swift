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
import Logging
import OAuth
import Smtp

/// `/api/setup/oauth/*`: signing the SMTP sender in with OAuth 2.0. Starting a browser
/// sign-in only builds a URL (on the request worker); everything that talks to the
/// provider (code exchange, device flow, revocation) runs on the SMTP work pool like a
/// test email, with a slot, so a slow provider never holds a request worker.
extension APIHandler {
    /// The OAuth endpoints, by the path after `oauth/`.
    enum OAuthAction: String {
        case start, callback, device, devicePoll = "device/poll", signOut = "sign_out"

        var method: String { self == .callback ? "GET" : "POST" }
    }

    func oauth(_ action: OAuthAction, request: Request, actor: String) throws -> Response {
        let snapshot = try repository.loadSettings()
        guard OAuthSetup.isOAuth(snapshot.values) || action == .signOut || action == .callback else {
            throw APIError(409, SettingsKey.authenticationType.rawValue,
                           "The saved sign-in method is not OAuth 2.0: choose OAuth 2.0 and save before signing in.")
        }
        let values = snapshot.values, vault = self.vault, options = oauthOptions, logger = self.logger
        let remoteAddress = request.remoteAddress
        @Sendable func signIn(_ repository: WorkRepository, abort: SessionAbort?) throws -> OAuthSignIn {
            guard let vault else { throw APIError(503, "secrets", "The key pair is not available.") }
            let setup = try OAuthSetup(values: values, openSecret: { try vault.openStored($0) }, options: options, abort: abort)
            return OAuthSignIn(setup: setup, vault: vault, store: repository, actor: actor, remoteAddress: remoteAddress)
        }

        switch action {
        case .start:
            guard let redirectURI = options.redirectURI else {
                throw APIError(409, "oauth", "Sign-in in the browser needs public_url in the responder's configuration (the address of this page); or sign in with the device flow: emailsetup oauth login --stored.")
            }
            guard let oauthStore else { throw APIError(503, "oauth", "OAuth sign-in is not available in this responder.") }
            guard values[SettingsKey.oauthGrant.rawValue] != "client_credentials" else {
                throw APIError(409, SettingsKey.oauthGrant.rawValue, "App-only sign-in (client credentials) needs no person to sign in: the client secret is enough.")
            }
            do {
                guard let vault else { throw APIError(503, "secrets", "The key pair is not available.") }
                let setup = try OAuthSetup(values: values, openSecret: { try vault.openStored($0) }, options: options)
                let flow = OAuthSignIn(setup: setup, vault: vault, store: oauthStore, actor: actor, remoteAddress: remoteAddress)
                return .success(.object([("authorization_url", .string(try flow.start(redirectURI: redirectURI)))]))
            } catch let error as OAuthError {
                return ErrorResponses.diagnosis(SmtpError(oauth: error), version: snapshot.version)
            }

        case .callback:
            let query = Self.formFields(request.query)
            guard let publicURL = options.publicURL, let redirectURI = options.redirectURI else {
                throw APIError(409, "oauth", "public_url is not configured in the responder.")
            }
            @Sendable func back(_ outcome: String, _ message: String? = nil) -> Response {
                var target = publicURL + "/?oauth=" + outcome
                if let message { target += "&message=" + message.percentEncodedAlphanumerics }
                // A JSON body too, like every answer, for scripts that do not follow redirects.
                return .success(.object([("location", .string(target)), ("outcome", .string(outcome))]), status: 303,
                                headers: [("Location", target)])
            }
            if let error = query["error"] {
                let provider = OAuthProvider(storedValue: values[SettingsKey.oauthProvider.rawValue] ?? "") ?? .generic
                return back("error", OAuthError.authorizationResponse(error: error, description: query["error_description"], provider: provider).hint)
            }
            guard let code = query["code"], let state = query["state"], !code.isEmpty, !state.isEmpty else {
                return back("error", "The provider sent no authorization code: press Sign in again.")
            }
            let slot = try reserveSmtpSlot()
            return .deferred(SmtpWork(slot: slot) { repository, abort in
                do {
                    let account = try signIn(repository, abort: abort).finish(code: code, state: state, redirectURI: redirectURI)
                    logger.info("OAuth sign-in", metadata: ["account": "\(account)", "user": "\(actor)"])
                    return back("signed_in")
                } catch let error as OAuthError {
                    logger.notice("OAuth sign-in failed", metadata: ["code": "\(error.code ?? "-")", "hint": "\(error.hint)"])
                    return back("error", error.hint)
                } catch {
                    logger.error("OAuth sign-in failed", metadata: ["error": "\(error)"])
                    return back("error", "The sign-in could not be stored; the server log has details.")
                }
            })

        case .device:
            let slot = try reserveSmtpSlot()
            return .deferred(SmtpWork(slot: slot) { repository, abort in
                Self.answering(version: snapshot.version, logger: logger) {
                    let (handle, device) = try signIn(repository, abort: abort).startDevice()
                    let complete: JSONValue = device.verificationURIComplete.map { JSONValue.string($0) } ?? JSONValue.null
                    let members: [(String, JSONValue)] = [
                        ("handle", .string(handle)), ("user_code", .string(device.userCode)),
                        ("verification_uri", .string(device.verificationURI)), ("verification_uri_complete", complete),
                        ("interval", .number(Double(device.interval))), ("expires_in", .number(Double(device.expiresIn))),
                    ]
                    return Response.success(.object(members))
                }
            })

        case .devicePoll:
            let body = (try? JSONValue.parse(request.body)) ?? .null
            guard case .string(let handle)? = body["handle"] ?? body["data"]?["handle"], !handle.isEmpty else {
                throw APIError.badRequest("handle", "is required: the handle POST /api/setup/oauth/device answered")
            }
            let slot = try reserveSmtpSlot()
            return .deferred(SmtpWork(slot: slot) { repository, abort in
                Self.answering(version: snapshot.version, logger: logger) {
                    switch try signIn(repository, abort: abort).poll(handle: handle) {
                    case .pending(let slowDown):
                        return Response.success(JSONValue.object([("status", "pending"), ("slow_down", JSONValue.bool(slowDown))]))
                    case .signedIn(let account):
                        return Response.success(JSONValue.object([("status", "signed_in"), ("account", JSONValue.string(account))]))
                    }
                }
            })

        case .signOut:
            let slot = try reserveSmtpSlot()
            return .deferred(SmtpWork(slot: slot) { repository, abort in
                Self.answering(version: snapshot.version, logger: logger) {
                    let revoked: Bool
                    do {
                        revoked = try signIn(repository, abort: abort).signOut()
                    } catch is OAuthError {
                        // Settings the provider cannot use: still forget what is stored.
                        try repository.writeSignIn([SettingsKey.SignIn.refreshToken: "", SettingsKey.SignIn.account: "",
                                                    SettingsKey.SignIn.signedInAt: ""],
                                                   action: "oauth.sign_out", actor: actor, remoteAddress: remoteAddress, detail: nil)
                        revoked = false
                    }
                    return Response.success(JSONValue.object([("signed_out", true), ("revoked", JSONValue.bool(revoked))]))
                }
            })
        }
    }

    /// Runs `body` on the pool; token-side failures answer like a failed test.
    private static func answering(version: Int, logger: Logger, _ body: () throws -> Response) -> Response {
        do {
            return try body()
        } catch let error as OAuthError {
            logger.notice("OAuth request failed", metadata: ["code": "\(error.code ?? "-")", "hint": "\(error.hint)"])
            return ErrorResponses.diagnosis(SmtpError(oauth: error), version: version)
        } catch let error as APIError {
            return error.response
        } catch {
            logger.error("OAuth request failed", metadata: ["error": "\(error)"])
            return APIError(500, "server", "Internal error; the server log has details.").response
        }
    }

    /// `a=1&b=x%20y` → ["a": "1", "b": "x y"] (first value wins).
    static func formFields(_ query: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacing("+", with: " ").percentDecoded ?? "" }
            let name = decode(parts[0])
            if fields[name] == nil { fields[name] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }
}
