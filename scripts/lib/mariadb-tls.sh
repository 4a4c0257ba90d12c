#!/usr/bin/env bash
# A second private MariaDB that accepts nothing but TLS, for the database-over-TLS
# tests (issue 17): a throw-away test CA, a server certificate for 127.0.0.1 only,
# TCP on 127.0.0.1:PORT with require_secure_transport=ON, and accounts that
# require TLS (REQUIRE SSL) or a client certificate from the test CA (REQUIRE X509).
#
#   scripts/lib/mariadb-tls.sh start STATE_DIR PORT   # (re)starts; prints nothing on success
#   scripts/lib/mariadb-tls.sh stop  STATE_DIR        # stops the server, keeps the files
#
# Files under STATE_DIR: ca.pem (the test CA), other-ca.pem (a CA that signed
# nothing here), server.pem/server.key (SAN IP:127.0.0.1, DNS:db.emailsetup.test),
# client.pem/client.key (CN=emailsetup-client, signed by ca.pem), db-password,
# mariadb/ (datadir), mariadb.sock, mariadb.pid, mariadb.log.
# Accounts, both with the password in db-password, on database emailsetup_tls:
#   tls   REQUIRE SSL      x509   REQUIRE X509
# Started from Tests/TestSupport/TLSDatabaseServer.swift, which stops it again.
set -euo pipefail

usage="usage: mariadb-tls.sh start STATE_DIR PORT | stop STATE_DIR"
cmd=${1:?$usage}
state=$(realpath -m "${2:?$usage}")
datadir="$state/mariadb"
sock="$state/mariadb.sock"
if (( ${#sock} > 100 )); then
    sock="/tmp/emailsetup-$(printf %s "$state" | md5sum | cut -c1-12)/mariadb.sock"
    mkdir -p "$(dirname "$sock")"
fi
pidfile="$state/mariadb.pid"
log="$state/mariadb.log"
pwfile="$state/db-password"

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
# Root over the unix socket: MariaDB counts a unix socket as secure transport.
admin() { mariadb --no-defaults --protocol=socket --socket="$sock" -uroot "$@"; }

# EC P-256 keys: instant to make, unlike RSA.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_certificates() {
    local d="$state"
    # Kept between runs; made afresh when missing or within a day of expiring.
    if [[ -s "$d/client.pem" ]] && openssl x509 -checkend 86400 -noout -in "$d/ca.pem" >/dev/null 2>&1 \
        && openssl x509 -checkend 86400 -noout -in "$d/server.pem" >/dev/null 2>&1; then
        return 0
    fi
    (
        umask 077
        cd "$d"
        newkey ca.key
        openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=emailsetup test CA" 2>/dev/null
        newkey other-ca.key
        openssl req -x509 -new -key other-ca.key -out other-ca.pem -days 30 -subj "/CN=emailsetup other CA" 2>/dev/null
        newkey server.key
        openssl req -new -key server.key -out server.csr -subj "/CN=db.emailsetup.test" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:db.emailsetup.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 -extfile server.ext 2>/dev/null
        newkey client.key
        openssl req -new -key client.key -out client.csr -subj "/CN=emailsetup-client" 2>/dev/null
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 30 -extfile client.ext 2>/dev/null
        rm -f ./*.csr ./*.ext ca.srl
        chmod 0644 ca.pem other-ca.pem server.pem client.pem
    )
}

start() {
    local port=${1:?$usage}
    mkdir -p "$state"
    make_certificates
    # A server left over from an interrupted run may listen elsewhere or hold older
    # certificates: start afresh.
    stop
    if [[ ! -d "$datadir/mysql" ]]; then
        rm -rf "$datadir"
        mariadb-install-db --no-defaults --datadir="$datadir" --user=root \
            --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
            --innodb-buffer-pool-size=8M --innodb-log-file-size=8M \
            >"$state/mariadb-install.log" 2>&1 \
            || { echo "mariadb-install-db failed; see $state/mariadb-install.log" >&2; exit 1; }
    fi
    # A small buffer pool and log: the server starts in about a second.
    mariadbd --no-defaults --user=root --datadir="$datadir" --socket="$sock" \
        --pid-file="$pidfile" --log-error="$log" \
        --bind-address=127.0.0.1 --port="$port" --skip-name-resolve \
        --ssl-ca="$state/ca.pem" --ssl-cert="$state/server.pem" --ssl-key="$state/server.key" \
        --require-secure-transport=ON \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        --innodb-buffer-pool-size=8M --innodb-log-file-size=8M \
        --innodb-flush-log-at-trx-commit=2 --max-connections=50 >/dev/null 2>&1 &
    for _ in $(seq 1 300); do
        if admin -e 'SELECT 1' >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    admin -e 'SELECT 1' >/dev/null 2>&1 || { echo "MariaDB (TLS) did not start; see $log" >&2; tail -20 "$log" >&2 || true; exit 1; }
    if [[ ! -s "$pwfile" ]]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pwfile")
    fi
    local pw; pw=$(cat "$pwfile")
    admin <<SQL
CREATE DATABASE IF NOT EXISTS emailsetup_tls CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS 'tls'@'%' IDENTIFIED BY '$pw';
ALTER USER 'tls'@'%' IDENTIFIED BY '$pw' REQUIRE SSL;
CREATE USER IF NOT EXISTS 'x509'@'%' IDENTIFIED BY '$pw';
ALTER USER 'x509'@'%' IDENTIFIED BY '$pw' REQUIRE X509;
GRANT ALL PRIVILEGES ON emailsetup_tls.* TO 'tls'@'%';
GRANT ALL PRIVILEGES ON emailsetup_tls.* TO 'x509'@'%';
FLUSH PRIVILEGES;
SQL
}

stop() {
    if running; then
        local pid; pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

case "$cmd" in
    start) start "${3:-}" ;;
    stop) stop ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
