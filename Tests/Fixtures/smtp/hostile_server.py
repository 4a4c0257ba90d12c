#!/usr/bin/python3
"""A misbehaving SMTP server for the Smtp failure tests.

Binds 127.0.0.1 port 0, prints "READY <port>", serves each connection in a thread
according to --mode, and appends every byte it receives to --log (so a test can assert
that no credentials were sent). Exits when stdin closes.

Modes:
  silent            accepts, never says anything
  slow_banner       sends the banner one byte per second
  hang_after_ehlo   greets, reads EHLO, never answers
  hang_after_dot    a normal session up to the end of data, then never answers
  garbage           sends an HTTP response instead of a greeting
  long_line         sends 1 MiB without CRLF as the greeting
  ssh_banner        sends a 300-byte SSH-like banner (with control bytes and invalid UTF-8)
  banner_554_long   greets with 554 followed by that banner, and closes
  drop_during_data  closes the connection after 354 and the first bytes of content
  banner_421        greets with Postfix's "421 4.3.2 Service not available" and closes
  banner_421_busy   greets with postscreen's "421 4.3.2 All server ports are busy" and closes
  starttls_454      offers STARTTLS and answers it with Postfix's "454 4.7.0 TLS not
                    available due to local problem" (its TLS certificate or key is broken)
  close_after_ehlo  greets, reads EHLO and closes without a word (a policy close)
  ehlo_421_gmail    answers EHLO with Gmail's "421-4.7.0 Try again later, closing
                    connection. (EHLO)" and closes
  mail_451_busy     answers MAIL with Exchange Online's "451 4.7.500 Server busy.
                    Please try again later from [127.0.0.1]. (S77719)"
  auth_basic_off    offers AUTH and answers it with Exchange Online's "535 5.7.139
                    Authentication unsuccessful, basic authentication is disabled."
  auth_5730         offers AUTH and answers it with Exchange Online's "550 5.7.30 Basic
                    authentication is not supported for Client Submission."
  ehlo_300_lines    answers EHLO with 300 lines (RFC 5321 sets no limit)
  auth_535          rejects AUTH with 535 5.7.8
  rcpt_550          rejects every RCPT with 550 5.1.1
  rcpt_mixed        rejects RCPT for addresses starting with "bad" with 550 5.1.1
  data_451          answers the end of data with 451 4.3.0
  no_starttls       offers AUTH PLAIN LOGIN but no STARTTLS
  starttls_inject   answers STARTTLS with "220" plus an injected plaintext reply in
                    the same packet, then does TLS (needs --cert/--key)
  helo_only         answers EHLO with 502, HELO with 250
  relay_denied      answers RCPT with 554 5.7.1 Relay access denied (Postfix's words)
  starttls_stripped offers neither STARTTLS nor AUTH (as if a middlebox stripped them)
                    and answers MAIL with 530 5.7.0 Must issue a STARTTLS command first
  normal            (or any other name) a well-behaved session
  backlog_full      listens with a full accept queue and never accepts, so new SYNs
                    are dropped and connect() times out (a firewall that drops)
"""
import argparse
import os
import socket
import ssl
import sys
import threading
import time

ARGS = None
LOG_LOCK = threading.Lock()


