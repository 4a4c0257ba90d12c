"""In-memory storage of the test authorization server: clients and users from the
config file, and the codes, device credentials and tokens it issues. One lock guards
everything (the server is threaded); nothing is written to disk.

The model classes implement the mixins authlib 1.2 expects (ClientMixin,
AuthorizationCodeMixin, TokenMixin, DeviceCredentialDict).
"""
import hmac
import secrets
import threading
import time

from authlib.oauth2.rfc6749 import ClientMixin, AuthorizationCodeMixin, TokenMixin
from authlib.oauth2.rfc8628 import DeviceCredentialDict, DEVICE_CODE_GRANT_TYPE

ALL_GRANTS = ["authorization_code", "client_credentials", "refresh_token", "device_code"]
STAT_GRANTS = {"client_credentials": "client_credentials", "refresh_token": "refresh_token",
               "authorization_code": "authorization_code", DEVICE_CODE_GRANT_TYPE: "device_code"}


def short_grant(grant_type):
    """The config's name of a grant type ("device_code" for the RFC 8628 URN)."""
    return STAT_GRANTS.get(grant_type, grant_type)


class Client(ClientMixin):
    def __init__(self, entry):
        self.client_id = entry["id"]
        self.secret = entry.get("secret")
        self.public = bool(entry.get("public", self.secret is None))
        self.name = entry.get("name", "Email setup test")
        self.redirect_uris = list(entry.get("redirect_uris", []))
        self.grants = list(entry.get("grants", ALL_GRANTS))
        self.consent = bool(entry.get("consent", True))

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return self.secret is not None and hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code" and "authorization_code" in self.grants

    def check_grant_type(self, grant_type):
        return short_grant(grant_type) in self.grants


class User:
    def __init__(self, entry):
        self.username = entry["username"]
        self.email = entry.get("email", self.username)
        self.password = entry["password"]
        self.name = entry.get("name", self.username)

    def check_password(self, password):
        return hmac.compare_digest(self.password.encode(), (password or "").encode())


class AuthorizationCode(AuthorizationCodeMixin):
    LIFETIME = 600  # ten minutes, like Microsoft and Google

    def __init__(self, code, client_id, redirect_uri, scope, user, challenge, method, nonce, offline):
        self.code = code
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.user = user
        self.code_challenge = challenge
        self.code_challenge_method = method
        self.nonce = nonce
        self.offline = offline
        self.expires_at = time.time() + self.LIFETIME

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


class TokenRecord:
    """One issued token response: its access token and (maybe) refresh token. Records
    of one sign-in share a grant_id, so revoking one token ends the whole grant."""

    def __init__(self, token, client_id, user, grant_id, refresh_lifetime):
        now = time.time()
        self.access_token = token["access_token"]
        self.refresh_token = token.get("refresh_token")
        self.scope = token.get("scope")
        self.client_id = client_id
        self.user = user
        self.grant_id = grant_id
        self.issued_at = now
        self.expires_in = int(token.get("expires_in", 0))
        self.refresh_expires_at = now + refresh_lifetime if refresh_lifetime else None
        self.access_revoked = False
        self.refresh_revoked = False
        self.refresh_revoked_reason = None


class TokenView(TokenMixin):
    """A record seen as one token (access or refresh), as authlib's endpoints want it."""

    def __init__(self, record, kind):
        self.record = record
        self.kind = kind

    def check_client(self, client):
        return client is None or client.get_client_id() == self.record.client_id

    def get_scope(self):
        return self.record.scope

    def get_expires_in(self):
        return None  # the token generator uses the current lifetime

    def is_expired(self):
        if self.kind == "access_token":
            return time.time() >= self.record.issued_at + self.record.expires_in
        expires = self.record.refresh_expires_at
        return expires is not None and time.time() >= expires

    def is_revoked(self):
        if self.kind == "access_token":
            return self.record.access_revoked
        return self.record.refresh_revoked


class DeviceCredential(DeviceCredentialDict):
    pass


