#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on 127.0.0.1, beside the system
# server (which is left alone), for the tests that need a multi-writer
# cluster (OpenStack runs its databases on one).
#
#   tools/galera/galera.sh up      start three nodes, wait until all are Synced
#   tools/galera/galera.sh down    stop them by their pids, remove their data
#   tools/galera/galera.sh env     print DELIMITER_TEST_GALERA_URLS=...
#   tools/galera/galera.sh status  cluster size and state of each node
#
# Every node runs from a defaults file of its own (so /etc/mysql is never
# read), with its own datadir, socket and ports: clients 4306-4308, Galera
# 4567/4577/4587 (IST on the next port), SST 4444/4454/4464. Settings and
# traps measured on this kind of machine: docs in /work/shared/notes and
# conformance/concurrency/README.md. Node 1 bootstraps (--wsrep-new-cluster:
# only for a first bootstrap, so `up` always starts from empty datadirs);
# nodes 2 and 3 join one after the other and are filled by an rsync SST.
set -euo pipefail

DIR=${DELIMITER_GALERA_DIR:-/tmp/delimiter-galera}
TIMEOUT=${DELIMITER_GALERA_TIMEOUT:-180}
PROVIDER=/usr/lib/galera/libgalera_smm.so
NODES=(1 2 3)

client_port() { echo $((4305 + $1)); }
galera_port() { echo $((4557 + 10 * $1)); }
sst_port() { echo $((4434 + 10 * $1)); }

cluster_address() {
    local n out=""
    for n in "${NODES[@]}"; do out+="${out:+,}127.0.0.1:$(galera_port "$n")"; done
    echo "gcomm://$out"
}

urls() {
    local n out=""
    for n in "${NODES[@]}"; do out+="${out:+,}mysql://root@127.0.0.1:$(client_port "$n")/test"; done
    echo "$out"
}

log() { echo "galera: $*" >&2; }

# What a fresh machine may lack; installed only when absent.
ensure_tools() {
    local missing=()
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
    [ -f "$PROVIDER" ] || missing+=(galera-4)
    command -v rsync >/dev/null 2>&1 || missing+=(rsync)
    command -v socat >/dev/null 2>&1 || missing+=(socat)
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
        || { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
    # The package starts the system server; this cluster does not need it
    # and must not share its ports (it does not: 3306 is not ours).
}

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

write_config() {
    local n=$1 d="$DIR/n$1" g; g=$(galera_port "$n")
    mkdir -p "$d/data"
    local user_line=""
    # mariadbd refuses to run as root; as root, run it as mysql.
    if [ "$(id -u)" -eq 0 ]; then user_line="user=mysql"; chown -R mysql: "$d"; fi
    cat >"$d/my.cnf" <<CNF
[mariadbd]
$user_line
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=$(client_port "$n")
bind-address=127.0.0.1
skip-name-resolve
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=64M
# A test cluster: durability of the last second is not what is tested.
innodb_flush_log_at_trx_commit=2
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=delimiter_test
wsrep_cluster_address=$(cluster_address)
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:$g
wsrep_provider_options="base_host=127.0.0.1;base_port=$g;gmcast.listen_addr=tcp://127.0.0.1:$g;ist.recv_addr=127.0.0.1:$((g + 1))"
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:$(sst_port "$n")
# What operators set: every table needs a primary key, and only
# replicable statements run.
wsrep_mode=REQUIRED_PRIMARY_KEY,STRICT_REPLICATION
CNF
}

sql() {  # sql NODE STATEMENT: over the node's socket, as root
    mariadb --no-defaults --socket="$DIR/n$1/mysqld.sock" -uroot -N -B -e "$2"
}

state() {  # "SIZE COMMENT" of node $1, or nothing if it does not answer
    sql "$1" "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_SIZE'),
                     (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE_COMMENT')" 2>/dev/null | tr '\t' ' ' || true
}

alive() { local pid; pid=$(cat "$DIR/n$1/pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }

start_node() {
    local n=$1; shift
    "$(mariadbd_bin)" --defaults-file="$DIR/n$n/my.cnf" "$@" >>"$DIR/n$n/stdout.log" 2>&1 &
    echo $! >"$DIR/n$n/pid"
}

wait_synced() {  # wait_synced NODE SIZE: until the node is Synced in a cluster of SIZE
    local n=$1 size=$2 deadline=$((SECONDS + TIMEOUT)) s=""
    while [ $SECONDS -lt $deadline ]; do
        if ! alive "$n"; then
            log "node $n died while starting; the end of its log:"; tail -25 "$DIR/n$n/error.log" >&2 || true
            return 1
        fi
        s=$(state "$n")
        [ "$s" = "$size Synced" ] && return 0
        sleep 0.5
    done
    log "node $n not Synced after $TIMEOUT s (last state: '${s:-no answer}'); the end of its log:"
    tail -25 "$DIR/n$n/error.log" >&2 || true
    return 1
}

up() {
    ensure_tools
    if [ -d "$DIR" ]; then
        if [ "$(state 1)" = "3 Synced" ] && [ "$(state 3)" = "3 Synced" ]; then log "already up"; return 0; fi
        down  # a crashed run's leftovers: a restarted cluster cannot bootstrap again
    fi
    local began=$SECONDS n
    # Tear down whatever was started if bring-up fails half-way.
    trap 'log "bring-up failed; stopping what was started"; down' ERR
    for n in "${NODES[@]}"; do write_config "$n"; done
    mariadb-install-db --defaults-file="$DIR/n1/my.cnf" --auth-root-authentication-method=normal \
        >"$DIR/n1/install.log" 2>&1 || { cat "$DIR/n1/install.log" >&2; false; }
    start_node 1 --wsrep-new-cluster
    wait_synced 1 1
    # With skip-name-resolve, root@localhost does not match TCP clients.
    sql 1 "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
           CREATE DATABASE IF NOT EXISTS test"
    start_node 2; wait_synced 2 2
    start_node 3; wait_synced 3 3
    for n in "${NODES[@]}"; do [ "$(state "$n")" = "3 Synced" ] || { log "node $n: $(state "$n")"; false; }; done
    # A write on node 1 is visible on node 3: replication works.
    sql 1 "CREATE TABLE test.galera_probe (id INT PRIMARY KEY); INSERT INTO test.galera_probe VALUES (1)"
    [ "$(sql 3 "SET SESSION wsrep_sync_wait=1; SELECT COUNT(*) FROM test.galera_probe")" = 1 ] || { log "no replication"; false; }
    sql 2 "DROP TABLE test.galera_probe"
    trap - ERR
    log "up: 3 nodes Synced in $((SECONDS - began)) s ($(urls))"
}

down() {
    local n pid
    for n in "${NODES[@]}"; do
        pid=$(cat "$DIR/n$n/pid" 2>/dev/null) || continue
        # Only our own process: a stale pid file must not stop another.
        if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--defaults-file=$DIR/n$n/my.cnf"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for n in "${NODES[@]}"; do
        pid=$(cat "$DIR/n$n/pid" 2>/dev/null) || continue
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--defaults-file=$DIR/n$n/my.cnf"; then
            log "node $n ($pid) did not stop in 30 s; killing it"; kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$DIR"
    log "down"
}

status() {
    local n
    for n in "${NODES[@]}"; do echo "node $n (127.0.0.1:$(client_port "$n")): $(state "$n" || true)"; done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) echo "DELIMITER_TEST_GALERA_URLS=$(urls)" ;;
    status) status ;;
    *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
