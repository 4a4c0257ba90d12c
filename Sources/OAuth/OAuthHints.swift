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

/// Which request an error answered, because the same `error` means different fixes:
/// `invalid_grant` on a refresh is "sign in again", on a code exchange "the code expired".
enum OAuthRequest: Sendable {
    case authorization, clientCredentials, authorizationCode, refresh, deviceAuthorization, devicePoll, revocation
}

/// Turns an authorization server's error answer into an `OAuthError` whose hint names
/// the fix and where in the provider's admin page it is. Hints are fixed text chosen
/// by code: nothing from the request (no secret, no token) ever goes into one.
enum OAuthHints {
    private static let entraApp = "Microsoft Entra admin center → App registrations → your app"
    private static let googleCredentials = "Google Cloud console → APIs & Services → Credentials → your OAuth client"

    /// The error for `answer` (or for a bare HTTP status when `answer.error` is empty).
    static func error(for answer: ProviderErrorBody, httpStatus: Int?, provider: OAuthProvider,
                      request: OAuthRequest, endpoint: String?) -> OAuthError {
        var kind = kind(of: answer.error, httpStatus: httpStatus)
        var hint = rfcHint(answer.error, provider: provider, request: request)
        switch provider {
        case .microsoft:
            if let code = answer.errorCodes.first, let specific = microsoftHint(code, request: request) {
                hint = specific.hint
                kind = specific.kind ?? kind
            }
        case .google:
            if let specific = googleHint(answer.error, request: request) { hint = specific }
        case .generic:
            break
        }
        return OAuthError(kind: kind, code: answer.mostSpecificCode, oauthError: answer.error,
                          errorDescription: answer.errorDescription, httpStatus: httpStatus, endpoint: endpoint, hint: hint)
    }

    /// The error for a non-2xx answer that is not an OAuth error object (an HTML error page…).
    static func error(forStatus status: Int, endpoint: String) -> OAuthError {
        let kind: OAuthError.Kind
        let hint: String
        switch status {
        case 429, 500...599:
            kind = .rejectedTemporary
            hint = "the authorization server answered HTTP \(status) (overloaded or down): try again in a few minutes"
        case 401, 403:
            kind = .authRejected
            hint = "the authorization server refused the client (HTTP \(status)) without an OAuth error: check the client ID and secret"
        case 404, 405:
            kind = .rejectedPermanent
            hint = "nothing answers OAuth requests at \(endpoint) (HTTP \(status)): check the endpoint URL (or the tenant)"
        default:
            kind = .protocol
            hint = "the authorization server answered HTTP \(status) without an OAuth error object: check the endpoint URL"
        }
        return OAuthError(kind: kind, httpStatus: status, endpoint: endpoint, hint: hint)
    }

    private static func kind(of error: String, httpStatus: Int?) -> OAuthError.Kind {
        switch error {
        case "invalid_client", "invalid_grant", "unauthorized_client", "access_denied", "consent_required",
             "interaction_required", "login_required", "deleted_client", "disabled_client":
            return .authRejected
        case "expired_token":
            return .timeout
        case "server_error", "temporarily_unavailable":
            return .rejectedTemporary
        case "invalid_request", "unsupported_grant_type", "invalid_scope", "unsupported_response_type",
             "unsupported_token_type", "redirect_uri_mismatch", "admin_policy_enforced", "org_internal":
            return .rejectedPermanent
        default:
            switch httpStatus ?? 400 {
            case 429, 500...599: return .rejectedTemporary
            case 401, 403: return .authRejected
            default: return .rejectedPermanent
            }
        }
    }

    /// RFC 6749 §4.1.2.1 and §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1, for any provider.
    private static func rfcHint(_ error: String, provider: OAuthProvider, request: OAuthRequest) -> String {
        let registration = provider == .microsoft ? entraApp : provider == .google ? googleCredentials : "the authorization server's client registration"
        switch error {
        case "invalid_request":
            return "the authorization server found the request malformed (a missing or repeated parameter): check the client ID, scope and endpoint URLs in the settings"
        case "invalid_client":
            return "the client ID or client secret is wrong (or the client is not registered): copy both again from \(registration)"
        case "invalid_grant":
            switch request {
            case .refresh:
                return "the refresh token is expired or revoked: sign in again (Sign in with \(provider.rawValue) on the settings page, or emailsetup oauth login --stored)"
            case .authorizationCode:
                return "the sign-in code expired, was already used, or its redirect URI or PKCE verifier does not match: start the sign-in again"
            default:
                return "the authorization server refused the grant: sign in again, and check that the client ID matches the one the token was issued to"
            }
        case "unauthorized_client":
            return "this client may not use this grant type: allow the grant (authorization code, client credentials or device code) for the client in \(registration)"
        case "unsupported_grant_type":
            return "the authorization server does not support this grant type: choose another grant in the settings or enable it at the server"
        case "invalid_scope":
            return "the scope is unknown to the authorization server or not granted to this client: check the scope in the settings (default for SMTP: the provider's SMTP scope)"
        case "access_denied":
            return "the person signing in (or an administrator policy) declined the consent: sign in again and accept the requested permissions"
        case "unsupported_response_type":
            return "the authorization server does not allow the authorization code flow for this client: enable it in \(registration)"
        case "server_error", "temporarily_unavailable":
            return "the authorization server had a temporary failure: try again in a few minutes"
        case "authorization_pending", "slow_down":
            return "the sign-in on the other device is not finished yet: approve it at the verification page, then poll again"
        case "expired_token":
            return "the device code expired before the sign-in was approved: start the device sign-in again and approve it within the time shown"
        case "unsupported_token_type":
            return "the authorization server cannot revoke this kind of token: revoke the app's access at the provider instead"
        case "consent_required", "interaction_required", "login_required":
            return "the authorization server needs the user to sign in and consent interactively: sign in again from the settings page"
        default:
            return "the authorization server refused the request (\(error)): check the client ID, secret, scope and endpoints in the settings"
        }
    }

