#!/usr/bin/python3
"""The phases of bench/load/run (see its header). Prints one line per check and a
summary; exits 1 if any check failed. Standard library only."""
import argparse, collections, http.client, json, os, re, signal, statistics, subprocess, sys, threading, time, zlib

A = argparse.ArgumentParser()
A.add_argument("--state"); A.add_argument("--root")
A.add_argument("--port-a", type=int); A.add_argument("--port-b", type=int)
A.add_argument("--seconds", type=float, default=8)
ARGS = A.parse_args()
STATE, ROOT, SECONDS = ARGS.state, ARGS.root, ARGS.seconds
HDR = {"X-Requested-With": "EmailSetup", "Content-Type": "application/json"}
FAILED = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what, flush=True)
    if not ok:
        FAILED.append(what)


class Client:
    """One keep-alive connection; reconnects after any error."""
    def __init__(self, port, timeout=30):
        self.port, self.timeout, self.conn = port, timeout, None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
                self.conn.request(method, path, body=data, headers=headers or {})
                r = self.conn.getresponse()
                raw = r.read()
                try:
                    js = json.loads(raw)
                except ValueError:
                    js = None
                return r.status, {k.lower(): v for k, v in r.getheaders()}, js
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 1 or method == "POST":
                    return 0, {}, None  # 0: no HTTP answer at all (connection failed)


def tag_set(tag):
    return {"smtp_host": f"{tag}.example", "smtp_username": tag, "from_address": f"{tag}@example.com",
            "smtp_port": str(1024 + zlib.crc32(tag.encode()) % 60000)}


def torn(data):
    """None if the settings are one writer's set, else why not."""
    tag = data.get("smtp_username", "")
    want = tag_set(tag)
    bad = {k: data.get(k) for k in want if data.get(k) != want[k]}
    return None if not bad else f"{tag}: {bad}"


def version_of(headers):
    m = re.fullmatch(r'"(\d+)"', headers.get("etag", ""))
    return int(m.group(1)) if m else None


class Phase:
    """Readers and If-Match writers against one nginx port, for `seconds`."""
    def __init__(self, port, readers=2, writers=3, name=""):
        self.port, self.readers, self.writers, self.name = port, readers, writers, name
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.events = []       # (time, kind, status)
        self.saves = []        # (version, tag) for every 200 save
        self.torn = []
        self.stale = []        # a writer saw a version older than its own acknowledged save
        self.conflicts = 0

    def record(self, kind, status):
        with self.lock:
            self.events.append((time.monotonic(), kind, status))

    def reader(self, i):
        c = Client(self.port)
        while not self.stop.is_set():
            status, headers, js = c.request("GET", "/api/setup/email_smtp")
            self.record("get", status)
            if status == 200:
                data = js["data"]
                why = torn(data)
                if why is None and data.get("smtp_settings_version") != str(version_of(headers)):
                    why = f"ETag {headers.get('etag')} vs version {data.get('smtp_settings_version')}"
                if why:
                    with self.lock:
                        self.torn.append(why)
            elif status != 200:
                time.sleep(0.02)

    def writer(self, w):
        c = Client(self.port)
        n, mine = 0, 0
        while not self.stop.is_set():
            status, headers, js = c.request("GET", "/api/setup/email_smtp")
            self.record("get", status)
            if status != 200:
                time.sleep(0.02)
                continue
            v = version_of(headers)
            if v < mine:
                with self.lock:
                    self.stale.append(f"writer {w} saved version {mine}, then read {v}")
            n += 1
            tag = f"{self.name}w{w}n{n}"
            status, headers, js = c.request("POST", "/api/setup/email_smtp", {"data": tag_set(tag)},
                                            dict(HDR, **{"If-Match": f'"{v}"'}))
            self.record("post", status)
            if status == 200:
                mine = version_of(headers)
                with self.lock:
                    self.saves.append((mine, tag))
            elif status == 409:
                with self.lock:
                    self.conflicts += 1
            else:
                time.sleep(0.02)

    def run(self, seconds, during=None):
        threads = [threading.Thread(target=self.reader, args=(i,)) for i in range(self.readers)]
        threads += [threading.Thread(target=self.writer, args=(i,)) for i in range(self.writers)]
        self.started = time.monotonic()
        for t in threads:
            t.start()
        if during:
            during(self)
        remaining = seconds - (time.monotonic() - self.started)
        if remaining > 0:
            time.sleep(remaining)
        self.stop.set()
        for t in threads:
            t.join()
        return self

    def statuses(self, kind=None, since=None, until=None):
        return collections.Counter(s for t, k, s in self.events
                                   if (kind is None or k == kind) and (since is None or t >= since) and (until is None or t < until))


