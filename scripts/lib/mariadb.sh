#!/usr/bin/env bash
# A private MariaDB instance for the local run and the tests: its own datadir,
# unix socket only (no TCP port), database "emailsetup", user "emailsetup".
#
#   scripts/lib/mariadb.sh start STATE_DIR   # idempotent; prints nothing on success
#   scripts/lib/mariadb.sh stop  STATE_DIR
#   scripts/lib/mariadb.sh env   STATE_DIR   # prints export lines for clients
#   scripts/lib/mariadb.sh test-env STATE_DIR  # the same for the Storage tests, which
#                                              # drop tables: their own database
#
# Files under STATE_DIR: mariadb/ (datadir), mariadb.sock, mariadb.pid,
# mariadb.log, db-password (0600, the emailsetup user's password).
set -euo pipefail

cmd=${1:?usage: mariadb.sh start|stop|env STATE_DIR}
state=$(realpath -m "${2:?usage: mariadb.sh start|stop|env STATE_DIR}")
datadir="$state/mariadb"
sock="$state/mariadb.sock"
# Unix socket paths are limited to 107 bytes; a deep checkout gets a short alias.
if (( ${#sock} > 100 )); then
    sock="/tmp/emailsetup-$(printf %s "$state" | md5sum | cut -c1-12)/mariadb.sock"
    mkdir -p "$(dirname "$sock")"
fi
pidfile="$state/mariadb.pid"
log="$state/mariadb.log"
pwfile="$state/db-password"

running() {
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

admin() { mariadb --no-defaults --protocol=socket --socket="$sock" -uroot "$@"; }

start() {
    mkdir -p "$state"
    if running && admin -e 'SELECT 1' >/dev/null 2>&1; then
        return 0
    fi
    if [[ ! -d "$datadir/mysql" ]]; then
        rm -rf "$datadir"
        mariadb-install-db --no-defaults --datadir="$datadir" --user=root \
            --auth-root-authentication-method=socket --skip-test-db >"$state/mariadb-install.log" 2>&1 \
            || { echo "mariadb-install-db failed; see $state/mariadb-install.log" >&2; exit 1; }
    fi
    # --user=root: the checkout belongs to root and this instance is private to it.
    mariadbd --no-defaults --user=root --datadir="$datadir" --socket="$sock" \
        --pid-file="$pidfile" --log-error="$log" --skip-networking \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
        --innodb-flush-log-at-trx-commit=2 --max-connections=300 >/dev/null 2>&1 &
    for _ in $(seq 1 300); do
        if admin -e 'SELECT 1' >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    admin -e 'SELECT 1' >/dev/null 2>&1 || { echo "MariaDB did not start; see $log" >&2; tail -20 "$log" >&2 || true; exit 1; }
    if [[ ! -s "$pwfile" ]]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pwfile")
    fi
    local pw; pw=$(cat "$pwfile")
    admin <<SQL
CREATE DATABASE IF NOT EXISTS emailsetup CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE DATABASE IF NOT EXISTS emailsetup_storage_test CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS 'emailsetup'@'localhost' IDENTIFIED BY '$pw';
ALTER USER 'emailsetup'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON emailsetup.* TO 'emailsetup'@'localhost';
GRANT ALL PRIVILEGES ON emailsetup_storage_test.* TO 'emailsetup'@'localhost';
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
    start) start ;;
    stop) stop ;;
    env)
        echo "export EMAILSETUP_DB_SOCKET='$sock'"
        echo "export EMAILSETUP_DB_USER='emailsetup'"
        echo "export EMAILSETUP_DB_PASSWORD_FILE='$pwfile'"
        echo "export EMAILSETUP_DB_NAME='emailsetup'"
        ;;
    test-env)
        echo "export EMAILSETUP_TEST_DB_SOCKET='$sock'"
        echo "export EMAILSETUP_TEST_DB_USER='emailsetup'"
        echo "export EMAILSETUP_TEST_DB_PASSWORD_FILE='$pwfile'"
        echo "export EMAILSETUP_TEST_DB_NAME='emailsetup_storage_test'"
        echo "export EMAILSETUP_TEST_DB_STATE_DIR='$state'"
        ;;
    *) echo "usage: mariadb.sh start|stop|env|test-env STATE_DIR" >&2; exit 2 ;;
esac
