#!/usr/bin/python3
"""The authoritative DNS server of the tests: Debian's nsd on 127.0.0.1, serving the
zone templates of this directory (README.md lists the names).

  nsd_server.py --dir STATE [--port 0] [--set NAME=VALUE ...] [--zones DIR]

Every `<zone>.zone` file of --zones (default: this directory) is a template for the
zone <zone>: each `@NAME@` outside comment lines is replaced by the --set value of NAME, else by the
file's own `; default @NAME@ = VALUE` line; a placeholder with neither stops
start-up. The filled zones, nsd.conf, its pid, log and state files all go to STATE,
nothing to nsd's root-owned defaults (no chroot, no user switch, no database, no
remote control). Port 0 picks a free one (UDP and TCP). Prints "READY <port>" once
nsd answers, and stops nsd and exits when stdin closes or on SIGTERM, so a test
that dies never leaves it behind.
"""
import argparse
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
DEFAULT = re.compile(r"^;\s*default\s+@([A-Z][A-Z0-9_]*)@\s*=\s*(\S+)\s*$", re.M)


def fill(text, values, path):
    defaults = dict(DEFAULT.findall(text))

    def replace(match):
        name = match.group(1)
        if name in values:
            return values[name]
        if name in defaults:
            return defaults[name]
        sys.exit("%s: no value for @%s@ (pass --set %s=VALUE or add `; default @%s@ = VALUE`)"
                 % (path, name, name, name))
    # Comment lines (the "; default" ones among them) are left as they are.
    return "\n".join(line if line.lstrip().startswith(";") else PLACEHOLDER.sub(replace, line)
                     for line in text.split("\n"))


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (nsd binds both)."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    sys.exit("no free port for nsd")


def answers(port, zone):
    """Whether nsd answers a SOA question for `zone` on UDP."""
    question = b"".join(bytes([len(label)]) + label.encode() for label in zone.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x4E53, 0, 1, 0, 0, 0) + question + struct.pack(">HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        try:
            probe.sendto(packet, ("127.0.0.1", port))
            reply = probe.recv(4096)
        except OSError:
            return False
    return len(reply) >= 12 and reply[:2] == packet[:2] and reply[3] & 0x0F == 0


def write_config(state, zonesdir, port, zones):
    lines = [
        "server:",
        "    ip-address: 127.0.0.1",
        "    port: %d" % port,
        "    do-ip4: yes",
        "    do-ip6: no",
        '    username: ""',
        '    chroot: ""',
        '    zonesdir: "%s"' % zonesdir,
        '    pidfile: "%s/nsd.pid"' % state,
        '    database: ""',
        '    zonelistfile: "%s/zone.list"' % state,
        '    xfrdfile: "%s/xfrd.state"' % state,
        '    xfrdir: "%s/xfr"' % state,
        '    logfile: "%s/nsd.log"' % state,
        "    server-count: 1",
        "    verbosity: 1",
        "    hide-version: yes",
        "    hide-identity: yes",
        "    refuse-any: yes",
        "remote-control:",
        "    control-enable: no",
    ]
    for zone in zones:
        lines += ["zone:", "    name: %s" % zone, "    zonefile: %s.zone" % zone]
    path = os.path.join(state, "nsd.conf")
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="state directory (created)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--zones", default=HERE)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()

    values = {}
    for item in args.set:
        name, _, value = item.partition("=")
        values[name] = value
    state = os.path.abspath(args.dir)
    zonesdir = os.path.join(state, "zones")
    os.makedirs(zonesdir, exist_ok=True)
    os.makedirs(os.path.join(state, "xfr"), exist_ok=True)
    zones = []
    for entry in sorted(os.listdir(args.zones)):
        if not entry.endswith(".zone"):
            continue
        path = os.path.join(args.zones, entry)
        with open(path) as template:
            text = fill(template.read(), values, path)
        with open(os.path.join(zonesdir, entry), "w") as out:
            out.write(text)
        zones.append(entry[: -len(".zone")])
    if not zones:
        sys.exit("no *.zone files in %s" % args.zones)
    probe_zone = "example.test" if "example.test" in zones else zones[0]

    nsd = None
    for attempt in range(3):
        port = args.port or free_port()
        config = write_config(state, zonesdir, port, zones)
        log = open(os.path.join(state, "nsd.stderr"), "a")
        nsd = subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", config], stdin=subprocess.DEVNULL,
                               stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and nsd.poll() is None and not answers(port, probe_zone):
            time.sleep(0.05)
        if nsd.poll() is None and answers(port, probe_zone):
            break
        stop(nsd)
        nsd = None
        if args.port:
            break
    if nsd is None:
        sys.exit("nsd did not start; see %s/nsd.log and %s/nsd.stderr" % (state, state))

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY %d" % port, flush=True)
    while not done.wait(0.5):
        if nsd.poll() is not None:
            sys.exit("nsd exited (status %s); see %s/nsd.log" % (nsd.returncode, state))
    stop(nsd)


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(3)


if __name__ == "__main__":
    main()
