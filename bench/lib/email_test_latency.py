#!/usr/bin/python3
"""POST /api/setup/email_test end to end (nginx → responder → DB → SMTP sink) against
the same SMTP session run directly by `emailsetup send`, interleaved, N times each.

The direct session is timed as a process (`emailsetup send` to the sink) minus the
same process failing at once on a closed port (start-up, argument parsing, a refused
connect): what is left is the SMTP session itself. Prints one JSON object.

usage: email_test_latency.py NGINX_PORT BINARY SMTP_PORT CLOSED_PORT [N]
"""
import http.client, json, statistics, subprocess, sys, time

port, binary, smtp_port, closed_port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 40

def send_args(p):
    return [binary, "send", "--host", "127.0.0.1", "--port", p, "--security", "none", "--auth", "none",
            "--from", "bench@example.com", "--to", "ops@example.com", "--subject", "Test email"]

def timed_process(args):
    t = time.perf_counter()
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000, r.returncode

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def timed_post():
    t = time.perf_counter()
    conn.request("POST", "/api/setup/email_test/ops%40example.com", body=b"",
                 headers={"X-Requested-With": "EmailSetup", "Content-Length": "0"})
    r = conn.getresponse(); body = r.read()
    ms = (time.perf_counter() - t) * 1000
    if r.status != 200:
        raise SystemExit(f"email_test answered {r.status}: {body[:300]!r}")
    return ms

for _ in range(5):  # warm up: connections, caches, the sink
    timed_post(); timed_process(send_args(smtp_port)); timed_process(send_args(closed_port))

posts, sends, starts = [], [], []
for _ in range(n):
    posts.append(timed_post())
    ms, rc = timed_process(send_args(smtp_port))
    if rc != 0: raise SystemExit(f"emailsetup send to the sink failed ({rc})")
    sends.append(ms)
    ms, rc = timed_process(send_args(closed_port))
    if rc == 0: raise SystemExit("emailsetup send to a closed port succeeded?")
    starts.append(ms)

med = statistics.median
session = med(sends) - med(starts)
print(json.dumps({
    "n": n,
    "post_median_ms": round(med(posts), 2), "post_p90_ms": round(sorted(posts)[int(0.9 * n) - 1], 2),
    "send_process_median_ms": round(med(sends), 2), "startup_median_ms": round(med(starts), 2),
    "session_median_ms": round(session, 2), "overhead_median_ms": round(med(posts) - session, 2),
}))
