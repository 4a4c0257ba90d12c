#!/usr/bin/python3
"""A real OAuth 2.0 authorization server for the tests, on Debian's python3-authlib
(1.2) and python3-flask, over HTTPS on 127.0.0.1. See README.md next to this file
and /work/OAUTH_CONTRACT.md section 3.

  auth_server.py --flavor microsoft|google|generic --config clients.json \
                 --cert server.pem --key server.key [--port 0 --port-file F]

Grants: authorization code with PKCE S256 (required), client credentials, refresh
token with rotation, device authorization (RFC 8628); revocation (RFC 7009) and
introspection (RFC 7662). Errors in the flavour's format (oauth_flavors.py). All
state is in memory. Prints "READY <port>" when listening; logs one line per
request to stderr, never a secret, code or token.
"""
import argparse
import ipaddress
import json
import logging
import os
import secrets
import ssl
import sys
import threading
import time

from flask import Flask, g, jsonify, request
from werkzeug.serving import make_server

from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.jose import jwt
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant, DEVICE_CODE_GRANT_TYPE
from authlib.oauth2.rfc8628.endpoint import create_string_user_code
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oauth_pages as pages  # noqa: E402
from oauth_flavors import (PATHS, Refusal, UNKNOWN_USER_CODE, WRONG_PASSWORD,  # noqa: E402
                           page_error_text, render_error)
from oauth_store import AuthorizationCode, DeviceCredential, Store, short_grant  # noqa: E402

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
OPEN_TENANTS = ("common", "organizations")


# Client authentication: authlib's three methods, replaced so that each failure
# says why (unknown client, wrong secret, expired secret) for the flavour tables.

def _check_secret(store, client_id, secret):
    client = store.clients.get(client_id)
    if client is None:
        raise Refusal("unknown_client", "invalid_client", 401, client_id=client_id)
    if client.public:
        raise Refusal("public_client_secret", "invalid_client", 401, client_id=client_id)
    if not client.check_client_secret(secret):
        raise Refusal("bad_secret", "invalid_client", 401, client_id=client_id)
    with store.lock:
        expired = client_id in store.expired_secrets
    if expired:
        raise Refusal("secret_expired", "invalid_client", 401, client_id=client_id)
    return client


def install_client_auth(server, store):
    def basic(query_client, req):
        client_id, secret = extract_basic_authorization(req.headers)
        return _check_secret(store, client_id, secret or "") if client_id else None

    def post(query_client, req):
        client_id = req.form.get("client_id")
        if not client_id or "client_secret" not in req.form:
            return None
        return _check_secret(store, client_id, req.form.get("client_secret") or "")

    def none(query_client, req):
        client_id = req.client_id
        if not client_id or "client_secret" in req.data or extract_basic_authorization(req.headers)[0]:
            return None
        client = store.clients.get(client_id)
        if client is None:
            raise Refusal("unknown_client", "invalid_client", 401, client_id=client_id)
        if not client.public:
            raise Refusal("missing_secret", "invalid_client", 401, client_id=client_id)
        return client

    for name, func in (("client_secret_basic", basic), ("client_secret_post", post), ("none", none)):
        server.register_client_auth_method(name, func)


# Grants

