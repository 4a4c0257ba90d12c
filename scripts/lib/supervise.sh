#!/usr/bin/env bash
# A small supervisor for the local run and the tests: runs a command, and when it
# exits for any reason other than our own stop, runs it again after a back-off
# (0.1 s doubling to 5 s; reset once a run lasted 10 s) — except after exit status
# 2, the responder's "cannot start" (bad configuration). SIGTERM/SIGINT stop it:
# the child gets SIGTERM (finishing its in-flight requests), then SIGKILL after
# 10 s, and the supervisor exits with the child's status.
#
#   supervise.sh CHILD_PIDFILE -- COMMAND [ARGS…]
#
# CHILD_PIDFILE always holds the pid of the running child (for fault tests that
# kill it). Restarts are logged on stderr as JSON lines, like the responder's.
# In production systemd (Restart=on-failure) does this job; see deploy/systemd/.
set -uo pipefail

childpid_file=${1:?usage: supervise.sh CHILD_PIDFILE -- COMMAND [ARGS…]}
shift
[[ ${1:-} == -- ]] && shift
(( $# > 0 )) || { echo "usage: supervise.sh CHILD_PIDFILE -- COMMAND [ARGS…]" >&2; exit 2; }

child=""
stopping=0
on_stop() {
    stopping=1
    [[ -n $child ]] && kill -TERM "$child" 2>/dev/null
}
trap on_stop TERM INT

log() {
    printf '{"ts":"%s","level":"%s","msg":"%s","by":"supervisor"%s}\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$2" "${3:-}" >&2
}

backoff_ms=100
status=0
while (( ! stopping )); do
    started=$(date +%s%N)
    "$@" &
    child=$!
    echo "$child" > "$childpid_file"
    # `wait` returns early when a trapped signal arrives; keep waiting for the child,
    # bounded once we are stopping, so a hung child cannot keep us alive forever.
    deadline=""
    while kill -0 "$child" 2>/dev/null; do
        wait "$child"
        status=$?
        if (( stopping )); then
            [[ -z $deadline ]] && deadline=$(( $(date +%s) + 10 ))
            if kill -0 "$child" 2>/dev/null; then
                (( $(date +%s) >= deadline )) && kill -KILL "$child" 2>/dev/null
                sleep 0.1
            fi
        fi
    done
    wait "$child" 2>/dev/null
    last=$?
    (( last != 127 )) && status=$last   # 127: already reaped by the wait above
    (( stopping )) && break
    if (( status == 2 )); then
        # emailsetup exits 2 for a start-up error (bad configuration, key file modes):
        # starting it again cannot help (systemd: RestartPreventExitStatus=2).
        log error "child refused to start (exit status 2); not restarting" ",\"pid\":\"$child\""
        break
    fi
    ran_ms=$(( ($(date +%s%N) - started) / 1000000 ))
    (( ran_ms >= 10000 )) && backoff_ms=100
    log warning "child exited; restarting" ",\"pid\":\"$child\",\"status\":\"$status\",\"ran_ms\":\"$ran_ms\",\"restart_in_ms\":\"$backoff_ms\""
    # An interruptible sleep: SIGTERM during the back-off stops at once.
    sleep "$(printf '%d.%03d' $((backoff_ms / 1000)) $((backoff_ms % 1000)))" &
    wait $! 2>/dev/null
    backoff_ms=$(( backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2 ))
done
rm -f "$childpid_file"
exit "$status"
