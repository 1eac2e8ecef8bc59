#!/usr/bin/env bash
# Native test engine: Debian's PostgreSQL 15 + TimescaleDB 2.19.3, Apache edition, built from
# trixie's source package, plus a throwaway cluster on a private port and socket directory.
#
#   engines/native.sh build                         install build deps, build + install timescaledb
#   engines/native.sh [--dir D] [--port P] start    initdb (first time) and start; prints the DSN
#   engines/native.sh [--dir D] [--port P] stop|restart|status|dsn|destroy
#
# DESTDIR=/some/stage engines/native.sh build installs into a staging tree (to try a build
# without touching the system's PostgreSQL).
# Defaults: --dir <repo>/.engines/native-<port>, --port 55450 (env TCPD_NATIVE_DIR / TCPD_NATIVE_PORT).
# As root the cluster belongs to the postgres OS user; as a normal user it belongs to that user.
# The superuser is always "postgres", trust auth, listening on 127.0.0.1 only.
set -euo pipefail

TSDB_VERSION=2.19.3
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "native.sh: error: $*" >&2; exit 1; }
note() { echo "native.sh: $*" >&2; }

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

PORT=${TCPD_NATIVE_PORT:-55450}
DIR=${TCPD_NATIVE_DIR:-}
CMD=
while (($#)); do
    case $1 in
        --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
        --dir=*) DIR=${1#--dir=}; shift ;;
        --port) PORT=${2:?--port needs a value}; shift 2 ;;
        --port=*) PORT=${1#--port=}; shift ;;
        -h|--help|help) usage 0 ;;
        build|start|stop|restart|status|dsn|destroy) CMD=$1; shift ;;
        *) echo "native.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[[ -n $CMD ]] || usage 2
[[ $PORT =~ ^[0-9]+$ ]] || die "port must be a number, got '$PORT'"
[[ -n $DIR ]] || DIR=$REPO/.engines/native-$PORT
mkdir -p "$(dirname "$DIR")"
DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")
DATA=$DIR/data
SOCK=$DIR/sock
LOG=$DIR/postgres.log
DSN="postgresql://postgres@127.0.0.1:$PORT/postgres"

# Run a command as the cluster owner: postgres when we are root, else ourselves.
as_owner() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Run a command with root rights (build/install only).
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "'$*' needs root (no sudo found)"; fi
}

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------
ext_dir() { "$PG_BIN/pg_config" --sharedir; }
lib_dir() { "$PG_BIN/pg_config" --pkglibdir; }

installed() {
    [[ -x $PG_BIN/pg_config ]] || return 1
    local share lib
    share=${DESTDIR:-}$(ext_dir)/extension
    lib=${DESTDIR:-}$(lib_dir)
    [[ -f $share/timescaledb--$TSDB_VERSION.sql && -f $lib/timescaledb-$TSDB_VERSION.so ]] &&
        grep -q "default_version = '$TSDB_VERSION'" "$share/timescaledb.control"
}

