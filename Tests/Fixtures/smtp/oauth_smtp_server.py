#!/usr/bin/python3
"""An SMTP submission server that takes OAuth 2.0 tokens, for the tests (aiosmtpd,
Debian's python3-aiosmtpd). It answers the way Exchange Online or Gmail do.

Binds 127.0.0.1 (port 0: a free one), prints "READY <port>" on stdout and exits when
stdin closes, so a test that dies never leaves it behind.

  --flavor exchange   235 2.7.0 Authentication successful; a bad token:
                      535 5.7.3 Authentication unsuccessful [...]; PLAIN and LOGIN:
                      535 5.7.139 ... basic authentication is disabled
                      (--basic-auth unsupported: 550 5.7.30 ...; ok: --password works)
  --flavor gmail      235 2.7.0 Accepted; a bad token: 334 base64 {"status":"400",
                      "schemes":"Bearer","scope":"https://mail.google.com/"}, then after
                      the client's answer 535-5.7.8 Username and Password not accepted...

AUTH XOAUTH2 (user=U ^A auth=Bearer T ^A ^A) and OAUTHBEARER (RFC 7628: n,a=U, ^A
host=.. ^A port=.. ^A auth=Bearer T ^A ^A), with or without an initial response.
A token is checked against --tokens-file (JSON: token -> username, or null for an
app-only token) or with RFC 7662 introspection at --introspect-url (HTTPS, CA from
--ca-file). The user the client names must be the token's username; an app-only
token may send as any of --mailboxes.

Accepted messages go to the maildir --spool: new/<n>.eml (the bytes as received) and
meta/<n>.json (envelope, the authenticated user and mechanism, TLS).
Run with /usr/bin/python3 (the pyenv python on PATH has no aiosmtpd).
"""
import argparse
import asyncio
import base64
import collections
import json
import os
import ssl
import sys
import threading
import urllib.parse
import urllib.request

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, MISSING

GMAIL_SCOPE = "https://mail.google.com/"
REPLIES = {
    "exchange": {
        "success": "235 2.7.0 Authentication successful",
        "bad_token": "535 5.7.3 Authentication unsuccessful [SN2PR00CA0018.namprd00.prod.outlook.com]",
        "basic_disabled": "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [fixture.outlook.test]",
        "basic_unsupported": "550 5.7.30 Basic authentication is not supported for Client Submission.",
        "bad_password": "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. [fixture.outlook.test]",
    },
    "gmail": {
        "success": "235 2.7.0 Accepted",
        "bad_password": ("535-5.7.8 Username and Password not accepted. Learn more at\r\n"
                         "535 5.7.8  https://support.google.com/mail/?p=BadCredentials fixture - gsmtp"),
        "basic_disabled": "534-5.7.9 Application-specific password required. Learn more at\r\n"
                          "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor fixture - gsmtp",
        "basic_unsupported": "534 5.7.9 Application-specific password required.",
    },
}


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--flavor", choices=["exchange", "gmail"], required=True)
    p.add_argument("--mode", choices=["starttls", "implicit", "plain"], default="starttls")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--spool", required=True)
    p.add_argument("--tokens-file", help="JSON map token -> username (null: app-only)")
    p.add_argument("--introspect-url", help="RFC 7662 endpoint of the authorization server")
    p.add_argument("--ca-file", help="CA for --introspect-url")
    p.add_argument("--mailboxes", default="", help="comma-separated mailboxes an app-only token may send as")
    p.add_argument("--basic-auth", choices=["disabled", "unsupported", "ok"],
                   help="PLAIN/LOGIN: refused as Microsoft/Google do (default), or checked against --password")
    p.add_argument("--password", default="")
    args = p.parse_args()
    if bool(args.tokens_file) == bool(args.introspect_url):
        p.error("give exactly one of --tokens-file and --introspect-url")
    if args.basic_auth is None:
        args.basic_auth = "disabled"
    return args


