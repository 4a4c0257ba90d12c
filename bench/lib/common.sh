#!/usr/bin/env bash
# Shared by bench/run and bench/load/run (sourced): a private MariaDB, responders on
# unix sockets and an nginx in front of them, all under one state folder.
#   bench_build                          release build → $BIN (unless BIN is set)
#   bench_prepare STATE [CONFIG_LINES]   MariaDB + emailsetup.conf (+ migrate)
#   bench_responder STATE NAME THREADS   start `serve` on STATE/NAME.sock; pid in STATE/NAME.pid
#   bench_nginx STATE PORT SOCKET…       nginx with one upstream of these sockets
#   bench_stop_all STATE                 stop everything started here
#   bench_parse_wrk FILE                 "req/s p99_ms non2xx socket_errors(yes|no)" of a wrk --latency run
#   free_port                            a free loopback port
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export PATH="/opt/swift/usr/bin:$PATH"
source "$ROOT/scripts/lib/services.sh"

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The release build as deployed (README "Deploying"), the same command scripts/run
# uses: Package.swift links the Swift runtime statically and packs relocations in a
# release build on Linux (issue 19), so nothing else needs saying here.
bench_build() {
    # BIN=/path/to/emailsetup measures that binary instead (e.g. a build from before a change).
    if [[ -n ${BIN:-} ]]; then [[ -x $BIN ]] || { echo "BIN=$BIN is not executable" >&2; exit 2; }; return 0; fi
    echo "building (release)…" >&2
    (cd "$ROOT" && swift build -c release --product emailsetup 2>&1 | tail -1 >&2)
    BIN="$ROOT/.build/release/emailsetup"
    [[ -x $BIN ]] || { echo "release build failed" >&2; exit 1; }
}

bench_prepare() {
    local state=$1 extra=${2:-}
    mkdir -p "$state"
    "$ROOT/scripts/lib/mariadb.sh" start "$state"
    write_config "$state" "$extra"
    "$BIN" migrate --config "$state/emailsetup.conf" >>"$state/responder.log" 2>&1 \
        || { echo "migrate failed; see $state/responder.log" >&2; exit 1; }
}

bench_responder() {
    local state=$1 name=$2 threads=$3
    local sock="$state/$name.sock"
    "$BIN" serve --socket "$sock" --threads "$threads" --config "$state/emailsetup.conf" \
        >>"$state/$name.log" 2>&1 </dev/null &
    echo $! > "$state/$name.pid"
    for _ in $(seq 1 100); do [[ -S $sock ]] && return 0; sleep 0.1; done
    echo "responder $name did not start; see $state/$name.log" >&2; tail -5 "$state/$name.log" >&2; exit 1
}

bench_stop_pidfile() {
    local pidfile=$1
    [[ -f $pidfile ]] || return 0
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

bench_nginx() {
    local state=$1 port=$2; shift 2
    local upstreams="" s
    for s in "$@"; do upstreams+="        server unix:$s max_fails=0;"$'\n'; done
    mkdir -p "$state/nginx-tmp"
    local conf="$state/nginx.conf"
    /usr/bin/python3 - "$ROOT/bench/lib/nginx.conf.template" "$conf" "$state" "$ROOT" "$port" "$upstreams" <<'PY'
import sys
src, dst, state, root, port, ups = sys.argv[1:]
text = open(src).read().replace("@STATE@", state).replace("@ROOT@", root).replace("@PORT@", port).replace("@UPSTREAMS@", ups.rstrip("\n"))
open(dst, "w").write(text)
PY
    nginx_stop "$state"
    nginx -q -t -p "$state" -e "$state/nginx-error.log" -c "$conf" || { echo "nginx configuration test failed" >&2; exit 1; }
    nginx -p "$state" -e "$state/nginx-error.log" -c "$conf" || { echo "nginx did not start" >&2; exit 1; }
}

bench_stop_all() {
    local state=$1 f
    nginx_stop "$state" 2>/dev/null || true
    for f in "$state"/*.pid; do
        [[ -e $f ]] || continue
        case $(basename "$f") in nginx.pid|mariadb.pid) ;; *) bench_stop_pidfile "$f" ;; esac
    done
    "$ROOT/scripts/lib/mariadb.sh" stop "$state" 2>/dev/null || true
}

bench_parse_wrk() {
    /usr/bin/python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
err = re.search(r"Socket errors: (.*)", text)
print(f"{rps:.0f} {p99:.2f} {bad.group(1) if bad else 0} {'yes' if err else 'no'}")
PY
}
