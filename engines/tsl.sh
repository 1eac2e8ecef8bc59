#!/usr/bin/env bash
# TSL test engine: engines/pglite/server.mjs (PGlite + TimescaleDB TSL edition) in the background.
#
#   engines/tsl.sh [--dir D] [--port P] start|stop|restart|status|dsn|destroy
#
# Defaults: --dir <repo>/.engines/tsl-<port>, --port 55451 (env TCPD_TSL_DIR / TCPD_TSL_PORT).
# The directory holds data/ (PGlite's data dir), server.pid and server.log.
# Needs engines/pglite/node_modules: (cd engines/pglite && npm ci --legacy-peer-deps).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGLITE=$REPO/engines/pglite
START_TIMEOUT=${TCPD_TSL_START_TIMEOUT:-90}

die() { echo "tsl.sh: error: $*" >&2; exit 1; }
note() { echo "tsl.sh: $*" >&2; }
usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

PORT=${TCPD_TSL_PORT:-55451}
DIR=${TCPD_TSL_DIR:-}
CMD=
while (($#)); do
    case $1 in
        --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
        --dir=*) DIR=${1#--dir=}; shift ;;
        --port) PORT=${2:?--port needs a value}; shift 2 ;;
        --port=*) PORT=${1#--port=}; shift ;;
        -h|--help|help) usage 0 ;;
        start|stop|restart|status|dsn|destroy) CMD=$1; shift ;;
        *) echo "tsl.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[[ -n $CMD ]] || usage 2
[[ $PORT =~ ^[0-9]+$ ]] || die "port must be a number, got '$PORT'"
[[ -n $DIR ]] || DIR=$REPO/.engines/tsl-$PORT
mkdir -p "$(dirname "$DIR")"
DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR") # absolute: the server runs elsewhere
PIDFILE=$DIR/server.pid
LOG=$DIR/server.log
DSN="postgresql://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"

pid() { [[ -f $PIDFILE ]] && cat "$PIDFILE"; }

# Alive and really ours: the pid runs server.mjs (pids get reused after a crash).
running() {
    local p
    p=$(pid) || return 1
    [[ -n $p ]] && kill -0 "$p" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'server.mjs'
}

do_start() {
    if running; then
        note "already running (pid $(pid), $DIR)"
        echo "$DSN"
        return 0
    fi
    command -v node >/dev/null || die "node is not installed (Node >= 20 needed)"
    [[ -d $PGLITE/node_modules/@electric-sql/pglite-socket ]] ||
        die "engines/pglite/node_modules is missing: run (cd engines/pglite && npm ci --legacy-peer-deps)"
    if (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "port $PORT is already in use by another server: pick another with --port"
    fi
    mkdir -p "$DIR/data"
    : >"$LOG"
    # setsid: the server must outlive this shell and not get the caller's Ctrl-C
    (cd "$PGLITE" && exec setsid node server.mjs --data "$DIR/data" --port "$PORT" \
        >>"$LOG" 2>&1 </dev/null) &
    echo $! >"$PIDFILE"
    local waited=0
    until grep -q '^READY ' "$LOG"; do
        if ! running && ! grep -q '^READY ' "$LOG"; then
            tail -20 "$LOG" >&2
            die "server exited during start (log: $LOG)"
        fi
        ((waited < START_TIMEOUT * 10)) || { do_stop; die "no READY within ${START_TIMEOUT}s (log: $LOG)"; }
        sleep 0.1
        waited=$((waited + 1))
    done
    local ready
    ready=$(grep -m1 '^READY ' "$LOG")
    # the server's own pid: setsid may have forked, then $! was only setsid's
    [[ $ready =~ pid=([0-9]+) ]] && echo "${BASH_REMATCH[1]}" >"$PIDFILE"
    note "$ready"
    echo "$DSN"
}

do_stop() {
    if ! running; then
        note "not running ($DIR)"
        rm -f "$PIDFILE"
        return 0
    fi
    local p waited=0
    p=$(pid)
    kill -TERM "$p"
    # wait for the exit: a second server on the same data dir would corrupt it
    while kill -0 "$p" 2>/dev/null; do
        if ((waited >= 300)); then
            note "pid $p ignored SIGTERM for 30s: killing it"
            kill -KILL "$p" 2>/dev/null || true
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE"
    note "stopped ($DIR)"
}

do_status() {
    if running; then
        echo "running $DSN (pid $(pid), $DIR)"
    else
        echo "stopped ($DIR)"
        return 3
    fi
}

do_destroy() {
    do_stop
    [[ -d $DIR ]] || return 0
    # only ever delete a directory this script made: data/, server.log, server.pid
    local entry
    for entry in "$DIR"/* "$DIR"/.[!.]*; do
        [[ -e $entry ]] || continue
        case ${entry##*/} in
            data | server.log | server.pid) ;;
            *) die "$DIR holds more than a tsl.sh engine (${entry##*/}): not removing it" ;;
        esac
    done
    rm -rf "$DIR"
    note "removed $DIR"
}

case $CMD in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    dsn) echo "$DSN" ;;
    destroy) do_destroy ;;
esac