def db(sql):
    env = dict(os.environ)
    out = subprocess.run(["bash", "-c", f'eval "$({ROOT}/scripts/lib/mariadb.sh env {STATE})"; '
                          'mariadb --no-defaults --protocol=socket --socket="$EMAILSETUP_DB_SOCKET" -u"$EMAILSETUP_DB_USER" '
                          '-p"$(cat "$EMAILSETUP_DB_PASSWORD_FILE")" -N -B "$EMAILSETUP_DB_NAME" -e "$0"', sql],
                         capture_output=True, text=True, env=env, timeout=30)
    if out.returncode != 0:
        raise SystemExit(f"mariadb: {out.stderr}")
    return [line.split("\t") for line in out.stdout.splitlines()]


def current_version():
    rows = db("SELECT value FROM information WHERE label = 'smtp_settings_version'")
    return int(rows[0][0]) if rows else 0


def check_no_lost_update(phase, v0, v1, ambiguous):
    history = {int(v): json.loads(s.replace("\\\\", "\\")) for v, s in db(
        f"SELECT version, snapshot FROM settings_history WHERE version > {v0} AND version <= {v1}")}
    versions = [v for v, _ in phase.saves]
    check(len(versions) == len(set(versions)), f"{len(versions)} successful saves got {len(set(versions))} distinct versions")
    lost = [f"v{v} {tag}" for v, tag in phase.saves
            if any(history.get(v, {}).get(k) != x for k, x in tag_set(tag).items())]
    check(not lost, f"every 200 save is in the history with its values (lost: {lost[:3]})")
    if ambiguous == 0:
        check(v1 - v0 == len(versions), f"versions {v0}→{v1}: {v1 - v0} new = {len(versions)} successful saves")
    else:
        check(len(versions) <= v1 - v0 <= len(versions) + ambiguous,
              f"versions {v0}→{v1}: {v1 - v0} new, {len(versions)} successful saves + at most {ambiguous} unanswered")
    check(not phase.torn, f"no torn read ({len(phase.torn)}: {phase.torn[:2]})")
    check(not phase.stale, f"no writer read a version older than its own save ({phase.stale[:2]})")


def wrk(port, seconds, connections=16):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}/api/setup/email_smtp"], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p99, int(bad.group(1)) if bad else 0, out


def child_pid(r):
    try:
        return int(open(f"{STATE}/{r}-child.pid").read())
    except (OSError, ValueError):
        return None


def fmt(counter):
    return ", ".join(f"{k}×{v}" for k, v in sorted(counter.items()))


seed = Client(ARGS.port_a)
status, _, _ = seed.request("POST", "/api/setup/email_smtp", {"data": tag_set("seed")}, HDR)
if status != 200:
    raise SystemExit(f"seeding the settings failed: {status}")

# 1 ------------------------------------------------------------------------
print(f"phase 1: mixed readers, If-Match writers and wrk GET, two responders, {SECONDS:.0f} s", flush=True)
v0 = current_version()
box = {}
def with_wrk(p):
    box["wrk"] = wrk(ARGS.port_a, int(SECONDS) - 1)
p1 = Phase(ARGS.port_a, name="p1").run(SECONDS, with_wrk)
v1 = current_version()
rps, p99, bad, _ = box["wrk"]
print(f"  wrk: {rps:.0f} req/s, p99 {p99:.1f} ms, non-2xx {bad}; clients: {fmt(p1.statuses())}; "
      f"{len(p1.saves)} saves, {p1.conflicts} conflicts (409)")