install_build_deps() {
    local missing=()
    for p in postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR cmake build-essential \
        libssl-dev xz-utils; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if ((${#missing[@]})); then
        note "installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

do_build() {
    if installed; then
        note "timescaledb $TSDB_VERSION already installed for PostgreSQL $PG_MAJOR (cached)"
        return 0
    fi
    install_build_deps
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/tcpd-tsdb-build.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    # apt downloads as its _apt sandbox user: let it write there
    chmod 755 "$work"
    if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
    # A private apt state pointing at trixie's sources: the system's apt sources stay untouched.
    echo 'deb-src http://deb.debian.org/debian trixie main' >"$work/trixie-src.list"
    mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial"
    local apt=(-o "Dir::Etc::SourceList=$work/trixie-src.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State=$work/state" -o "Dir::Cache=$work/cache")
    note "fetching trixie's timescaledb source package"
    apt-get "${apt[@]}" update -qq
    local served
    served=$(apt-cache "${apt[@]}" showsrc timescaledb | sed -n 's/^Version: //p' | head -1)
    [[ $served == "$TSDB_VERSION"+* ]] ||
        die "trixie serves timescaledb '$served', this script is pinned to $TSDB_VERSION; \
update TSDB_VERSION in engines/native.sh deliberately (and the tests that check it)"
    (cd "$work" && apt-get "${apt[@]}" source --download-only -qq "timescaledb=$served")
    local orig
    orig=$(ls "$work"/timescaledb_"$TSDB_VERSION"*.orig.tar.* 2>/dev/null | head -1)
    [[ -n $orig ]] || die "no timescaledb_$TSDB_VERSION orig tarball downloaded"
    tar -xf "$orig" -C "$work"
    local src
    src=$(find "$work" -maxdepth 1 -type d -name "timescaledb-$TSDB_VERSION*" | head -1)
    [[ -n $src ]] || die "unexpected layout of $orig"
    note "building timescaledb $TSDB_VERSION (Apache edition)"
    (
        cd "$src"
        ./bootstrap -DPG_CONFIG="$PG_BIN/pg_config" -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF \
            -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF \
            -DUSE_TELEMETRY=OFF >"$work/bootstrap.log" 2>&1 ||
            { tail -30 "$work/bootstrap.log" >&2; exit 1; }
        cd build
        make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
        as_root make install DESTDIR="${DESTDIR:-}" >"$work/install.log" 2>&1 ||
            { tail -20 "$work/install.log" >&2; exit 1; }
    )
    installed || die "build finished but timescaledb $TSDB_VERSION is not installed"
    note "installed timescaledb $TSDB_VERSION into ${DESTDIR:-}$(ext_dir)/extension"
}

# ---------------------------------------------------------------------------------------------
# cluster
# ---------------------------------------------------------------------------------------------
running() { [[ -f $DATA/PG_VERSION ]] && as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

do_init() {
    installed || die "timescaledb $TSDB_VERSION is not installed: run 'engines/native.sh build' first"
    mkdir -p "$DIR"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$DIR"
        runuser -u postgres -- test -w "$DIR" ||
            die "the postgres user cannot reach $DIR (a parent directory is private?): use --dir"
    fi
    as_owner mkdir -p "$SOCK"
    chmod 700 "$DIR"
    note "initdb $DATA"
    as_owner "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C \
        >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    # our settings live in an include file that every start rewrites (port, socket dir...)
    echo "include_if_exists = 'tcpd.conf'   # tcpd test engine (engines/native.sh)" |
        as_owner tee -a "$DATA/postgresql.conf" >/dev/null
    # trust, but only on the private socket and loopback; one role checks passwords for real,
    # so tests can prove a wrong password is refused and never printed
    as_owner tee "$DATA/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all tcpd_password_check 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
}

write_settings() {
    # fsync=off: a throwaway test cluster. Killing postgres (kill -9, fault tests) loses
    # nothing, since WAL still reaches the OS; only an OS crash could, and then we initdb anew.
    # It makes CREATE DATABASE (one per test) 20x faster on slow disks.
    as_owner tee "$DATA/tcpd.conf" >/dev/null <<EOF
# written by engines/native.sh on every start: edit the script, not this file
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 200
fsync = off
EOF
}

do_start() {
    if running; then
        note "already running ($DATA)"
    else
        [[ -f $DATA/PG_VERSION ]] || do_init
        write_settings
        if (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            die "port $PORT is already in use by another server: pick another with --port"
        fi
        as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null ||
            { tail -20 "$LOG" >&2; die "cluster did not start (log: $LOG)"; }
    fi
    echo "$DSN"
}

do_stop() {
    if running; then
        as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
        note "stopped ($DATA)"
    else
        note "not running ($DATA)"
    fi
}

do_restart() {
    running || die "not running ($DATA): use start"
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -m fast -w -t 60 restart >/dev/null ||
        { tail -20 "$LOG" >&2; die "cluster did not restart (log: $LOG)"; }
    echo "$DSN"
}

do_status() {
    if running; then
        echo "running $DSN ($DATA)"
    else
        echo "stopped ($DATA)"
        return 3
    fi
}

do_destroy() {
    do_stop
    # only ever delete a directory this script made (it has our marker line in postgresql.conf)
    if [[ -d $DIR ]]; then
        if [[ -f $DATA/postgresql.conf ]] && grep -q 'engines/native.sh' "$DATA/postgresql.conf"; then
            rm -rf "$DIR"
            note "removed $DIR"
        elif [[ -z $(ls -A "$DIR") || ! -e $DATA ]]; then
            rm -rf "$DIR"
        else
            die "$DIR does not look like a native.sh cluster: not removing it"
        fi
    fi
}

case $CMD in
    build) do_build ;;
    start) do_start ;;
    stop) do_stop ;;
    restart) do_restart ;;
    status) do_status ;;
    dsn) echo "$DSN" ;;
    destroy) do_destroy ;;
esac
