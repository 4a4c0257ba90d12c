#!/usr/bin/env bash
# A private three-node MariaDB Galera cluster on one machine, for the tests and
# bench/load: three `mariadbd` with galera-4, each with its own datadir, unix
# socket, SQL port, gcomm port, IST port and SST (rsync) port, all on 127.0.0.1.
#
#   scripts/lib/galera.sh start   STATE     # idempotent; bootstraps node 1, then joins 2 and 3
#   scripts/lib/galera.sh stop    STATE     # stops every node (clean shutdown, then SIGKILL)
#   scripts/lib/galera.sh env     STATE N   # export lines for a client of node N (EMAILSETUP_DB_*)
#   scripts/lib/galera.sh kill    STATE N   # SIGKILL node N (a crash: no clean leave)
#   scripts/lib/galera.sh rejoin  STATE N   # starts node N again; waits until it is Synced
#   scripts/lib/galera.sh isolate STATE N   # cuts node N off the group (gmcast.isolate): it stays
#                                           # up but answers 1047 "WSREP has not yet prepared node"
#   scripts/lib/galera.sh unisolate STATE N # lets it back in; waits until it is Synced
#   scripts/lib/galera.sh status  STATE     # one line per node: N pid state (or "down")
#   scripts/lib/galera.sh sql     STATE N [mariadb client args…]  # as root over node N's socket
#
# Files under STATE/galera: ports (chosen once, free loopback ports), db-password
# (0600, the emailsetup user's password), nodeN/{data,mariadbd.sock,mariadbd.pid,mariadbd.log}.
# Every wait is bounded (GALERA_WAIT seconds, default 90) and names the log to read.
set -euo pipefail

usage() { echo "usage: galera.sh start|stop|status STATE | env|kill|rejoin|isolate|unisolate STATE N | sql STATE N [args]" >&2; exit 2; }
cmd=${1:-}; [[ -n $cmd && -n ${2:-} ]] || usage
state=$(realpath -m "$2")/galera

# The joiner's rsync daemon runs as "nobody" (see launch): a checkout under a private
# folder keeps its cluster under /tmp instead, reached through the link STATE/galera.
make_state_dir() {
    [[ -e $state ]] && return 0
    mkdir -p "$(dirname "$state")"
    if runuser -u nobody -- test -x "$(dirname "$state")" 2>/dev/null; then
        mkdir -p "$state"
    else
        local alias_dir; alias_dir="/tmp/emailsetup-galera-$(printf %s "$state" | md5sum | cut -c1-12)"
        mkdir -p "$alias_dir"; chmod 0755 "$alias_dir"
        ln -sfn "$alias_dir" "$state"
    fi
}
wait_limit=${GALERA_WAIT:-90}
nodes=(1 2 3)

node_dir() { echo "$state/node$1"; }
# Unix socket paths are limited to 107 bytes; a deep checkout gets a short alias.
node_socket() {
    local sock; sock="$(node_dir "$1")/mariadbd.sock"
    if (( ${#sock} > 100 )); then
        sock="/tmp/emailsetup-galera-$(printf %s "$state" | md5sum | cut -c1-12)/node$1.sock"
    fi
    echo "$sock"
}
node_pid() { cat "$(node_dir "$1")/mariadbd.pid" 2>/dev/null || true; }
running() { local pid; pid=$(node_pid "$1"); [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }
sql() { local n=$1; shift; mariadb --no-defaults --protocol=socket --socket="$(node_socket "$n")" -uroot "$@"; }
wsrep_state() { sql "$1" -N -B -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | cut -f2; }

# Four free loopback ports per node (SQL, gcomm, IST = gcomm+1 is not guaranteed free,
# so IST gets its own, SST), chosen once and kept: a rejoining node must find its peers
# where they were.
ports() {
    if [[ ! -s $state/ports ]]; then
        make_state_dir
        python3 - > "$state/ports" <<'PY'
import socket
held = []
for _ in range(12):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
    fi
    read -r -a all < "$state/ports"
}
port_of() {  # port_of N sql|gcomm|ist|sst
    local i=$(( ($1 - 1) * 4 ))
    case $2 in sql) ;; gcomm) i=$((i + 1)) ;; ist) i=$((i + 2)) ;; sst) i=$((i + 3)) ;; esac
    echo "${all[$i]}"
}
cluster_address() { echo "gcomm://127.0.0.1:$(port_of 1 gcomm),127.0.0.1:$(port_of 2 gcomm),127.0.0.1:$(port_of 3 gcomm)"; }

