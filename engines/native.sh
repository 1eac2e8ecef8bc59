#!/usr/bin/env bash
# Native test engine: Debian's PostgreSQL 15 + TimescaleDB 2.19.3, Apache edition, built from
# trixie's source package, plus a throwaway cluster on a private port and socket directory.
#
#   engines/native.sh build                         install build deps, build + install timescaledb
#   engines/native.sh check                         exit 0 when built, 1 (and what to run) when not
#   engines/native.sh [--dir D] [--port P] start    initdb (first time) and start; prints the DSN
#   engines/native.sh [--dir D] [--port P] stop|restart|status|dsn|destroy
#
# DESTDIR=/some/stage engines/native.sh build installs into a staging tree (to try a build
# without touching the system's PostgreSQL).
# Defaults: --dir <repo>/.engines/native-<port>, --port 55450 (env TCPD_NATIVE_DIR / TCPD_NATIVE_PORT).
# As root the cluster belongs to the postgres OS user; as a normal user it belongs to that user.
# The superuser is always "postgres", trust auth, listening on 127.0.0.1 only.
set -euo pipefail

ENGINE_NAME=native.sh
ENGINE_ENV=TCPD_NATIVE
DEFAULT_PORT=55450
TSDB_VERSION=2.19.3
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=engines/cluster.sh
source "$REPO/engines/cluster.sh"

ext_dir() { "$PG_BIN/pg_config" --sharedir; }
lib_dir() { "$PG_BIN/pg_config" --pkglibdir; }

engine_installed() {
    [[ -x $PG_BIN/pg_config ]] || return 1
    local share lib
    share=${DESTDIR:-}$(ext_dir)/extension
    lib=${DESTDIR:-}$(lib_dir)
    [[ -f $share/timescaledb--$TSDB_VERSION.sql && -f $lib/timescaledb-$TSDB_VERSION.so ]] &&
        grep -q "default_version = '$TSDB_VERSION'" "$share/timescaledb.control"
}

do_build() {
    if engine_installed; then
        note "timescaledb $TSDB_VERSION already installed for PostgreSQL $PG_MAJOR (cached)"
        return 0
    fi
    need_root
    install_build_deps postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR cmake build-essential \
        libssl-dev xz-utils
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
    build_timescaledb "$src" "$work" "$PG_BIN/pg_config" -DAPACHE_ONLY=ON
    engine_installed || die "build finished but timescaledb $TSDB_VERSION is not installed"
    note "installed timescaledb $TSDB_VERSION into ${DESTDIR:-}$(ext_dir)/extension"
}

engine_main "$@"