class TokenChecker:
    """Who a token belongs to: (active, username or None for app-only)."""

    def __init__(self, args):
        self.args = args
        self.context = ssl.create_default_context(cafile=args.ca_file) if args.introspect_url else None

    def lookup(self, token):
        if self.args.tokens_file:
            # Read each time, so a test may revoke or add tokens while the server runs.
            with open(self.args.tokens_file) as f:
                tokens = json.load(f)
            if token not in tokens:
                return False, None
            return True, tokens[token]
        body = urllib.parse.urlencode({"token": token}).encode()
        request = urllib.request.Request(self.args.introspect_url, data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            answer = json.load(response)
        if not answer.get("active"):
            return False, None
        return True, answer.get("username")


def parse_xoauth2(blob):
    """user=U ^A auth=Bearer T ^A ^A -> (user, token) or None."""
    text = blob.decode("utf-8", "replace")
    if not text.endswith("\x01\x01"):
        return None
    fields = dict(part.split("=", 1) for part in text[:-2].split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    if "user" not in fields or not auth.startswith("Bearer "):
        return None
    return fields["user"], auth[len("Bearer "):]


def parse_oauthbearer(blob):
    """RFC 7628 3.1: gs2-header ^A (key=value ^A)* ^A -> (user or "", token) or None."""
    text = blob.decode("utf-8", "replace")
    if not text.endswith("\x01\x01") or "\x01" not in text:
        return None
    header, rest = text.split("\x01", 1)
    parts = header.split(",")
    if len(parts) != 3 or parts[0] not in ("n", "y") or parts[2] != "":
        return None
    user = ""
    if parts[1].startswith("a="):
        user = parts[1][2:].replace("=2C", ",").replace("=3D", "=")
    fields = dict(part.split("=", 1) for part in rest[:-2].split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    if not auth.startswith("Bearer "):
        return None
    return user, auth[len("Bearer "):]


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0
        self.replies = REPLIES[args.flavor]
        self.checker = TokenChecker(args)
        self.mailboxes = {m for m in args.mailboxes.split(",") if m}
        for sub in ("tmp", "new", "cur", "meta"):
            os.makedirs(os.path.join(args.spool, sub), exist_ok=True)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-ENHANCEDSTATUSCODES", "250-PIPELINING"] + responses[-1:]

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%06d" % self.count
        spool = self.args.spool
        with open(os.path.join(spool, "tmp", name + ".eml"), "wb") as f:
            f.write(envelope.original_content or b"")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "user": getattr(session, "oauth_user", None),
            "mechanism": getattr(session, "oauth_mechanism", None),
            "tls": session.ssl is not None or self.args.mode == "implicit",
        }
        with open(os.path.join(spool, "meta", name + ".json.tmp"), "w") as f:
            json.dump(meta, f)
        os.rename(os.path.join(spool, "meta", name + ".json.tmp"), os.path.join(spool, "meta", name + ".json"))
        os.rename(os.path.join(spool, "tmp", name + ".eml"), os.path.join(spool, "new", name + ".eml"))
        return "250 2.0.0 OK %s - fixture" % name

    async def _initial_response(self, server, args):
        if len(args) > 1:
            if args[1] == "=":
                return b""
            try:
                return base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Cannot Decode response")
                return MISSING
        return await server.challenge_auth(b"", encode_to_b64=False)

    async def _token_auth(self, server, args, mechanism, parse):
        blob = await self._initial_response(server, args)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        parsed = parse(blob)
        if parsed is None:
            await server.push("501 5.5.2 Cannot Decode response")
            return AuthResult(success=False, handled=True)
        user, token = parsed
        loop = asyncio.get_running_loop()
        active, owner = await loop.run_in_executor(None, self.checker.lookup, token)
        if active and owner is None:
            ok = user in self.mailboxes
        else:
            ok = active and user != "" and user.lower() == (owner or "").lower()
        if ok:
            server.session.oauth_user = user
            server.session.oauth_mechanism = mechanism
            return AuthResult(success=True, handled=False, message=self.replies["success"],
                              auth_data=LoginPassword(user.encode(), b""))
        if self.args.flavor == "exchange":
            return AuthResult(success=False, handled=False, message=self.replies["bad_token"])
        # Gmail: the error as a JSON challenge; whatever the client answers, then 535.
        error = json.dumps({"status": "400", "schemes": "Bearer", "scope": GMAIL_SCOPE}, separators=(",", ":"))
        await server.push("334 " + base64.b64encode(error.encode()).decode())
        await server._reader.readline()
        await server.push(self.replies["bad_password"])
        return AuthResult(success=False, handled=True)

    async def auth_XOAUTH2(self, server, args):
        return await self._token_auth(server, args, "XOAUTH2", parse_xoauth2)

    async def auth_OAUTHBEARER(self, server, args):
        return await self._token_auth(server, args, "OAUTHBEARER", parse_oauthbearer)


def make_authenticator(args):
    replies = REPLIES[args.flavor]

    def authenticator(server, session, envelope, mechanism, auth_data):
        if args.basic_auth == "disabled":
            return AuthResult(success=False, handled=False, message=replies["basic_disabled"])
        if args.basic_auth == "unsupported":
            return AuthResult(success=False, handled=False, message=replies["basic_unsupported"])
        ok = isinstance(auth_data, LoginPassword) and auth_data.password.decode("utf-8", "replace") == args.password
        if ok:
            session.oauth_user = auth_data.login.decode("utf-8", "replace")
            session.oauth_mechanism = mechanism
            return AuthResult(success=True, handled=False, message=replies["success"], auth_data=auth_data)
        return AuthResult(success=False, handled=False, message=replies["bad_password"])
    return authenticator


class OAuthSMTP(SMTP):
    """Takes AUTH lines as long as a JWT's initial response (aiosmtpd's limits: 512 for
    a command, 1001 for the reader's line)."""
    line_length_limit = 16384

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.command_size_limits = collections.defaultdict(lambda: self.command_size_limit)
        self.command_size_limits["AUTH"] = 16384


def watch_stdin():
    sys.stdin.read()
    os._exit(0)


async def main():
    args = parse_args()
    handler = Handler(args)
    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def factory():
        return OAuthSMTP(
            handler,
            hostname="fixture." + args.flavor + ".test",
            tls_context=context if args.mode == "starttls" else None,
            auth_require_tls=args.mode == "starttls",
            authenticator=make_authenticator(args),
            timeout=30,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=args.host, port=args.port,
                                      ssl=context if args.mode == "implicit" else None)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=watch_stdin, daemon=True).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
