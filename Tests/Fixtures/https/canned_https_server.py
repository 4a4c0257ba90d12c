#!/usr/bin/python3
"""A canned HTTPS server for the OAuth module's HTTPSClient and OAuthClient tests.

Binds 127.0.0.1 port 0 with --cert/--key, prints "READY <port>", serves each
connection in a thread, appends every request as one JSON line (method, path, headers,
body) to --log, and exits when stdin closes. What it answers is in the URL, so a test
says what it wants without a second channel:

  /answer?status=N&body=TEXT[&type=T]   answers status N with TEXT (default type application/json)
  /seq?key=K&step=N:TEXT&step=N:TEXT…   the i-th request for key K gets the i-th step (the last repeats)
  /slow                                 reads the request, never answers
  /big?bytes=N                          N bytes of JSON-ish filler with a Content-Length
  /big-unsized?bytes=N                  N bytes with no Content-Length (HTTP/1.0, ends at close)
  /redirect                             302 to https://example.org/token
"""
import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
COUNTERS = {}
ARGS = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        with LOCK, open(ARGS.log, "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()},
                                  "body": body}) + "\n")
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path == "/answer":
            self.answer(int(query.get("status", ["200"])[0]), query.get("body", [""])[0],
                        query.get("type", ["application/json"])[0])
        elif url.path == "/seq":
            key = query.get("key", [""])[0]
            steps = query.get("step", ["200:{}"])
            with LOCK:
                index = COUNTERS.get(key, 0)
                COUNTERS[key] = index + 1
            status, text = steps[min(index, len(steps) - 1)].split(":", 1)
            self.answer(int(status), text, "application/json")
        elif url.path == "/slow":
            time.sleep(120)
        elif url.path == "/big":
            size = int(query.get("bytes", ["200000"])[0])
            self.answer(200, "x" * size, "application/json")
        elif url.path == "/big-unsized":
            size = int(query.get("bytes", ["200000"])[0])
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(size // 1000):
                    self.wfile.write(b"x" * 1000)
            except OSError:
                pass
            self.close_connection = True
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "https://example.org/token")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.answer(404, '{"error":"not_found"}', "application/json")

    def answer(self, status, text, content_type):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", required=True)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ARGS.cert, ARGS.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY %d" % server.server_address[1], flush=True)
    sys.stdin.read()  # the test process holds stdin open; EOF means it is gone


if __name__ == "__main__":
    main()
