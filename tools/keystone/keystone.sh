#!/usr/bin/env bash
# A real Keystone (30.0.0 from PyPI) on 127.0.0.1 with SQLite, for the
# Keystone tests, benchmarks and example. Nothing here is for production:
# fixed admin password, no TLS, one gunicorn worker.
#
#   tools/keystone/keystone.sh install             # venv (idempotent, ~1-2 min the first time)
#   tools/keystone/keystone.sh start [MODEL]       # MODEL: flat (default) or strict_two_level
#   tools/keystone/keystone.sh restart MODEL       # same database, another enforcement model
#   tools/keystone/keystone.sh stop                # by the pid gunicorn wrote
#   tools/keystone/keystone.sh env                 # the variables the tests read
#
# State lives in $KEYSTONE_DIR (default target/keystone): keystone.conf,
# keystone.db, fernet and credential keys, gunicorn's pid, access and error
# logs. The access log has one line per request, in order (one worker, one
# thread), so requests can be counted between marker requests.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=${KEYSTONE_VENV:-$ROOT/target/keystone-venv}
DIR=${KEYSTONE_DIR:-$ROOT/target/keystone}
PORT=${KEYSTONE_PORT:-5055}
PASSWORD=${KEYSTONE_ADMIN_PASSWORD:-delimiter-admin}
PYTHON=${PYTHON:-python3}
URL="http://127.0.0.1:$PORT/v3"
PIDFILE=$DIR/gunicorn.pid

install() {
    if [ -x "$VENV/bin/keystone-manage" ] && [ -x "$VENV/bin/gunicorn" ]; then return; fi
    # As `just setup`: venv, else virtualenv where ensurepip is missing.
    test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV" \
        || { "$PYTHON" -m pip install --quiet virtualenv && "$PYTHON" -m virtualenv "$VENV"; }
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$ROOT/tools/keystone/requirements.txt"
}

write_conf() {  # $1: enforcement model
    mkdir -p "$DIR/fernet-keys" "$DIR/credential-keys"
    cat > "$DIR/keystone.conf" <<CONF
[DEFAULT]
log_file = $DIR/keystone.log
[database]
connection = sqlite:///$DIR/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $DIR/fernet-keys
[credential]
key_repository = $DIR/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
[unified_limit]
enforcement_model = $1
CONF
}

manage() { "$VENV/bin/keystone-manage" --config-file "$DIR/keystone.conf" "$@" >>"$DIR/manage.log" 2>&1 || { tail -20 "$DIR/manage.log" >&2; return 1; }; }

bootstrap() {  # once per state directory
    [ -f "$DIR/bootstrapped" ] && return
    manage db_sync
    manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    manage bootstrap --bootstrap-password "$PASSWORD" \
        --bootstrap-admin-url "$URL" --bootstrap-public-url "$URL" \
        --bootstrap-internal-url "$URL" --bootstrap-region-id RegionOne
    touch "$DIR/bootstrapped"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {  # $1: enforcement model
    local model=${1:-flat}
    install
    if running; then echo "keystone: already running (pid $(cat "$PIDFILE")); stop it first" >&2; exit 1; fi
    write_conf "$model"
    bootstrap
    : > "$DIR/error.log"
    OS_KEYSTONE_CONFIG_FILES="$DIR/keystone.conf" "$VENV/bin/gunicorn" \
        --chdir "$ROOT/tools/keystone" --bind "127.0.0.1:$PORT" --workers 1 --threads 1 \
        --timeout 120 --access-logfile "$DIR/access.log" --error-logfile "$DIR/error.log" \
        --pid "$PIDFILE" --daemon wsgi:application
    # Wait for a 200 from /v3 (2 s per try); a worker that cannot load Keystone exits and
    # is respawned forever while the master keeps the port, so watch the
    # error log for that and give up at once.
    for _ in $(seq 1 240); do
        if grep -q "exited with code\|Worker failed to boot\|Reason: App failed to load" "$DIR/error.log" 2>/dev/null; then
            echo "keystone: failed to start (model $model); see $DIR/error.log and $DIR/keystone.log:" >&2
            tail -20 "$DIR/error.log" >&2
            stop
            exit 1
        fi
        if "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$URL" 2>/dev/null; then
            echo "keystone: $URL (model $model, pid $(cat "$PIDFILE"))"
            return
        fi
        sleep 0.5
    done
    echo "keystone: no answer from $URL after 120 s" >&2
    stop
    exit 1
}

stop() {
    if ! [ -f "$PIDFILE" ]; then return; fi
    local pid; pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-flat}" ;;
    restart) stop; start "${2:?restart needs a model: flat or strict_two_level}" ;;
    stop) stop ;;
    env)
        echo "DELIMITER_TEST_KEYSTONE_URL=$URL"
        echo "DELIMITER_TEST_KEYSTONE_PASSWORD=$PASSWORD"
        echo "DELIMITER_TEST_KEYSTONE_ACCESS_LOG=$DIR/access.log"
        echo "DELIMITER_TEST_KEYSTONE_CONTROL=$ROOT/tools/keystone/keystone.sh"
        ;;
    *) echo "usage: $0 install|start [flat|strict_two_level]|restart MODEL|stop|env" >&2; exit 2 ;;
esac