# The mariadbd arguments of node N (into the array `args`).
node_args() {
    local n=$1 dir; dir=$(node_dir "$n")
    # Fast failure detection (a killed node leaves the view within a few seconds) with
    # enough slack for a busy two-core machine; a small gcache (IST after a short absence).
    local provider="base_host=127.0.0.1;base_port=$(port_of "$n" gcomm)"
    provider+=";gmcast.listen_addr=tcp://127.0.0.1:$(port_of "$n" gcomm)"
    provider+=";ist.recv_addr=127.0.0.1:$(port_of "$n" ist)"
    provider+=";gcache.size=32M;gcache.dir=$dir/data"
    provider+=";evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S"
    provider+=";evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT5S"
    provider+=";pc.wait_prim_timeout=PT30S"
    # A full state transfer (rsync) blocks its donor's writes while it copies: node 3,
    # which no responder of the tests uses, is every other node's preferred donor.
    local donor="node3,"; [[ $n == 3 ]] && donor="node2,"
    # --user=root: the checkout belongs to root and these instances are private to it.
    args=(--no-defaults --user=root --datadir="$dir/data" --socket="$(node_socket "$n")"
        --pid-file="$dir/mariadbd.pid"
        --bind-address=127.0.0.1 --port="$(port_of "$n" sql)" --skip-name-resolve
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin
        --innodb-buffer-pool-size=32M --innodb-log-file-size=16M
        --innodb-flush-log-at-trx-commit=2 --max-connections=300
        --binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2
        --wsrep-on=ON --wsrep-provider=/usr/lib/galera/libgalera_smm.so
        --wsrep-cluster-name="emailsetup-test" --wsrep-node-name="node$n"
        --wsrep-cluster-address="$(cluster_address)"
        --wsrep-node-address="127.0.0.1:$(port_of "$n" gcomm)"
        --wsrep-node-incoming-address="127.0.0.1:$(port_of "$n" sql)"
        --wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$(port_of "$n" sst)"
        --wsrep-sst-donor="$donor"
        --wsrep-provider-options="$provider")
}

# Starts node N's mariadbd in the background; `new` bootstraps a new cluster from it.
launch() {
    local n=$1 mode=${2:-join} dir; dir=$(node_dir "$n")
    mkdir -p "$dir/data" "$(dirname "$(node_socket "$n")")"
    # rsync SST: the joiner's rsync daemon, started by root, drops to "nobody" (rsyncd's
    # default uid) and must be able to write the datadir it receives into.
    chmod 0777 "$dir/data"
    local args; node_args "$n"
    if [[ $mode == new ]]; then
        # A test cluster stopped outright may always bootstrap again from node 1: an
        # operator would first pick the most advanced node (deploy/galera.md).
        if [[ -f $dir/data/grastate.dat ]]; then
            sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$dir/data/grastate.dat"
        fi
        args+=(--wsrep-new-cluster)
    elif grep -q '^seqno: *-1' "$dir/data/grastate.dat" 2>/dev/null; then
        # After a crash the state file says nothing of where the node stopped: recover the
        # position from InnoDB (what the packaged galera_recovery does) so that the node
        # catches up by IST from the gcache instead of a full copy.
        local pos
        mariadbd "${args[@]}" --log-error="$dir/recover.log" --wsrep-recover >/dev/null 2>&1 </dev/null || true
        pos=$(grep -o 'WSREP: Recovered position: .*' "$dir/recover.log" 2>/dev/null | tail -1 | awk '{print $NF}')
        [[ -n $pos ]] && args+=(--wsrep-start-position="$pos")
    fi
    mariadbd "${args[@]}" --log-error="$dir/mariadbd.log" >/dev/null 2>&1 </dev/null &
    # mariadbd writes its pid file late; remember the pid now so kill/stop find it.
    echo $! > "$dir/mariadbd.pid"
}

# A fresh cluster without state transfers: node 1 is initialised and stopped cleanly
# once, then its datadir is copied to nodes 2 and 3, so all three start at the same
# position and join without SST (seconds saved on every test run).
seed() {
    local d1; d1=$(node_dir 1)/data
    mkdir -p "$d1"
    mariadb-install-db --no-defaults --datadir="$d1" --user=root \
        --auth-root-authentication-method=socket --skip-test-db >"$(node_dir 1)/install.log" 2>&1 \
        || { echo "mariadb-install-db failed; see $(node_dir 1)/install.log" >&2; exit 1; }
    launch 1 new
    wait_synced 1
    create_users
    stop_node 1
    local n
    for n in 2 3; do
        rm -rf "$(node_dir "$n")/data"; mkdir -p "$(node_dir "$n")"
        cp -a "$d1" "$(node_dir "$n")/data"
        # The primary-component state names node 1's own identity: never copied.
        rm -f "$(node_dir "$n")/data/gvwstate.dat"
    done
}