check(bad == 0, "wrk: no non-2xx")
check(set(p1.statuses("get")) <= {200}, f"GET: only 200 ({fmt(p1.statuses('get'))})")
check(set(p1.statuses("post")) <= {200, 409}, f"POST: only 200/409 ({fmt(p1.statuses('post'))})")
check(len(p1.saves) > 0 and p1.conflicts > 0, "writers both saved and collided (the check is real)")
check_no_lost_update(p1, v0, v1, 0)

# 2 ------------------------------------------------------------------------
print("phase 2: responder 1 killed (SIGKILL) under load, nginx upstream of both", flush=True)
v0 = current_version()
killed = {}
def kill_r1(p):
    time.sleep(SECONDS / 3)
    killed["pid"], killed["at"] = child_pid("r1"), time.monotonic()
    os.kill(killed["pid"], signal.SIGKILL)
p2 = Phase(ARGS.port_a, name="p2").run(SECONDS, kill_r1)
v1 = current_version()
new = child_pid("r1")
print(f"  clients: {fmt(p2.statuses())}; r1 {killed['pid']} → {new}")
check(set(p2.statuses("get")) <= {200}, f"GET: only 200 — nginx used responder 2 ({fmt(p2.statuses('get'))})")
posts_5xx = sum(n for s, n in p2.statuses("post").items() if s not in (200, 409))
check(set(p2.statuses("post")) <= {200, 409, 502} and posts_5xx <= p2.writers,
      f"POST: 200/409, and 502 only for a save in flight on the killed responder ({fmt(p2.statuses('post'))})")
check(new is not None and new != killed["pid"] and os.path.exists(f"/proc/{new}"), "the supervisor restarted responder 1")
check_no_lost_update(p2, v0, v1, posts_5xx)

# 3 ------------------------------------------------------------------------
print("phase 3: responder 1 killed under load, nginx upstream of responder 1 only", flush=True)
time.sleep(0.5)
v0 = current_version()
killed = {}
def kill_r1_single(p):
    time.sleep(SECONDS / 3)
    killed["pid"], killed["at"] = child_pid("r1"), time.monotonic()
    os.kill(killed["pid"], signal.SIGKILL)
p3 = Phase(ARGS.port_b, readers=3, writers=1, name="p3").run(SECONDS, kill_r1_single)
v1 = current_version()
before = p3.statuses(until=killed["at"])
after = [(t, s) for t, k, s in p3.events if t >= killed["at"]]
# The outage is the span of 502s (SIGKILL is asynchronous: a response in flight may
# still complete after the first 502); recovery is the first 200 after the last 502.
times_502 = [t for t, s in after if s == 502]
first_502, last_502 = (times_502[0], times_502[-1]) if times_502 else (killed["at"], killed["at"])
recovered = next((t for t, s in after if s == 200 and t > last_502), None)
late = collections.Counter(s for t, s in after if recovered and t > recovered + 0.5 and s != 200)
print(f"  before: {fmt(before)}; after the kill: {fmt(collections.Counter(s for _, s in after))}; "
      f"502s for {(last_502 - first_502) * 1000:.0f} ms, then 200 again")
check(set(before) <= {200, 409}, "before the kill: only 200/409")
check(502 in {s for _, s in after}, "nginx answered 502 while the responder was down")
check(set(s for _, s in after) <= {200, 409, 502}, "no status other than 200/409/502 after the kill")
check(recovered is not None and recovered - killed["at"] < 5, "200 again within 5 s (supervisor restart)")
check(not late, f"nothing but 200/409 from 0.5 s after recovery ({fmt(late)})")
check_no_lost_update(p3, v0, v1, sum(n for s, n in p3.statuses("post").items() if s not in (200, 409)))

