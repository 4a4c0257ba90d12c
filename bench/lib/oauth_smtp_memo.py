#!/usr/bin/python3
"""The test suite's Exchange-like SMTP server (Tests/Fixtures/smtp/oauth_smtp_server.py,
same arguments) with one change for bench/oauth/run: a token the authorization server
has once called active is remembered, so later AUTHs with it cost a dictionary look-up,
as a PLAIN password check does. Exchange Online validates its JWTs locally; the
fixture's HTTPS introspection per AUTH (several ms of Python) would otherwise be
measured as if the cached token cost it.

Prints "LOOKUP introspected|remembered <ms>" per token check on stderr (never the
token), so the run can tell the one introspection apart from the cached look-ups.
"""
import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../Tests/Fixtures/smtp"))
import oauth_smtp_server as fixture  # noqa: E402

_introspect = fixture.TokenChecker.lookup
_known = {}
_lock = threading.Lock()


def remembering_lookup(self, token):
    start = time.perf_counter()
    with _lock:
        known = _known.get(token)
    if known is not None:
        source, result = "remembered", known
    else:
        source, result = "introspected", _introspect(self, token)
        if result[0]:
            with _lock:
                _known[token] = result
    print("LOOKUP %s %.3f" % (source, (time.perf_counter() - start) * 1000), file=sys.stderr, flush=True)
    return result


fixture.TokenChecker.lookup = remembering_lookup

if __name__ == "__main__":
    asyncio.run(fixture.main())