    /// Microsoft identity platform AADSTS codes (learn.microsoft.com, "Microsoft Entra
    /// authentication and authorization error codes").
    private static func microsoftHint(_ code: Int, request: OAuthRequest) -> (hint: String, kind: OAuthError.Kind?)? {
        switch code {
        case 7000215:
            return ("the client secret is wrong: in the \(entraApp) → Certificates & secrets, copy the secret's Value (not its Secret ID), or add a new client secret, and enter it here", .authRejected)
        case 7000222:
            return ("the client secret has expired: in the \(entraApp) → Certificates & secrets, add a new client secret, enter its Value here, then delete the expired one", .authRejected)
        case 700016:
            return ("no application with this client ID exists in this tenant: check the Application (client) ID and Directory (tenant) ID on the \(entraApp) → Overview page, or register the app in this tenant", .authRejected)
        case 65001:
            if request == .clientCredentials {
                return ("admin consent is missing: in the \(entraApp) → API permissions, add Office 365 Exchange Online → Application permissions → SMTP.SendAsApp, then Grant admin consent for the tenant", .authRejected)
            }
            return ("consent is missing: in the \(entraApp) → API permissions, add Microsoft Graph → Delegated permissions → SMTP.Send, offline_access, openid and email, then Grant admin consent (or let the user consent at sign-in)", .authRejected)
        case 50126:
            return ("the user name or password typed at Microsoft's sign-in page is wrong: sign in again with the mailbox's password (an administrator can reset it in the Microsoft Entra admin center → Users)", .authRejected)
        case 7000218:
            if request == .devicePoll {
                return ("the device sign-in needs public client flows: in the \(entraApp) → Authentication, set Allow public client flows to Yes", .authRejected)
            }
            return ("the token request carried no client secret: enter the client secret (\(entraApp) → Certificates & secrets)", .authRejected)
        case 90002, 900023:
            return ("the tenant does not exist: enter the Directory (tenant) ID or the primary domain shown on the Microsoft Entra admin center → Overview page", .rejectedPermanent)
        case 50011, 500113:
            return ("the redirect URI is not registered for the app: in the \(entraApp) → Authentication → Web → Redirect URIs, add the redirect URI shown on the settings page, exactly", .rejectedPermanent)
        case 70011:
            return ("the scope is invalid for this grant: use https://outlook.office365.com/.default for client credentials, https://outlook.office.com/SMTP.Send offline_access for sign-in", .rejectedPermanent)
        case 700082, 700084, 50173, 70008:
            return ("the sign-in has expired (unused too long, or the password changed): sign in again", .authRejected)
        case 50076, 50079:
            return ("the tenant now requires multi-factor authentication for this user: sign in again and complete it", .authRejected)
        case 53003:
            return ("a Conditional Access policy blocked the sign-in: see Microsoft Entra admin center → Monitoring → Sign-in logs for the policy, then exclude this app or allow its location", .authRejected)
        case 50034:
            return ("the user account does not exist in this tenant: sign in with the mailbox's account (check Microsoft Entra admin center → Users)", .authRejected)
        case 700025:
            return ("the app is registered as a public client, which may not send a client secret: remove the client secret from the settings, or register it as a web app in \(entraApp) → Authentication", .rejectedPermanent)
        default:
            return nil
        }
    }

    /// Google's OAuth 2.0 error answers (developers.google.com/identity/protocols/oauth2).
    private static func googleHint(_ error: String, request: OAuthRequest) -> String? {
        switch error {
        case "invalid_grant" where request == .refresh:
            return "Google no longer accepts the refresh token (revoked, password changed, unused for six months, or the app is in Testing, where refresh tokens expire after 7 days): sign in with Google again; to stop weekly expiry set Publishing status to In production at Google Cloud console → APIs & Services → OAuth consent screen"
        case "unauthorized_client":
            return "this OAuth client may not use this grant: in the \(googleCredentials), use a client of type Web application (Sign in with Google) or TVs and Limited Input devices (device sign-in), and sign in again so the token belongs to this client ID"
        case "invalid_client", "deleted_client", "disabled_client":
            return "Google does not know this client ID and secret (wrong, deleted or disabled): copy the Client ID and Client secret again from the \(googleCredentials)"
        case "invalid_scope" where request == .deviceAuthorization:
            return "Google's device sign-in does not allow the Gmail scope (https://mail.google.com/): use Sign in with Google on the settings page instead"
        case "redirect_uri_mismatch":
            return "the redirect URI is not registered: add the redirect URI shown on the settings page to Authorized redirect URIs in the \(googleCredentials)"
        case "admin_policy_enforced":
            return "the Google Workspace administrator blocks this app: in the Google Admin console → Security → Access and data control → API controls, mark the app Trusted"
        case "org_internal":
            return "the app is Internal to another Google Workspace organisation: sign in with an account of that organisation, or set User type to External at Google Cloud console → APIs & Services → OAuth consent screen"
        case "access_denied":
            return "the Google account declined the consent, or the app is in Testing and the account is not a test user: add it under Test users at Google Cloud console → APIs & Services → OAuth consent screen, then sign in again"
        default:
            return nil
        }
    }
}
