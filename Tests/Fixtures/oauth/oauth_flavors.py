"""How each flavour of the test authorization server looks from outside: its paths,
its error bodies (Microsoft identity platform with AADSTS codes, Google, or plain
RFC 6749) and the texts of its pages.

Errors travel as `Refusal` (an authlib OAuth2Error carrying a `reason` key); errors
authlib raises itself are mapped by their RFC error code.
"""
import datetime
import uuid

from authlib.oauth2 import OAuth2Error

PATHS = {
    "microsoft": {"authorize": "/<tenant>/oauth2/v2.0/authorize", "token": "/<tenant>/oauth2/v2.0/token",
                  "device": "/<tenant>/oauth2/v2.0/devicecode", "revoke": None},
    "google": {"authorize": "/o/oauth2/v2/auth", "token": "/token", "device": "/device/code", "revoke": "/revoke"},
    "generic": {"authorize": "/authorize", "token": "/token", "device": "/device", "revoke": "/revoke"},
}


class Refusal(OAuth2Error):
    """An OAuth error with the reason the flavour tables are keyed by."""

    def __init__(self, reason, error="invalid_request", status_code=400, description=None, state=None, **details):
        super().__init__(description=description, status_code=status_code, state=state, error=error)
        self.reason = reason
        self.details = details


