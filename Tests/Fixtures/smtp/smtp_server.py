#!/usr/bin/python3
"""A real SMTP server for the Smtp integration tests (aiosmtpd, Debian's python3-aiosmtpd).

Binds 127.0.0.1 on a free port (port 0), prints "READY <port>" on stdout, and writes
every received message to --outdir as msg-<n>.json (envelope, options, login) and
msg-<n>.eml (the raw bytes as received, after dot-unstuffing). Exits when stdin closes,
so a test that dies never leaves it behind.

Modes: plain (no TLS), starttls (tls_context), implicit (ssl on the socket).
Run with /usr/bin/python3 (the pyenv python on PATH has no aiosmtpd).
"""
import argparse
import asyncio
import hmac
import json
import os
import ssl
import sys
import threading
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, MISSING


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["plain", "starttls", "implicit"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--outdir", required=True)
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--auth-require-tls", type=int, default=1)
    p.add_argument("--exclude-auth", default="", help="comma-separated mechanisms not to offer")
    p.add_argument("--smtputf8", type=int, default=0)
    p.add_argument("--pipelining", type=int, default=1)
    p.add_argument("--size", type=int, default=33554432)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls-max", default="", help="1.1: offer nothing newer than TLS 1.1 (an outdated server)")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--auth-required", type=int, default=0, help="1: MAIL before AUTH gets 530 5.7.0")
    return p.parse_args()


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        extra = ["250-ENHANCEDSTATUSCODES"]
        if self.args.pipelining:
            extra.append("250-PIPELINING")
        return responses[:-1] + extra + responses[-1:]

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.args.outdir, "msg-%d" % self.count)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or b"")
        os.rename(base + ".eml.tmp", base + ".eml")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "login": (session.login_data.decode("utf-8", "replace")
                      if isinstance(session.login_data, bytes) else session.login_data),
            "tls": session.ssl is not None or self.args.mode == "implicit",
            "ehlo": session.host_name,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 OK queued as %d" % self.count

    # CRAM-MD5 (RFC 2195) through aiosmtpd's auth_MECHANISM hook ("__" becomes "-").
    async def auth_CRAM__MD5(self, server, args):
        challenge = ("<%d.%d@localhost>" % (os.getpid(), time.time_ns())).encode()
        response = await server.challenge_auth(challenge)
        if response is MISSING:
            return AuthResult(success=False, handled=True)
        try:
            user, digest = response.decode("utf-8").rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        expected = hmac.new(self.args.password.encode("utf-8"), challenge, "md5").hexdigest()
        ok = user == self.args.user and hmac.compare_digest(digest, expected)
        # handled=False on failure: smtp_AUTH then answers 535 5.7.8 itself.
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b"") if ok else None)


def make_authenticator(args):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode("utf-8") == args.user
              and auth_data.password.decode("utf-8") == args.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticator


def watch_stdin():
    sys.stdin.read()
    os._exit(0)


async def main():
    args = parse_args()
    handler = Handler(args)
    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if args.tls_max or "weakkey" in args.cert:
            # An outdated server: its weak key or old protocol must load, so the client can refuse it.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = ssl.TLSVersion.TLSv1
        if args.tls_max == "1.1":
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.load_cert_chain(args.cert, args.key)
    excluded = [m for m in args.exclude_auth.split(",") if m]
    if not args.user:
        excluded += ["PLAIN", "LOGIN", "CRAM-MD5"]

    def factory():
        return SMTP(
            handler,
            hostname="fixture.test",
            data_size_limit=args.size,
            enable_SMTPUTF8=bool(args.smtputf8),
            tls_context=context if args.mode == "starttls" else None,
            auth_require_tls=bool(args.auth_require_tls) and args.mode != "implicit",
            auth_exclude_mechanism=excluded,
            authenticator=make_authenticator(args) if args.user else None,
            auth_required=bool(args.auth_required),
            timeout=30,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host=args.host, port=args.port,
        ssl=context if args.mode == "implicit" else None)
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    threading.Thread(target=watch_stdin, daemon=True).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