class RefreshPolicy:
    """Whether a token response carries a refresh token, the way each provider decides:
    Microsoft when the scope has offline_access, Google for access_type=offline (and
    always for devices), the generic flavour always."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        include = include_refresh_token and self.server.issues_refresh_token(self, scope)
        return super().generate_token(user=user, scope=scope, grant_type=grant_type, expires_in=expires_in,
                                      include_refresh_token=include)


class S256Challenge(CodeChallenge):
    """PKCE as the contract wants it: a challenge on every authorization request, S256 only."""

    def validate_code_challenge(self, grant):
        data = grant.request.data
        if not data.get("code_challenge"):
            raise Refusal("pkce_required", state=grant.request.state)
        if data.get("code_challenge_method") != "S256":
            raise Refusal("pkce_method", state=grant.request.state)

    def validate_code_verifier(self, grant):
        verifier = grant.request.form.get("code_verifier")
        if not verifier:
            raise Refusal("pkce_missing_verifier")
        code = grant.request.credential
        if not CODE_VERIFIER_PATTERN.match(verifier) or not compare_s256_code_challenge(verifier, code.code_challenge):
            raise Refusal("pkce_mismatch", "invalid_grant")


class CodeGrant(RefreshPolicy, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code, req):
        data = req.data
        self.server.store.save_code(AuthorizationCode(
            code, req.client.get_client_id(), req.redirect_uri, req.scope, req.user,
            data.get("code_challenge"), data.get("code_challenge_method"), data.get("nonce"),
            data.get("access_type") == "offline"))

    def query_authorization_code(self, code, client):
        found, why = self.server.store.take_code_state(code)
        if found is None:
            raise Refusal({"unknown": "code_invalid", "redeemed": "code_redeemed", "expired": "code_expired"}[why],
                          "invalid_grant")
        if found.client_id != client.get_client_id():
            raise Refusal("code_invalid", "invalid_grant")
        if found.redirect_uri and self.request.redirect_uri != found.redirect_uri:
            raise Refusal("code_redirect_mismatch", "invalid_grant", redirect_uri=self.request.redirect_uri or "")
        return found

    def delete_authorization_code(self, authorization_code):
        self.server.store.delete_code(authorization_code)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class ClientGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS  # "none" only to answer "secret missing"

    def validate_token_request(self):
        if self.server.flavor == "google":  # Google has no client credentials grant
            raise Refusal("unsupported_grant_type", "unsupported_grant_type", grant_type=self.GRANT_TYPE)
        super().validate_token_request()
        if self.server.flavor == "microsoft":
            scope = self.request.scope or ""
            if not all(s.endswith("/.default") for s in scope_to_list(scope)):
                raise Refusal("scope_not_default", "invalid_scope", scope=scope)


class RefreshGrant(RefreshPolicy, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token):
        view = self.server.store.find_token(refresh_token, "refresh_token")
        if view is None or view.kind != "refresh_token":
            raise Refusal("refresh_unknown", "invalid_grant")
        record = view.record
        if record.refresh_revoked:
            raise Refusal("refresh_revoked", "invalid_grant")
        if view.is_expired():
            issued = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(record.issued_at))
            inactive = f"{int(time.time() - record.issued_at)}.00:00:00"
            raise Refusal("refresh_expired", "invalid_grant", issued=issued, inactive=inactive)
        return view

    def authenticate_user(self, credential):
        return credential.record.user or False

    def revoke_old_credential(self, credential):
        with self.server.store.lock:
            credential.record.refresh_revoked = True
            credential.record.refresh_revoked_reason = "rotated"


class DeviceGrant(RefreshPolicy, DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    TOLERANCE = 0.1  # seconds of clock slack before a poll counts as too fast

    def query_device_credential(self, device_code):
        with self.server.store.lock:
            credential = self.server.store.devices.get(device_code)
        if credential is None:
            raise Refusal("device_code_invalid", "invalid_grant")
        return credential

    def query_user_grant(self, user_code):
        return self.server.store.device_grant(user_code)

    def should_slow_down(self, credential):
        store = self.server.store
        with store.lock:
            now = time.time()
            last = store.last_poll.get(credential["device_code"])
            store.last_poll[credential["device_code"]] = now
            if last is not None and now - last < credential["interval"] - self.TOLERANCE:
                credential["interval"] += 5  # RFC 8628 §3.5: for this and all later polls
                return True
            return False

    def create_token_response(self):
        answer = super().create_token_response()
        self.server.store.consume_device(self.request.credential)
        return answer


# Endpoints

class DeviceEndpoint(DeviceAuthorizationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def get_verification_uri(self):
        return self.server.base_url + "/device/verify"

    def create_endpoint_response(self, req):
        client = self.authenticate_client(req)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise Refusal("grant_not_allowed", "unauthorized_client", grant_type="device_code")
        self.server.validate_requested_scope(req.scope)
        store, flavor = self.server.store, self.server.flavor
        device_code, user_code = self.generate_device_code(), create_string_user_code()
        store.save_device(DeviceCredential(
            client_id=client.get_client_id(), scope=req.scope, device_code=device_code, user_code=user_code,
            expires_at=time.time() + self.server.device_lifetime, interval=self.server.device_interval))
        store.count("device_authorizations")
        uri = self.get_verification_uri()
        data = {"device_code": device_code, "user_code": user_code, "expires_in": self.server.device_lifetime,
                "interval": self.server.device_interval}
        if flavor == "google":
            data["verification_url"] = uri  # sic: Google's name for it
        else:
            data["verification_uri"] = uri
        if flavor == "microsoft":
            data["message"] = (f"To sign in, use a web browser to open the page {uri} "
                               f"and enter the code {user_code} to authenticate.")
        if flavor == "generic":
            data["verification_uri_complete"] = f"{uri}?user_code={user_code}"
        return 200, data, default_json_headers


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def authenticate_endpoint_client(self, req):
        anonymous = not req.data.get("client_id") and not extract_basic_authorization(req.headers)[0]
        if self.server.flavor == "google" and anonymous:  # Google's /revoke takes just the token
            req.client = None
            return None
        return super().authenticate_endpoint_client(req)

    def authenticate_token(self, req, client):
        token = req.data.get("token")
        if not token:
            raise InvalidRequestError('Missing "token"')
        view = self.server.store.find_token(token, req.data.get("token_type_hint"))
        usable = view is not None and view.check_client(client)
        if self.server.flavor == "google" and (not usable or view.is_revoked() or view.is_expired()):
            raise Refusal("revoke_invalid_token", "invalid_token")
        return view if usable else None

    def revoke_token(self, token, req):
        self.server.store.revoke_grant(token.record.grant_id)


class Introspection(IntrospectionEndpoint):
    """RFC 7662 without client authentication (the contract: the SMTP fixture asks)."""

    def authenticate_endpoint_client(self, req):
        req.client = None
        return None

    def query_token(self, token_string, token_type_hint):
        return self.server.store.find_token(token_string, token_type_hint)

    def check_permission(self, token, client, req):
        return True

    def introspect_token(self, token):
        record = token.record
        payload = {"active": True, "client_id": record.client_id, "scope": record.scope or "",
                   "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
                   "iat": int(record.issued_at), "exp": int(record.issued_at + record.expires_in)}
        if token.kind == "refresh_token":
            payload["exp"] = int(record.refresh_expires_at) if record.refresh_expires_at else None
            if payload["exp"] is None:
                del payload["exp"]
        if record.user is not None:
            payload.update(username=record.user.email, sub=record.user.username, email=record.user.email)
        return payload


class Server(AuthorizationServer):
    def __init__(self, app, store, flavor, device_interval, device_lifetime):
        self.store, self.flavor = store, flavor
        self.device_interval, self.device_lifetime = device_interval, device_lifetime
        self.base_url = ""
        self._signing_key = None  # made on first use: RSA key generation is slow on a busy machine
        self._key_lock = threading.Lock()
        super().__init__(app, query_client=lambda cid: store.clients.get(cid), save_token=self._save_token)
        self.register_token_generator("default", self._generate_token)

    def _generate_token(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        with self.store.lock:
            lifetime = self.store.token_lifetime
        token = {"token_type": "Bearer", "access_token": secrets.token_urlsafe(32), "expires_in": lifetime}
        if self.flavor == "microsoft":
            token["ext_expires_in"] = lifetime
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(48)
        if scope:
            token["scope"] = scope
        return token

    def issues_refresh_token(self, grant, scope):
        if self.flavor == "microsoft":
            return "offline_access" in scope_to_list(scope or "")
        if self.flavor == "google" and isinstance(grant, CodeGrant):
            return bool(grant.request.credential.offline)
        return True

    def _save_token(self, token, req):
        credential = req.credential
        grant_id = credential.record.grant_id if hasattr(credential, "record") else None
        self.store.save_token(token, req.client.get_client_id(), req.user, grant_id)
        if req.user is not None and "openid" in scope_to_list(token.get("scope") or ""):
            token["id_token"] = self._id_token(req.client, req.user, getattr(credential, "nonce", None))

    def _id_token(self, client, user, nonce):
        now = int(time.time())
        tenant = self.store.tenant or "9188040d-6c67-4c5b-b112-36a304b66dad"
        claims = {"iss": f"{self.base_url}/{tenant}/v2.0" if self.flavor == "microsoft" else self.base_url,
                  "sub": user.username, "aud": client.get_client_id(), "iat": now, "exp": now + 3600,
                  "email": user.email, "preferred_username": user.username, "name": user.name}
        if self.flavor == "microsoft":
            claims["tid"] = tenant
        if self.flavor == "google":
            claims["email_verified"] = True
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.signing_key()).decode()

    def signing_key(self):
        """A throwaway RSA key for id_tokens (clients read them over verified TLS, unsigned checks)."""
        with self._key_lock:
            if self._signing_key is None:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            return self._signing_key

    def send_signal(self, name, *args, **kwargs):
        client = kwargs.get("client")
        if name == "after_authenticate_client" and client is not None and not client.consent:
            raise Refusal("consent_missing", "invalid_grant", client_id=client.get_client_id(), client_name=client.name)

    def validate_requested_scope(self, scope, state=None):
        if self.flavor != "generic" and not scope:
            raise Refusal("scope_missing", state=state)

    def error_details(self, req):
        client = getattr(req, "client", None)
        client_id = client.get_client_id() if client is not None else (
            req.client_id or extract_basic_authorization(req.headers)[0] or "")
        return {"client_id": client_id, "tenant": getattr(g, "tenant", None) or "",
                "grant_type": req.data.get("grant_type", ""), "scope": req.scope or "",
                "redirect_uri": req.redirect_uri or "", "client_name": client.name if client is not None else ""}

    def handle_error_response(self, req, error):
        if getattr(error, "reason", None) is None and error.error == "invalid_grant" \
                and req.data.get("grant_type") == "refresh_token":
            error = Refusal("refresh_unknown", "invalid_grant")
        status, body = render_error(self.flavor, error, self.error_details(req))
        if error.redirect_uri:
            params = [("error", body["error"]), ("error_description", body.get("error_description", ""))]
            if req.state:
                params.append(("state", req.state))
            from authlib.common.urls import add_params_to_uri
            return self.handle_response(302, "", [("Location", add_params_to_uri(error.redirect_uri, params))])
        return self.handle_response(status, body, default_json_headers)


def create_app(store, flavor, device_interval, device_lifetime):
    app = Flask(__name__)
    server = Server(app, store, flavor, device_interval, device_lifetime)
    install_client_auth(server, store)
    server.register_grant(CodeGrant, [S256Challenge(required=True)])
    server.register_grant(ClientGrant)
    server.register_grant(RefreshGrant)
    server.register_grant(DeviceGrant)
    server.register_endpoint(DeviceEndpoint)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    paths = PATHS[flavor]

    def json_error(reason, **details):
        status, body = render_error(flavor, Refusal(reason), details)
        return jsonify(body), status

    def tenant_refusal(tenant):
        g.tenant = tenant
        if flavor == "microsoft" and store.tenant and tenant not in (store.tenant,) + OPEN_TENANTS:
            return "tenant_unknown"
        return None

    def token(tenant=None):
        if tenant_refusal(tenant):
            return json_error("tenant_unknown", tenant=tenant)
        grant = short_grant(request.form.get("grant_type", ""))
        store.count("token_requests", grant)
        response = server.create_token_response()
        if response.status_code == 200:
            store.count("tokens_issued", grant)
        return response

    def device(tenant=None):
        if tenant_refusal(tenant):
            return json_error("tenant_unknown", tenant=tenant)
        return server.create_endpoint_response("device_authorization")

    def authorize(tenant=None):
        details = {"tenant": tenant or "", "client_id": request.values.get("client_id", ""),
                   "redirect_uri": request.values.get("redirect_uri", "")}
        if tenant_refusal(tenant):
            return pages.error_page(flavor, page_error_text(flavor, Refusal("tenant_unknown"), details))
        client = store.clients.get(details["client_id"])
        if client is None:
            return pages.error_page(flavor, page_error_text(flavor, Refusal("unknown_client"), details))
        if details["redirect_uri"] and not client.check_redirect_uri(details["redirect_uri"]):
            return pages.error_page(flavor, page_error_text(flavor, Refusal("redirect_uri_mismatch"), details))
        try:
            server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            if error.redirect_uri:
                return server.handle_error_response(server.create_oauth2_request(None), error)
            return pages.error_page(flavor, page_error_text(flavor, error, details))
        action = request.full_path if request.query_string else request.path
        scope = request.values.get("scope", "")
        if request.method == "GET":
            return pages.consent_page(flavor, action, client.name, scope, request.args.get("login_hint", ""))
        if request.form.get("action", "approve") == "deny":
            return server.create_authorization_response(grant_user=None)
        user = store.find_user(request.form.get("username"))
        if user is None or not user.check_password(request.form.get("password")):
            return pages.consent_page(flavor, action, client.name, scope, request.form.get("username", ""),
                                      WRONG_PASSWORD[flavor])
        return server.create_authorization_response(grant_user=user)

    def revoke():
        response = server.create_endpoint_response("revocation")
        if response.status_code == 200:
            store.count("revocations")
        return response

    def device_verify():
        if request.method == "GET":
            return pages.device_page(flavor, request.args.get("user_code", ""))
        user_code, username = request.form.get("user_code", ""), request.form.get("username", "")
        credential = store.device_by_user_code(user_code)
        if credential is None or credential.is_expired():
            return pages.device_page(flavor, user_code, username, UNKNOWN_USER_CODE[flavor])
        user = store.find_user(username)
        if user is None or not user.check_password(request.form.get("password")):
            return pages.device_page(flavor, user_code, username, WRONG_PASSWORD[flavor])
        approved = request.form.get("action", "approve") != "deny"
        store.grant_device(user_code, user, approved)
        return pages.done_page(flavor, "You have signed in on your device." if approved else "Sign-in declined.")

    app.add_url_rule(paths["token"], "token", token, methods=["POST"])
    app.add_url_rule(paths["device"], "device", device, methods=["POST"])
    app.add_url_rule(paths["authorize"], "authorize", authorize, methods=["GET", "POST"])
    if paths["revoke"]:
        app.add_url_rule(paths["revoke"], "revoke", revoke, methods=["POST"])
    app.add_url_rule("/device/verify", "device_verify", device_verify, methods=["GET", "POST"])

    @app.post("/introspect")
    def introspect():
        store.count("introspections")
        return server.create_endpoint_response("introspection")

    register_test_controls(app, store)

    @app.after_request
    def log_request(response):
        log_line(response)
        return response

    return app, server


def register_test_controls(app, store):
    """The /_test/* controls of the contract (plus expire_device), loopback only."""

    @app.before_request
    def loopback_only():
        if request.path.startswith("/_test/") and not ipaddress.ip_address(request.remote_addr).is_loopback:
            return jsonify(error="forbidden"), 403

    @app.post("/_test/secret_expired")
    def secret_expired():
        wanted = request.form.get("client_id")
        with store.lock:
            store.expired_secrets.update([wanted] if wanted else store.clients.keys())
        return jsonify(ok=True)

    @app.post("/_test/revoke_all")
    def revoke_all():
        store.revoke_all()
        return jsonify(ok=True)

    @app.post("/_test/token_lifetime")
    def token_lifetime():
        try:
            seconds = int(request.form["seconds"]) if "seconds" in request.form else None
            refresh = int(request.form["refresh_seconds"]) if "refresh_seconds" in request.form else None
        except ValueError:
            return jsonify(error="seconds must be an integer"), 400
        with store.lock:
            if seconds is not None:
                store.token_lifetime = seconds
            if refresh is not None:
                store.refresh_lifetime = refresh or None
        return jsonify(ok=True, seconds=store.token_lifetime, refresh_seconds=store.refresh_lifetime)

    @app.get("/_test/stats")
    def stats():
        return jsonify(store.snapshot())

    @app.get("/_test/issued_tokens")
    def issued_tokens():
        # Every access and refresh token issued since the last reset, so a test can
        # grep a product's logs, answers and database for them (issue 13).
        with store.lock:
            return jsonify(access_tokens=[r.access_token for r in store.records],
                           refresh_tokens=[r.refresh_token for r in store.records if r.refresh_token])

    @app.post("/_test/approve_device")
    def approve_device():
        credential = store.device_by_user_code(request.form.get("user_code", ""))
        if credential is None:
            return jsonify(error="unknown user_code"), 404
        user = store.find_user(request.form.get("username")) or store.first_user()
        approved = request.form.get("deny", "") not in ("1", "true")
        store.grant_device(credential["user_code"], user, approved)
        return jsonify(ok=True, approved=approved)

    @app.post("/_test/expire_device")
    def expire_device():
        wanted = request.form.get("user_code")
        with store.lock:
            for credential in store.devices.values():
                if not wanted or store.normalize_user_code(credential["user_code"]) == store.normalize_user_code(wanted):
                    credential["expires_at"] = time.time() - 1
        return jsonify(ok=True)

    @app.post("/_test/reset")
    def reset():
        store.reset()
        return jsonify(ok=True)


def log_line(response):
    """One line per request: method, path (never the query), status, grant, client id
    and the error code of a failure. No secret, code or token value."""
    parts = [request.method, request.path, str(response.status_code)]
    grant = request.form.get("grant_type") if request.method == "POST" else None
    if grant:
        parts.append("grant=" + short_grant(grant))
    client_id = request.values.get("client_id") or extract_basic_authorization(request.headers)[0]
    if client_id:
        parts.append("client=" + client_id)
    if response.status_code >= 400 and response.mimetype == "application/json":
        body = response.get_json(silent=True) or {}
        parts.append("error=" + str(body.get("error")))
        if body.get("error_codes"):
            parts.append("AADSTS" + str(body["error_codes"][0]))
    if response.status_code == 302:
        location = response.headers.get("Location", "")
        parts.append("redirect=" + ("error" if "error=" in location else "code"))
    print(" ".join(parts), file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flavor", choices=sorted(PATHS), default="generic")
    p.add_argument("--config", required=True, help="JSON: {tenant?, clients: [...], users: [...]}")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--port-file", help="where to write the chosen port")
    p.add_argument("--device-interval", type=int, default=5, help="RFC 8628 polling interval (seconds)")
    p.add_argument("--device-lifetime", type=int, default=900, help="device code lifetime (seconds)")
    p.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin closes (test harnesses)")
    args = p.parse_args()

    with open(args.config, encoding="utf-8") as f:
        store = Store(json.load(f))
    app, server = create_app(store, args.flavor, args.device_interval, args.device_lifetime)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # its request lines carry query strings

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    httpd = make_server("127.0.0.1", args.port, app, threaded=True, ssl_context=context)
    port = httpd.server_port
    server.base_url = f"https://127.0.0.1:{port}"
    if args.port_file:
        temporary = args.port_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(temporary, args.port_file)
    print(f"READY {port}", flush=True)
    print(f"auth_server: {args.flavor} flavour on {server.base_url}", file=sys.stderr, flush=True)
    if args.exit_with_stdin:
        def watch():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