class Store:
    DEFAULT_LIFETIME = 3600

    def __init__(self, config):
        self.lock = threading.RLock()
        self.clients = {c["id"]: Client(c) for c in config.get("clients", [])}
        self.users = {u["username"]: User(u) for u in config.get("users", [])}
        self.tenant = config.get("tenant")
        self.reset()

    def reset(self):
        with self.lock:
            self.codes = {}
            self.redeemed_codes = set()
            self.records = []
            self.by_access = {}
            self.by_refresh = {}
            self.devices = {}          # device_code → DeviceCredential
            self.device_grants = {}    # normalized user_code → (user, approved)
            self.last_poll = {}        # device_code → time of the last poll
            self.expired_secrets = set()
            self.token_lifetime = self.DEFAULT_LIFETIME
            self.refresh_lifetime = None  # no expiry unless a test sets one
            self.stats = {"token_requests": {g: 0 for g in ALL_GRANTS},
                          "tokens_issued": {g: 0 for g in ALL_GRANTS},
                          "revocations": 0, "introspections": 0, "device_authorizations": 0}

    # Users and clients

    def find_user(self, username):
        if not username:
            return None
        with self.lock:
            user = self.users.get(username)
            if user is None:  # sign-in by email address works too
                user = next((u for u in self.users.values() if u.email.lower() == username.lower()), None)
            return user

    def first_user(self):
        with self.lock:
            return next(iter(self.users.values()), None)

    # Codes

    def save_code(self, code):
        with self.lock:
            self.codes[code.code] = code

    def take_code_state(self, code):
        """(code object or None, why not): "redeemed", "expired", "unknown"."""
        with self.lock:
            found = self.codes.get(code)
            if found is None:
                return None, ("redeemed" if code in self.redeemed_codes else "unknown")
            if found.expires_at < time.time():
                return None, "expired"
            return found, None

    def delete_code(self, code):
        with self.lock:
            self.codes.pop(code.code, None)
            self.redeemed_codes.add(code.code)

    # Tokens

    def save_token(self, token, client_id, user, grant_id=None):
        with self.lock:
            record = TokenRecord(token, client_id, user, grant_id or secrets.token_hex(8), self.refresh_lifetime)
            self.records.append(record)
            self.by_access[record.access_token] = record
            if record.refresh_token:
                self.by_refresh[record.refresh_token] = record
            return record

    def find_token(self, value, hint=None):
        with self.lock:
            kinds = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
            for kind in kinds:
                table = self.by_access if kind == "access_token" else self.by_refresh
                record = table.get(value)
                if record is not None:
                    return TokenView(record, kind)
            return None

    def revoke_grant(self, grant_id, reason="revoked"):
        with self.lock:
            for record in self.records:
                if record.grant_id == grant_id:
                    record.access_revoked = True
                    if not record.refresh_revoked:
                        record.refresh_revoked = True
                        record.refresh_revoked_reason = reason

    def revoke_all(self):
        with self.lock:
            for record in self.records:
                record.access_revoked = True
                if not record.refresh_revoked:
                    record.refresh_revoked = True
                    record.refresh_revoked_reason = "revoked"

    # Device authorization

    @staticmethod
    def normalize_user_code(code):
        return "".join(ch for ch in (code or "").upper() if ch.isalnum())

    def save_device(self, credential):
        with self.lock:
            self.devices[credential["device_code"]] = credential

    def device_by_user_code(self, user_code):
        wanted = self.normalize_user_code(user_code)
        with self.lock:
            return next((d for d in self.devices.values()
                         if self.normalize_user_code(d["user_code"]) == wanted), None)

    def grant_device(self, user_code, user, approved):
        with self.lock:
            self.device_grants[self.normalize_user_code(user_code)] = (user, approved)

    def device_grant(self, user_code):
        with self.lock:
            return self.device_grants.get(self.normalize_user_code(user_code))

    def consume_device(self, credential):
        with self.lock:
            self.devices.pop(credential["device_code"], None)
            self.device_grants.pop(self.normalize_user_code(credential["user_code"]), None)

    # Statistics

    def count(self, section, key=None):
        with self.lock:
            if key is None:
                self.stats[section] += 1
            elif key in self.stats[section]:
                self.stats[section][key] += 1

    def snapshot(self):
        with self.lock:
            return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.stats.items()}