def log(data):
    if ARGS.log:
        with LOG_LOCK, open(ARGS.log, "ab") as f:
            f.write(data)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def readline(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            log(data)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def wait_closed(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                log(data)
        except OSError:
            return


def ehlo_lines(mode, tls_active):
    lines = ["250-hostile.test", "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-8BITMIME"]
    if mode == "starttls_inject" and not tls_active:
        lines.append("250-STARTTLS")
    if mode == "starttls_454":
        lines.append("250-STARTTLS")
    if mode == "ehlo_300_lines":
        lines += ["250-X-VENDOR-EXTENSION-%03d" % i for i in range(300)]
    if mode in ("auth_535", "no_starttls", "auth_basic_off", "auth_5730") or (mode == "starttls_inject" and tls_active):
        lines.append("250-AUTH PLAIN LOGIN")
    lines.append("250 SIZE 10000000")
    return "\r\n".join(lines) + "\r\n"


# What an internal service might say first: an SSH banner that goes on for 300
# bytes, with an escape sequence, a NUL, a bidi override and invalid UTF-8 in it.
SSH_BANNER = (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 internal-bastion.corp \x1b[31mred\x00"
              + "\u202etxet desrever".encode() + b"\xff\xfe" + b" secret-build-id-" + b"0123456789abcdef" * 20)[:300]


def serve(sock):
    mode = ARGS.mode
    c = Conn(sock)
    try:
        if mode == "silent":
            return c.wait_closed()
        if mode == "slow_banner":
            for ch in "220 slow.test ESMTP a very slow banner indeed\r\n":
                c.send(ch)
                time.sleep(1)
            return c.wait_closed()
        if mode == "garbage":
            c.send("HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html></html>\r\n")
            return c.wait_closed()
        if mode == "long_line":
            c.send(b"A" * (1024 * 1024))
            return c.wait_closed()
        if mode == "ssh_banner":
            c.send(SSH_BANNER + b"\r\n")
            return c.wait_closed()
        if mode == "banner_554_long":
            c.send(b"554 " + SSH_BANNER + b"\r\n")
            return
        if mode == "banner_421":
            c.send("421 4.3.2 Service not available\r\n")
            return
        if mode == "banner_421_busy":
            c.send("421 4.3.2 All server ports are busy\r\n")
            return
        c.send("220 hostile.test ESMTP\r\n")
        tls_active = False
        while True:
            line = c.readline()
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                if mode == "hang_after_ehlo":
                    return c.wait_closed()
                if mode == "close_after_ehlo":
                    return
                if mode == "ehlo_421_gmail":
                    c.send("421-4.7.0 Try again later, closing connection. (EHLO)\r\n"
                           "421 4.7.0  For more information, go to https://support.google.com/a/answer/3221692 - gsmtp\r\n")
                    return
                if mode == "helo_only":
                    c.send("502 5.5.1 EHLO not implemented\r\n")
                    continue
                c.send(ehlo_lines(mode, tls_active))
            elif verb == b"HELO":
                c.send("250 hostile.test\r\n")
            elif verb == b"STARTTLS" and mode == "starttls_454":
                c.send("454 4.7.0 TLS not available due to local problem\r\n")
            elif verb == b"STARTTLS" and mode == "starttls_inject":
                # CVE-2011-0411 style: plaintext that must not be read as TLS-protected.
                c.send("220 2.0.0 go ahead\r\n250-injected.test\r\n250 AUTH PLAIN\r\n")
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(ARGS.cert, ARGS.key)
                # Our own buffer may hold bytes sent by the client before the handshake; none expected.
                c.sock = context.wrap_socket(c.sock, server_side=True)
                c.buf = b""
                tls_active = True
            elif verb == b"AUTH":
                if mode == "auth_535":
                    c.send("535 5.7.8 Authentication credentials invalid\r\n")
                elif mode == "auth_basic_off":
                    c.send("535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [hostile.test]\r\n")
                elif mode == "auth_5730":
                    c.send("550 5.7.30 Basic authentication is not supported for Client Submission. [hostile.test]\r\n")
                elif line.strip().upper() == b"AUTH LOGIN":
                    c.send("334 VXNlcm5hbWU6\r\n")
                    c.readline()
                    c.send("334 UGFzc3dvcmQ6\r\n")
                    c.readline()
                    c.send("235 2.7.0 OK\r\n")
                else:
                    c.send("235 2.7.0 OK\r\n")
            elif verb == b"MAIL":
                if mode == "starttls_stripped":
                    c.send("530 5.7.0 Must issue a STARTTLS command first\r\n")
                elif mode == "mail_451_busy":
                    c.send("451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77719) [hostile.test]\r\n")
                else:
                    c.send("250 2.1.0 OK\r\n")
            elif verb == b"RCPT":
                address = line.split(b"<", 1)[-1]
                if mode == "relay_denied":
                    c.send("554 5.7.1 <%s>: Relay access denied\r\n" % address.split(b">", 1)[0].decode("ascii", "replace"))
                elif mode == "rcpt_550" or (mode == "rcpt_mixed" and address.lower().startswith(b"bad")):
                    c.send("550 5.1.1 no such user here\r\n")
                else:
                    c.send("250 2.1.5 OK\r\n")
            elif verb == b"DATA":
                c.send("354 go ahead\r\n")
                if mode == "drop_during_data":
                    c.readline()
                    c.sock.shutdown(socket.SHUT_RDWR)
                    c.sock.close()
                    return
                while c.readline() != b".\r\n":
                    pass
                if mode == "hang_after_dot":
                    return c.wait_closed()
                if mode == "data_451":
                    c.send("451 4.3.0 temporary local problem, try later\r\n")
                else:
                    c.send("250 2.0.0 OK queued\r\n")
            elif verb == b"RSET" or verb == b"NOOP":
                c.send("250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                c.send("221 2.0.0 bye\r\n")
                return
            else:
                c.send("500 5.5.2 what?\r\n")
    except (EOFError, OSError, ssl.SSLError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--log")
    p.add_argument("--cert")
    p.add_argument("--key")
    ARGS = p.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    if ARGS.mode == "backlog_full":
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the accept queue; later SYNs are dropped
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.3)
        print("READY %d" % port, flush=True)
        sys.stdin.read()
        os._exit(0)
    listener.listen(16)
    print("READY %d" % listener.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
