# Shared by engines/native.sh and engines/tsl.sh (sourced, never run): argument parsing,
# privileges, build dependencies and the throwaway cluster (initdb, start, stop, restart,
# status, destroy) on a private port and socket directory.
#
# The sourcing script sets, before calling engine_main "$@":
#   ENGINE_NAME    its file name (native.sh), used in messages and as the marker of its clusters
#   ENGINE_ENV     prefix of its environment defaults (TCPD_NATIVE: TCPD_NATIVE_DIR, _PORT)
#   DEFAULT_PORT   the port without --port
#   PG_BIN         the PostgreSQL bin directory whose initdb/pg_ctl run the cluster
#   TSDB_VERSION   the timescaledb version the cluster must have
#   ENGINE_SETTINGS  optional: more postgresql.conf lines for tcpd.conf
# and defines engine_installed (status 0 when the build is in place) and do_build.

die() { echo "$ENGINE_NAME: error: $*" >&2; exit 1; }
note() { echo "$ENGINE_NAME: $*" >&2; }

# The script's header comment (from line 2 to the first line that is not a comment).
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit "${1:-0}"
}

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

# A build installs into PostgreSQL's directories: say so before minutes of work, not after
# (a failing `as_root` inside the build's logged subshell would end it without a word).
need_root() {
    [[ $EUID -eq 0 ]] || command -v sudo >/dev/null ||
        die "'$ENGINE_NAME build' installs into PostgreSQL's directories: run it as root (no sudo found)"
}

# Debian packages a build needs (the list as arguments), installed when missing.
install_build_deps() {
    local missing=() p
    for p in "$@"; do
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

# Configure, make and install a TimescaleDB source tree with the given pg_config and extra
# cmake flags; logs go to $2 (the work directory), the tail is shown on failure.
build_timescaledb() {
    local src=$1 work=$2 pg_config=$3
    shift 3
    (
        cd "$src"
        ./bootstrap -DPG_CONFIG="$pg_config" -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
            -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF "$@" \
            >"$work/bootstrap.log" 2>&1 || { tail -30 "$work/bootstrap.log" >&2; exit 1; }
        cd build
        make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
        as_root make install DESTDIR="${DESTDIR:-}" >"$work/install.log" 2>&1 ||
            { tail -20 "$work/install.log" >&2; exit 1; }
    )
}

# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------
parse_args() {
    local dir_var=${ENGINE_ENV}_DIR port_var=${ENGINE_ENV}_PORT
    PORT=${!port_var:-$DEFAULT_PORT}
    DIR=${!dir_var:-}
    CMD=
    while (($#)); do
        case $1 in
            --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
            --dir=*) DIR=${1#--dir=}; shift ;;
            --port) PORT=${2:?--port needs a value}; shift 2 ;;
            --port=*) PORT=${1#--port=}; shift ;;
            -h|--help|help) usage 0 ;;
            build|check|start|stop|restart|status|dsn|destroy) CMD=$1; shift ;;
            *) echo "$ENGINE_NAME: unknown argument: $1" >&2; usage 2 ;;
        esac
    done
    [[ -n $CMD ]] || usage 2
    [[ $PORT =~ ^[0-9]+$ ]] || die "port must be a number, got '$PORT'"
    [[ -n $DIR ]] || DIR=$REPO/.engines/${ENGINE_NAME%.sh}-$PORT
    mkdir -p "$(dirname "$DIR")"
    DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")
    DATA=$DIR/data
    SOCK=$DIR/sock
    LOG=$DIR/postgres.log
    DSN="postgresql://postgres@127.0.0.1:$PORT/postgres"
}

# ---------------------------------------------------------------------------------------------
# cluster
# ---------------------------------------------------------------------------------------------
running() { [[ -f $DATA/PG_VERSION ]] && as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

do_init() {
    engine_installed ||
        die "timescaledb $TSDB_VERSION is not installed: run 'engines/$ENGINE_NAME build' first"
    if [[ -d $DATA && -n $(ls -A "$DATA") && ! -f $DATA/PG_VERSION ]]; then
        die "$DATA exists but is not a PostgreSQL cluster (an old engine's data?): use --dir or remove it"
    fi
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
    echo "include_if_exists = 'tcpd.conf'   # tcpd test engine (engines/$ENGINE_NAME)" |
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
# written by engines/$ENGINE_NAME on every start: edit the script, not this file
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 200
fsync = off
${ENGINE_SETTINGS:-}
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
    write_settings
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -m fast -w -t 60 restart >/dev/null ||
        { tail -20 "$LOG" >&2; die "cluster did not restart (log: $LOG)"; }
    echo "$DSN"
}

# Is the build in place (what start needs)? Cheap: the test fixtures ask before anything else.
do_check() {
    if engine_installed; then
        echo "built: timescaledb $TSDB_VERSION"
    else
        echo "not built: timescaledb $TSDB_VERSION is not installed; run 'engines/$ENGINE_NAME build' once"
        return 1
    fi
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
        if [[ -f $DATA/postgresql.conf ]] && grep -q "engines/$ENGINE_NAME" "$DATA/postgresql.conf"; then
            rm -rf "$DIR"
            note "removed $DIR"
        elif [[ -z $(ls -A "$DIR") || ! -e $DATA ]]; then
            rm -rf "$DIR"
        else
            die "$DIR does not look like a $ENGINE_NAME cluster: not removing it"
        fi
    fi
}

engine_main() {
    parse_args "$@"
    case $CMD in
        build) do_build ;;
        check) do_check ;;
        start) do_start ;;
        stop) do_stop ;;
        restart) do_restart ;;
        status) do_status ;;
        dsn) echo "$DSN" ;;
        destroy) do_destroy ;;
    esac
}
