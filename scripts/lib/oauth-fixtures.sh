#!/usr/bin/env bash
# The OAuth 2.0 servers of the test suite (issue 13), started before the responder so
# its configuration can point at them: the test authorization server (authlib,
# Microsoft flavour, HTTPS with a test CA) and an SMTP server that checks tokens at
# it the way Exchange Online does. Sourced by scripts/test.
#   oauth_fixtures_start STATE NGINX_PORT   writes STATE/oauth/env (export lines) and config lines
#   oauth_fixtures_stop STATE

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# Runs "$@" in its own process group with stdin held open (the fixtures exit when it
# closes), output to files; the group id goes to PIDFILE.
_oauth_spawn() {
    local pidfile=$1 out=$2 err=$3; shift 3
    setsid bash -c 'tail -f /dev/null | "$@"' _ "$@" >"$out" 2>"$err" &
    echo $! > "$pidfile"
}

# Waits (bounded) for "READY <port>" in FILE; prints the port.
_oauth_ready_port() {
    local file=$1
    for _ in $(seq 1 300); do
        if grep -q '^READY ' "$file" 2>/dev/null; then grep -m1 '^READY ' "$file" | cut -d' ' -f2; return 0; fi
        sleep 0.2
    done
    return 1
}

oauth_fixtures_start() {
    local state; state=$(realpath -m "$1"); local web_port=$2
    local dir="$state/oauth"
    rm -rf "$dir"; mkdir -p "$dir/spool"
    /usr/bin/python3 "$ROOT/Tests/Fixtures/smtp/make_certs.py" "$dir" >/dev/null
    local secret password
    secret=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
    cat > "$dir/config.json" <<JSON
{"tenant": "contoso-test-tenant",
 "clients": [{"id": "emailsetup-test", "secret": "$secret", "name": "Email setup (tests)",
              "redirect_uris": ["http://127.0.0.1:$web_port/api/setup/oauth/callback"],
              "grants": ["authorization_code", "client_credentials", "refresh_token", "device_code"]}],
 "users": [{"username": "sender@example.test", "email": "sender@example.test", "password": "$password"}]}
JSON
    _oauth_spawn "$dir/auth.pid" "$dir/auth.out" "$dir/auth.log" \
        /usr/bin/python3 "$ROOT/Tests/Fixtures/oauth/auth_server.py" --flavor microsoft --config "$dir/config.json" \
        --cert "$dir/good.pem" --key "$dir/good.key" --port 0 --device-interval 1 --exit-with-stdin
    local auth_port
    auth_port=$(_oauth_ready_port "$dir/auth.out") || { echo "the OAuth test server did not start; see $dir/auth.log" >&2; return 1; }
    _oauth_spawn "$dir/smtp.pid" "$dir/smtp.out" "$dir/smtp.log" \
        /usr/bin/python3 "$ROOT/Tests/Fixtures/smtp/oauth_smtp_server.py" --flavor exchange --mode starttls \
        --cert "$dir/good.pem" --key "$dir/good.key" --port 0 --spool "$dir/spool" \
        --introspect-url "https://127.0.0.1:$auth_port/introspect" --ca-file "$dir/ca.pem" --mailboxes sender@example.test
    local smtp_port
    smtp_port=$(_oauth_ready_port "$dir/smtp.out") || { echo "the OAuth SMTP test server did not start; see $dir/smtp.log" >&2; return 1; }
    cat > "$dir/env" <<ENV
export EMAILSETUP_TEST_OAUTH_URL='https://127.0.0.1:$auth_port'
export EMAILSETUP_TEST_OAUTH_CA='$dir/ca.pem'
export EMAILSETUP_TEST_OAUTH_CLIENT_ID='emailsetup-test'
export EMAILSETUP_TEST_OAUTH_CLIENT_SECRET='$secret'
export EMAILSETUP_TEST_OAUTH_TENANT='contoso-test-tenant'
export EMAILSETUP_TEST_OAUTH_USER='sender@example.test'
export EMAILSETUP_TEST_OAUTH_PASSWORD='$password'
export EMAILSETUP_TEST_OAUTH_SMTP_PORT='$smtp_port'
export EMAILSETUP_TEST_OAUTH_SPOOL='$dir/spool'
ENV
    cat > "$dir/responder.conf" <<CONF
public_url = http://127.0.0.1:$web_port
oauth_base_override = https://127.0.0.1:$auth_port
oauth_ca_file = $dir/ca.pem
CONF
}

oauth_fixtures_stop() {
    local state; state=$(realpath -m "$1")
    local pidfile
    for pidfile in "$state/oauth/auth.pid" "$state/oauth/smtp.pid"; do
        [[ -f $pidfile ]] || continue
        kill -- -"$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}