# Waits (bounded) until node N reports Synced.
wait_synced() {
    local n=$1 deadline=$((SECONDS + wait_limit)) s=""
    while (( SECONDS < deadline )); do
        s=$(wsrep_state "$n" || true)
        [[ $s == Synced ]] && return 0
        running "$n" || { echo "galera node $n exited while starting; see $(node_dir "$n")/mariadbd.log" >&2; tail -15 "$(node_dir "$n")/mariadbd.log" >&2 || true; exit 1; }
        sleep 0.2
    done
    echo "galera node $n not Synced after ${wait_limit}s (state: ${s:-no answer}); see $(node_dir "$n")/mariadbd.log" >&2
    tail -15 "$(node_dir "$n")/mariadbd.log" >&2 || true
    exit 1
}

create_users() {
    local pwfile=$state/db-password
    if [[ ! -s $pwfile ]]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pwfile")
    fi
    local pw; pw=$(cat "$pwfile")
    # Replicated to the other nodes (DDL and account statements are total-order isolated).
    sql 1 <<SQL
CREATE DATABASE IF NOT EXISTS emailsetup CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS 'emailsetup'@'localhost' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS 'emailsetup'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'emailsetup'@'localhost' IDENTIFIED BY '$pw';
ALTER USER 'emailsetup'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON emailsetup.* TO 'emailsetup'@'localhost';
GRANT ALL PRIVILEGES ON emailsetup.* TO 'emailsetup'@'127.0.0.1';
SQL
}

start() {
    make_state_dir
    ports
    local n up=0
    for n in "${nodes[@]}"; do running "$n" && up=1; done
    if (( ! up )); then
        [[ -d $(node_dir 1)/data/mysql ]] || seed
        launch 1 new
        wait_synced 1
    fi
    for n in "${nodes[@]}"; do running "$n" || launch "$n"; done
    for n in "${nodes[@]}"; do wait_synced "$n"; done
    create_users
}

stop_node() {
    local n=$1 signal=${2:-TERM} pid; pid=$(node_pid "$n")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "-$signal" "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$(node_dir "$n")/mariadbd.pid"
    # A joiner's rsync daemon (SST) outlives a killed mariadbd; it holds the SST port.
    local rpid; rpid=$(cat "$(node_dir "$n")/data/rsync_sst.pid" 2>/dev/null || true)
    if [[ -n $rpid ]] && kill -0 "$rpid" 2>/dev/null; then kill -KILL "$rpid" 2>/dev/null || true; fi
}

node_arg() { [[ ${1:-} =~ ^[123]$ ]] || usage; }

case "$cmd" in
    start) start ;;
    stop)
        [[ -d $state ]] || exit 0
        # Joiners first, node 1 last: the last to leave is the one safe to bootstrap from.
        for n in 3 2 1; do stop_node "$n"; done
        ;;
    env)
        node_arg "${3:-}"; ports
        echo "export EMAILSETUP_DB_HOST='127.0.0.1'"
        echo "export EMAILSETUP_DB_PORT='$(port_of "$3" sql)'"
        echo "export EMAILSETUP_DB_SOCKET='$(node_socket "$3")'"
        echo "export EMAILSETUP_DB_USER='emailsetup'"
        echo "export EMAILSETUP_DB_PASSWORD_FILE='$state/db-password'"
        echo "export EMAILSETUP_DB_NAME='emailsetup'"
        ;;
    kill) node_arg "${3:-}"; stop_node "$3" KILL ;;
    rejoin)
        node_arg "${3:-}"; ports
        running "$3" || launch "$3"
        wait_synced "$3"
        ;;
    isolate)
        node_arg "${3:-}"
        sql "$3" -e "SET GLOBAL wsrep_provider_options='gmcast.isolate=1'"
        # Bounded: until the node has left the primary component.
        deadline=$((SECONDS + wait_limit))
        while (( SECONDS < deadline )); do
            [[ $(sql "$3" -N -B -e "SHOW STATUS LIKE 'wsrep_ready'" 2>/dev/null | cut -f2) == OFF ]] && exit 0
            sleep 0.2
        done
        echo "galera node $3 still ready ${wait_limit}s after isolation" >&2; exit 1
        ;;
    unisolate)
        node_arg "${3:-}"
        sql "$3" -e "SET GLOBAL wsrep_provider_options='gmcast.isolate=0'"
        wait_synced "$3"
        ;;
    status)
        ports
        for n in "${nodes[@]}"; do
            if running "$n"; then echo "$n $(node_pid "$n") $(wsrep_state "$n" || echo '?')"; else echo "$n down"; fi
        done
        ;;
    sql) node_arg "${3:-}"; n=$3; shift 3; sql "$n" "$@" ;;
    *) usage ;;
esac