# reason → (error, HTTP status, AADSTS number or None, message). Texts follow the
# Microsoft identity platform's own (learn.microsoft.com "AADSTS error codes").
MICROSOFT = {
    "bad_secret": ("invalid_client", 401, 7000215,
                   "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                   "value, not the client secret ID, for a secret added to app '{client_id}'."),
    "secret_expired": ("invalid_client", 401, 7000222,
                       "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to "
                       "create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate "
                       "credentials for added security: https://aka.ms/certCreds."),
    "unknown_client": ("unauthorized_client", 400, 700016,
                       "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
                       "happen if the application has not been installed by the administrator of the tenant or "
                       "consented to by any user in the tenant. You may have sent your authentication request to the "
                       "wrong tenant."),
    "missing_secret": ("invalid_client", 401, 7000218,
                       "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
    "public_client_secret": ("invalid_client", 401, 700025,
                             "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."),
    "no_client": ("invalid_request", 400, 900144, "The request body must contain the following parameter: 'client_id'."),
    "invalid_request": ("invalid_request", 400, 9002313, "Invalid request. Request is malformed or invalid. {detail}"),
    "consent_missing": ("invalid_grant", 400, 65001,
                        "The user or administrator has not consented to use the application with ID '{client_id}' "
                        "named '{client_name}'. Send an interactive authorization request for this user and resource."),
    "bad_user_credentials": ("invalid_grant", 400, 50126,
                             "Error validating credentials due to invalid username or password."),
    "refresh_revoked": ("invalid_grant", 400, 70008,
                        "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                        "interactive authorization request for this user and resource."),
    "refresh_expired": ("invalid_grant", 400, 700082,
                        "The refresh token has expired due to inactivity. The token was issued on {issued} and was "
                        "inactive for {inactive}."),
    "refresh_unknown": ("invalid_grant", 400, 9002313, "Invalid request. Request is malformed or invalid."),
    "code_invalid": ("invalid_grant", 400, 70000, "The provided value for the 'code' parameter is not valid."),
    "code_redeemed": ("invalid_grant", 400, 54005,
                      "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                      "existing refresh token."),
    "code_expired": ("invalid_grant", 400, 70008,
                     "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                     "interactive authorization request for this user and resource."),
    "code_redirect_mismatch": ("invalid_grant", 400, 500112,
                               "The reply address '{redirect_uri}' does not match the reply address provided when "
                               "requesting the authorization code."),
    "pkce_required": ("invalid_request", 400, 900144,
                      "The request body must contain the following parameter: 'code_challenge'."),
    "pkce_method": ("invalid_request", 400, 501491,
                    "Invalid size of Code_Challenge parameter or unsupported code_challenge_method; use S256."),
    "pkce_missing_verifier": ("invalid_request", 400, 900144,
                              "The request body must contain the following parameter: 'code_verifier'."),
    "pkce_mismatch": ("invalid_grant", 400, 501481,
                      "The Code_Verifier does not match the code_challenge supplied in the authorization request."),
    "redirect_uri_mismatch": ("invalid_request", 400, 50011,
                              "The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                              "URIs configured for the application '{client_id}'. Make sure the redirect URI sent in "
                              "the request matches one added to your application in the Azure portal. Navigate to "
                              "https://aka.ms/redirectUriMismatchError to learn more about how to fix this."),
    "tenant_unknown": ("invalid_request", 400, 90002,
                       "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
                       "into the correct cloud. Check with your subscription administrator, this may happen if there "
                       "are no active subscriptions for the tenant."),
    "scope_missing": ("invalid_request", 400, 900144, "The request body must contain the following parameter: 'scope'."),
    "scope_not_default": ("invalid_scope", 400, 1002012,
                          "The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                          "value with /.default suffixed to the resource identifier (application ID URI)."),
    "grant_not_allowed": ("unauthorized_client", 400, 700051,
                          "The client '{client_id}' is not enabled for grant type '{grant_type}'."),
    "unsupported_grant_type": ("unsupported_grant_type", 400, 70003,
                               "The app requested an unsupported grant type '{grant_type}'."),
    "authorization_pending": ("authorization_pending", 400, 70016,
                              "OAuth 2.0 device flow error. Authorization is pending. Continue polling."),
    "slow_down": ("slow_down", 400, None, "Polling too frequently: add 5 seconds to the polling interval."),
    "expired_token": ("expired_token", 400, 70019, "Verification code expired."),
    "access_denied": ("access_denied", 400, 65004, "User declined to consent to access the app."),
    "device_code_invalid": ("invalid_grant", 400, 70000,
                            "The provided value for the input parameter 'device_code' is not valid."),
}
MICROSOFT_BY_ERROR = {
    "invalid_request": "invalid_request", "invalid_client": "no_client", "invalid_grant": "code_invalid",
    "unauthorized_client": "grant_not_allowed", "unsupported_grant_type": "unsupported_grant_type",
    "authorization_pending": "authorization_pending", "slow_down": "slow_down", "expired_token": "expired_token",
    "access_denied": "access_denied",
}

# reason → (error, HTTP status, description), as oauth2.googleapis.com answers.
GOOGLE = {
    "bad_secret": ("invalid_client", 401, "Unauthorized"),
    "secret_expired": ("invalid_client", 401, "Unauthorized"),
    "unknown_client": ("invalid_client", 401, "The OAuth client was not found."),
    "missing_secret": ("invalid_request", 400, "client_secret is missing."),
    "public_client_secret": ("invalid_client", 401, "Unauthorized"),
    "no_client": ("invalid_request", 400, "Could not determine client ID from request."),
    "consent_missing": ("unauthorized_client", 401,
                        "Client is unauthorized to retrieve access tokens using this method, or client not "
                        "authorized for any of the scopes requested."),
    "refresh_revoked": ("invalid_grant", 400, "Token has been expired or revoked."),
    "refresh_expired": ("invalid_grant", 400, "Token has been expired or revoked."),
    "refresh_unknown": ("invalid_grant", 400, "Bad Request"),
    "code_invalid": ("invalid_grant", 400, "Malformed auth code."),
    "code_redeemed": ("invalid_grant", 400, "Bad Request"),
    "code_expired": ("invalid_grant", 400, "Bad Request"),
    "code_redirect_mismatch": ("redirect_uri_mismatch", 400, "Bad Request"),
    "pkce_required": ("invalid_request", 400, "Missing required parameter: code_challenge"),
    "pkce_method": ("invalid_request", 400, "Invalid code_challenge_method; use S256."),
    "pkce_missing_verifier": ("invalid_grant", 400, "Missing code verifier."),
    "pkce_mismatch": ("invalid_grant", 400, "Invalid code verifier."),
    "redirect_uri_mismatch": ("redirect_uri_mismatch", 400, "Bad Request"),
    "scope_missing": ("invalid_request", 400, "Missing required parameter: scope"),
    "grant_not_allowed": ("unauthorized_client", 401, "Unauthorized"),
    "unsupported_grant_type": ("unsupported_grant_type", 400, "Invalid grant_type: {grant_type}"),
    "authorization_pending": ("authorization_pending", 428, "Precondition Required"),
    "slow_down": ("slow_down", 403, "Forbidden"),
    "expired_token": ("expired_token", 400, "Bad Request"),
    "access_denied": ("access_denied", 403, "Forbidden"),
    "device_code_invalid": ("invalid_grant", 400, "Malformed device code."),
    "revoke_invalid_token": ("invalid_token", 400, "Token expired or revoked"),
    "bad_user_credentials": ("invalid_grant", 400, "Bad Request"),
}
GOOGLE_BY_ERROR = {
    "invalid_client": "no_client", "invalid_grant": "code_invalid", "unauthorized_client": "grant_not_allowed",
    "unsupported_grant_type": "unsupported_grant_type", "authorization_pending": "authorization_pending",
    "slow_down": "slow_down", "expired_token": "expired_token", "access_denied": "access_denied",
}

# Plain RFC 6749 / RFC 8628 texts for the generic flavour.
GENERIC = {
    "bad_secret": ("invalid_client", 401, "Client authentication failed: wrong client secret."),
    "secret_expired": ("invalid_client", 401, "Client authentication failed: the client secret has expired."),
    "unknown_client": ("invalid_client", 401, "Client authentication failed: unknown client."),
    "missing_secret": ("invalid_client", 401, "Client authentication failed: no client secret."),
    "public_client_secret": ("invalid_client", 401, "Client authentication failed: public clients send no secret."),
    "no_client": ("invalid_client", 401, "Client authentication failed: no client_id."),
    "consent_missing": ("invalid_grant", 400, "The resource owner has not consented to this client."),
    "refresh_revoked": ("invalid_grant", 400, "The refresh token was revoked."),
    "refresh_expired": ("invalid_grant", 400, "The refresh token has expired."),
    "refresh_unknown": ("invalid_grant", 400, "Unknown refresh token."),
    "code_invalid": ("invalid_grant", 400, "Invalid authorization code."),
    "code_redeemed": ("invalid_grant", 400, "The authorization code was already used."),
    "code_expired": ("invalid_grant", 400, "The authorization code has expired."),
    "code_redirect_mismatch": ("invalid_grant", 400, "redirect_uri differs from the authorization request."),
    "pkce_required": ("invalid_request", 400, "code_challenge is required (PKCE, S256)."),
    "pkce_method": ("invalid_request", 400, "code_challenge_method must be S256."),
    "pkce_missing_verifier": ("invalid_request", 400, "code_verifier is required."),
    "pkce_mismatch": ("invalid_grant", 400, "code_verifier does not match the code_challenge."),
    "redirect_uri_mismatch": ("invalid_request", 400, "redirect_uri is not registered for this client."),
    "grant_not_allowed": ("unauthorized_client", 400, "The client may not use grant type {grant_type}."),
    "unsupported_grant_type": ("unsupported_grant_type", 400, "Unsupported grant type {grant_type}."),
    "authorization_pending": ("authorization_pending", 400, "The user has not yet approved the request."),
    "slow_down": ("slow_down", 400, "Polling too fast: add 5 seconds to the interval."),
    "expired_token": ("expired_token", 400, "The device code has expired."),
    "access_denied": ("access_denied", 400, "The user denied the request."),
    "device_code_invalid": ("invalid_grant", 400, "Invalid device_code."),
    "bad_user_credentials": ("invalid_grant", 400, "Invalid username or password."),
}


def _reason_of(error, by_error):
    reason = getattr(error, "reason", None)
    return reason or by_error.get(error.error)


def _format(text, details):
    try:
        return text.format(**details)
    except (KeyError, IndexError):
        return text


def render_error(flavor, error, details):
    """(status, body dict) for an OAuth error in the flavour's format. `details` fills
    the message templates (client_id, tenant, grant_type, …)."""
    details = dict(details)
    details.setdefault("detail", error.get_error_description() or "")
    details.update(getattr(error, "details", {}) or {})
    if flavor == "microsoft":
        reason = _reason_of(error, MICROSOFT_BY_ERROR)
        if reason in MICROSOFT:
            name, status, code, message = MICROSOFT[reason]
        else:
            name, status, code, message = error.error, error.status_code, None, error.get_error_description() or ""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        timestamp = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
        text = _format(message, details)
        prefix = f"AADSTS{code}: " if code else ""
        body = {"error": name,
                "error_description": f"{prefix}{text} Trace ID: {trace} Correlation ID: {correlation} "
                                     f"Timestamp: {timestamp}",
                "error_codes": [code] if code else [],
                "timestamp": timestamp, "trace_id": trace, "correlation_id": correlation}
        if code:
            body["error_uri"] = f"https://login.microsoftonline.com/error?code={code}"
        return status, body
    table, by_error = (GOOGLE, GOOGLE_BY_ERROR) if flavor == "google" else (GENERIC, {})
    reason = _reason_of(error, by_error)
    if reason in table:
        name, status, message = table[reason]
        return status, {"error": name, "error_description": _format(message, details)}
    body = {"error": error.error}
    if error.get_error_description():
        body["error_description"] = error.get_error_description()
    return error.status_code, body


def page_error_text(flavor, error, details):
    """One line for an error shown on a page (consent page, device page) rather than
    sent back to the client."""
    status, body = render_error(flavor, error, details)
    description = body.get("error_description", "")
    if flavor == "microsoft":
        return description.split(" Trace ID:")[0]
    if flavor == "google":
        return f"Error {status}: {body['error']} {description}".strip()
    return f"{body['error']}: {description}"


WRONG_PASSWORD = {
    "microsoft": "AADSTS50126: Error validating credentials due to invalid username or password.",
    "google": "Wrong password. Try again or click Forgot password to reset it.",
    "generic": "Invalid username or password.",
}
UNKNOWN_USER_CODE = {
    "microsoft": "That code didn't work. Check the code and try again.",
    "google": "Invalid code. Check the code and try again.",
    "generic": "Unknown or expired user code.",
}
SIGN_IN_TITLE = {"microsoft": "Sign in to your account", "google": "Sign in - Google Accounts",
                 "generic": "Sign in"}