# 4 ------------------------------------------------------------------------
print("phase 4: MariaDB SIGKILLed under load, restarted 2 s later", flush=True)
time.sleep(0.5)
v0 = current_version()
outage = {}
def kill_db(p):
    time.sleep(SECONDS / 4)
    pid = int(open(f"{STATE}/mariadb.pid").read())
    outage["down"] = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    time.sleep(2)
    subprocess.run([f"{ROOT}/scripts/lib/mariadb.sh", "start", STATE], check=True)
    outage["up"] = time.monotonic()
p4 = Phase(ARGS.port_a, name="p4").run(max(SECONDS, 8), kill_db)
v1 = current_version()
during = p4.statuses(since=outage["down"], until=outage["up"] + 2)
before, after = p4.statuses(until=outage["down"]), p4.statuses(since=outage["up"] + 2)
print(f"  before: {fmt(before)}; outage (+2 s grace): {fmt(during)}; after: {fmt(after)}; "
      f"MariaDB back after {(outage['up'] - outage['down']):.1f} s")
check(set(before) <= {200, 409}, "before the outage: only 200/409")
check(set(during) <= {200, 409, 502, 503} and (503 in during or 502 in during), "during the outage: 503 (or 502), nothing else")
check(set(after) <= {200, 409} and after.get(200, 0) > 0, "2 s after MariaDB is back: only 200/409")
check_no_lost_update(p4, v0, v1, sum(n for s, n in p4.statuses("post").items() if s not in (200, 409)))

# 5 ------------------------------------------------------------------------
print("phase 5: SMTP server that never greets; test emails in flight while GETs go on", flush=True)
stall = subprocess.Popen(["/usr/bin/python3", f"{ROOT}/Tests/Fixtures/smtp/hostile_server.py", "--mode", "silent",
                          "--log", f"{STATE}/silent.log"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
stall_port = int(stall.stdout.readline().split()[1])
status, _, js = seed.request("POST", "/api/setup/email_smtp", {"data": {
    "smtp_host": "127.0.0.1", "smtp_port": str(stall_port), "smtp_connection_type": "None",
    "smtp_authentication_type": "None", "smtp_connect_timeout": "2", "smtp_command_timeout": "2"}}, HDR)
check(status == 200, f"settings point at the silent server ({status} {js if status != 200 else ''})")
half = max(3, int(SECONDS / 2))
base_rps, base_p99, base_bad, _ = wrk(ARGS.port_a, half, connections=8)
tests = []
stop = threading.Event()
def tester():
    c = Client(ARGS.port_a, timeout=60)
    while not stop.is_set():
        t = time.monotonic()
        status, _, js = c.request("POST", "/api/setup/email_test/ops%40example.com", None, HDR)
        tests.append((status, time.monotonic() - t, (js or {}).get("diagnosis", {}).get("stage")))
testers = [threading.Thread(target=tester) for _ in range(3)]
for t in testers:
    t.start()
time.sleep(0.3)
rps, p99, bad, _ = wrk(ARGS.port_a, half, connections=8)
stop.set()
for t in testers:
    t.join()
stall.stdin.close(); stall.wait(timeout=10)
longest = max(d for _, d, _ in tests)
print(f"  GET without stalls: {base_rps:.0f} req/s, p99 {base_p99:.1f} ms; with {len(testers)} test emails stalled: "
      f"{rps:.0f} req/s, p99 {p99:.1f} ms; test emails: {fmt(collections.Counter(s for s, _, _ in tests))}, "
      f"longest {longest:.2f} s, stages {set(st for _, _, st in tests)}")
check(base_bad == 0 and bad == 0, "GET: no non-2xx")
check(tests and all(s == 504 for s, _, _ in tests), "every stalled test email answered 504 (timeout)")
check(longest < 2 + 2 + 1.5, f"no worker held past its deadline (longest {longest:.2f} s; connect 2 s + command 2 s)")
check(p99 < base_p99 * 2 + 3, f"GET p99 unchanged within noise ({base_p99:.1f} → {p99:.1f} ms)")

print()
if FAILED:
    print(f"load/fault: {len(FAILED)} check(s) FAILED")
    sys.exit(1)
print("load/fault: all checks passed")
