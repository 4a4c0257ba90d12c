#!/usr/bin/env bash
# The authoritative DNS server of the test suite (issue 18): nsd on 127.0.0.1 serving
# Tests/Fixtures/dns (names in its README.md), started once per run before the
# responder so its configuration can point at it. Sourced by scripts/test.
#   dns_fixtures_start STATE [--set NAME=VALUE ...]   writes STATE/dns/env (export lines)
#                                                     and STATE/dns/responder.conf
#   dns_fixtures_stop STATE
#   dns_fixtures_free_port [EXCEPT]                   a free TCP port on 127.0.0.1 below the
#                                                     ephemeral range, for a fixture server the
#                                                     zones name (e.g. --set DISCOVERY_SSL_PORT=…)

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

dns_fixtures_start() {
    local state; state=$(realpath -m "$1"); shift
    local dir="$state/dns"
    rm -rf "$dir"; mkdir -p "$dir"
    # Its own process group with stdin held open: nsd_server.py stops nsd and exits
    # when stdin closes or on SIGTERM.
    setsid bash -c 'tail -f /dev/null | "$@"' _ \
        /usr/bin/python3 "$ROOT/Tests/Fixtures/dns/nsd_server.py" --dir "$dir/nsd" "$@" \
        >"$dir/nsd.out" 2>"$dir/nsd.err" &
    echo $! > "$dir/nsd.pid"
    local port=""
    for _ in $(seq 1 150); do
        if grep -q '^READY ' "$dir/nsd.out" 2>/dev/null; then port=$(grep -m1 '^READY ' "$dir/nsd.out" | cut -d' ' -f2); break; fi
        sleep 0.2
    done
    if [[ -z $port ]]; then
        echo "the test DNS server (nsd) did not start; see $dir/nsd.err and $dir/nsd/nsd.log" >&2
        cat "$dir/nsd.err" >&2
        return 1
    fi
    echo "export EMAILSETUP_TEST_DNS_SERVER='127.0.0.1:$port'" > "$dir/env"
    echo "dns_servers = 127.0.0.1:$port" > "$dir/responder.conf"
}

dns_fixtures_stop() {
    local state; state=$(realpath -m "$1")
    local pidfile="$state/dns/nsd.pid"
    [[ -f $pidfile ]] || return 0
    kill -- -"$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
}

# A port some test binds much later (the browser suite's discovery SMTP servers, named by
# srv.example.test's SRV records): picked below the kernel's ephemeral range so that no
# outgoing connection or port-0 listener of the run takes it in the meantime.
dns_fixtures_free_port() {
    local except=${1:-0} low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    /usr/bin/python3 - "$except" "$low" <<'PY'
import random, socket, sys
except_port, low = int(sys.argv[1]), int(sys.argv[2])
for _ in range(200):
    port = random.randrange(max(1024, low - 12000), low)
    if port == except_port:
        continue
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit("no free port below %d on 127.0.0.1" % low)
PY
}
