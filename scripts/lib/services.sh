#!/usr/bin/env bash
# Starting and stopping the responder and nginx of one state folder; sourced by
# scripts/run and scripts/test. Everything lives under $STATE.
#   responder_start STATE BINARY    responder_stop STATE   (supervised: restarted when it dies)
#   nginx_start STATE PORT          nginx_stop STATE
#   write_config STATE [EXTRA_LINES]  write_htpasswd STATE USER PASSWORD

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# A unix socket path must stay under 108 bytes; deep checkouts get a /tmp alias.
responder_socket() {
    local state; state=$(realpath -m "$1")
    local sock="$state/emailsetup.sock"
    if (( ${#sock} > 100 )); then
        sock="/tmp/emailsetup-$(printf %s "$state" | md5sum | cut -c1-12)/emailsetup.sock"
    fi
    echo "$sock"
}

write_config() {
    local state; state=$(realpath -m "$1")
    local dbsock; dbsock=$(eval "$("$ROOT/scripts/lib/mariadb.sh" env "$state")"; echo "$EMAILSETUP_DB_SOCKET")
    mkdir -p "$state/keys"
    chmod 700 "$state/keys"
    cat > "$state/emailsetup.conf" <<CONF
# Written by scripts/lib/services.sh for a local run; see README "Configuration".
db_socket = $dbsock
db_user = emailsetup
db_password_file = $state/db-password
db_name = emailsetup
key_dir = $state/keys
auth = remote_user
admins = admin
socket_mode = 0660
socket_group = www-data
workers = ${EMAILSETUP_WORKERS:-4}
log_level = info
CONF
    # Extra `key = value` lines, e.g. from scripts/test.
    if [[ -n ${2:-} ]]; then printf '%s\n' "$2" >> "$state/emailsetup.conf"; fi
}

write_htpasswd() {
    local state=$1 user=$2 password=$3
    (umask 027; printf '%s:%s\n' "$user" "$(openssl passwd -apr1 -stdin <<<"$password")" > "$state/htpasswd")
    chgrp www-data "$state/htpasswd"
}

responder_start() {
    local state; state=$(realpath -m "$1")
    local binary=$2
    local sock; sock=$(responder_socket "$state")
    mkdir -p "$(dirname "$sock")"
    responder_stop "$state"
    "$binary" migrate --config "$state/emailsetup.conf" >>"$state/responder.log" 2>&1 \
        || { echo "emailsetup migrate failed; see $state/responder.log" >&2; tail -5 "$state/responder.log" >&2; return 1; }
    # Supervised: a responder that dies is started again (with back-off) while nginx
    # answers 502; responder.pid is the supervisor, responder-child.pid the responder.
    rm -f "$state/responder-child.pid"
    nohup "$ROOT/scripts/lib/supervise.sh" "$state/responder-child.pid" -- \
        "$binary" serve --socket "$sock" --config "$state/emailsetup.conf" >>"$state/responder.log" 2>&1 </dev/null &
    echo $! > "$state/responder.pid"
    for _ in $(seq 1 100); do
        [[ -S $sock ]] && return 0
        kill -0 "$(cat "$state/responder.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "the responder did not start; see $state/responder.log" >&2
    tail -5 "$state/responder.log" >&2
    return 1
}

responder_stop() {
    local state; state=$(realpath -m "$1")
    local pidfile="$state/responder.pid" childfile="$state/responder-child.pid"
    if [[ -f $pidfile ]]; then
        local pid; pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            # The supervisor passes SIGTERM on and waits for the responder (≤ 10 s).
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    fi
    # A responder left behind by a supervisor that was killed outright.
    if [[ -f $childfile ]]; then
        local child; child=$(cat "$childfile")
        if kill -0 "$child" 2>/dev/null; then
            kill -TERM "$child" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$child" 2>/dev/null || true
        fi
        rm -f "$childfile"
    fi
}

nginx_start() {
    local state; state=$(realpath -m "$1")
    local port=$2
    local sock; sock=$(responder_socket "$state")
    mkdir -p "$state/nginx-tmp"
    # Workers run as www-data when it can reach the page, the password file and the
    # socket; a checkout inside a private folder (mode 0700) gets root workers instead.
    local user=www-data
    if ! runuser -u www-data -- test -r "$ROOT/www/index.html" -a -r "$state/htpasswd" -a -x "$(dirname "$sock")" 2>/dev/null; then
        user=root
        echo "note: www-data cannot reach $ROOT or $state (a parent folder is private); nginx workers run as root for this local run" >&2
    fi
    sed -e "s#@STATE@#$state#g" -e "s#@ROOT@#$ROOT#g" -e "s#@PORT@#$port#g" -e "s#@SOCKET@#$sock#g" -e "s#@USER@#$user#g" \
        "$ROOT/nginx/local.conf.template" > "$state/nginx.conf"
    nginx_stop "$state"
    nginx -q -t -p "$state" -e "$state/nginx-error.log" -c "$state/nginx.conf" \
        || { echo "nginx configuration test failed" >&2; return 1; }
    nginx -p "$state" -e "$state/nginx-error.log" -c "$state/nginx.conf" \
        || { echo "nginx did not start (is port $port free?); see $state/nginx-error.log" >&2; return 1; }
}

nginx_stop() {
    local state; state=$(realpath -m "$1")
    if [[ -f $state/nginx.pid ]]; then
        local pid; pid=$(cat "$state/nginx.pid")
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$state/nginx.pid"
    fi
}
