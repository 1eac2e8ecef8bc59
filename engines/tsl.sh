#!/usr/bin/env bash
# TSL test engine: TimescaleDB 2.28.3 with its TSL part (continuous aggregates, compression,
# policies), built natively from source against a private copy of Debian's PostgreSQL 15, plus
# a throwaway cluster on a private port and socket directory.
#
#   engines/tsl.sh build                         verify the source tarball, build + install
#   engines/tsl.sh check                         exit 0 when built, 1 (and what to run) when not
#   engines/tsl.sh [--dir D] [--port P] start    initdb (first time) and start; prints the DSN
#   engines/tsl.sh [--dir D] [--port P] stop|restart|status|dsn|destroy
#
# The source: ../shared/engines/timescaledb-2.28.3.tar.xz next to the repository (a CI clone
# at X/<clone> finds X/shared), or the file in env TCPD_TSL_TARBALL; its sha256 is pinned here.
# The install: a copy of Debian's PostgreSQL tree (bin, lib, share, include; PostgreSQL is
# relocatable) under /opt/tcpd-timescaledb-2.28.3 (env TCPD_TSL_PREFIX) with TimescaleDB
# installed into it, so the system's PostgreSQL and its Apache timescaledb stay untouched.
# A second build sees the installed prefix and returns at once.
# Defaults: --dir <repo>/.engines/tsl-<port>, --port 55451 (env TCPD_TSL_DIR / TCPD_TSL_PORT).
# Cluster as in engines/native.sh: owner postgres as root, superuser postgres, trust on loopback.
# Scheduled jobs fail on this engine (see docs/testing.md), and a scheduled run racing a test's
# CALL run_job(id) makes the test fail ("concurrent refresh"): the job scheduler is off
# (timescaledb.max_background_workers = 0); TCPD_TSL_SCHEDULER=on at start/restart turns it on.
set -euo pipefail

ENGINE_NAME=tsl.sh
ENGINE_ENV=TCPD_TSL
DEFAULT_PORT=55451
TSDB_VERSION=2.28.3
TSDB_SHA256=5d53018815d2dc460a69f6300a17623595b44ff67d6ca73367521b0698115402
PG_MAJOR=15
SYSTEM_PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${TCPD_TSL_PREFIX:-/opt/tcpd-timescaledb-$TSDB_VERSION}
TARBALL=${TCPD_TSL_TARBALL:-$REPO/../shared/engines/timescaledb-$TSDB_VERSION.tar.xz}
# Debian installs PostgreSQL under /usr; the copy keeps the layout below $PREFIX instead
PG_BIN=$PREFIX/lib/postgresql/$PG_MAJOR/bin
case ${TCPD_TSL_SCHEDULER:-off} in
    off) ENGINE_SETTINGS='timescaledb.max_background_workers = 0   # no job scheduler: tests CALL run_job' ;;
    on) ENGINE_SETTINGS='' ;;
    *) echo "tsl.sh: error: TCPD_TSL_SCHEDULER must be on or off, got '$TCPD_TSL_SCHEDULER'" >&2; exit 2 ;;
esac
# shellcheck source=engines/cluster.sh
source "$REPO/engines/cluster.sh"

# The build in $1 (a prefix) is complete: its pg_config, library and extension files.
installed_in() {
    local bin=$1/lib/postgresql/$PG_MAJOR/bin share lib
    [[ -x $bin/pg_config && -x $bin/postgres ]] || return 1
    share=$("$bin/pg_config" --sharedir)/extension
    lib=$("$bin/pg_config" --pkglibdir)
    [[ -f $share/timescaledb--$TSDB_VERSION.sql && -f $lib/timescaledb-$TSDB_VERSION.so &&
        -f $lib/timescaledb-tsl-$TSDB_VERSION.so ]] &&
        grep -q "default_version = '$TSDB_VERSION'" "$share/timescaledb.control"
}

engine_installed() { installed_in "$PREFIX"; }

verify_tarball() {
    [[ -f $TARBALL ]] || die "no TimescaleDB source at $TARBALL: put timescaledb-$TSDB_VERSION.tar.xz \
in ../shared/engines beside the repository or point TCPD_TSL_TARBALL at it"
    local sum
    sum=$(sha256sum "$TARBALL" | cut -d' ' -f1)
    [[ $sum == "$TSDB_SHA256" ]] ||
        die "$TARBALL has sha256 $sum, expected $TSDB_SHA256 (timescaledb $TSDB_VERSION): not building it"
}

# Copy Debian's PostgreSQL (bin, pkglib, share, include) to $1 with the same layout below /usr,
# without the system's timescaledb files, and check that the copy's pg_config points into it.
copy_postgres() {
    local stage=$1 dir
    for option in --bindir --pkglibdir --sharedir --includedir; do
        dir=$("$SYSTEM_PG_CONFIG" "$option")
        [[ $dir == /usr/* ]] || die "pg_config $option is $dir, not under /usr: unexpected layout"
        mkdir -p "$stage$(dirname "${dir#/usr}")"
        cp -a "$dir" "$stage${dir#/usr}"
    done
    find "$stage" -name 'timescaledb*' \( -type f -o -type l \) -delete
    local copied
    copied=$("$stage/lib/postgresql/$PG_MAJOR/bin/pg_config" --sharedir)
    [[ $copied == "$stage/share/postgresql/$PG_MAJOR" ]] ||
        die "the copied pg_config reports sharedir $copied, not inside $stage"
}

do_build() {
    if engine_installed; then
        note "timescaledb $TSDB_VERSION (TSL) already installed in $PREFIX (cached)"
        return 0
    fi
    verify_tarball
    need_root
    install_build_deps postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR cmake build-essential \
        libssl-dev xz-utils
    # build into a staging prefix, renamed at the end: a failed build never looks installed
    local stage=$PREFIX.partial work
    work=$(mktemp -d "${TMPDIR:-/tmp}/tcpd-tsdb-tsl-build.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'; as_root rm -rf '$stage'" EXIT
    as_root rm -rf "$stage"
    as_root mkdir -p "$stage"
    [[ $EUID -eq 0 ]] || as_root chown "$(id -u):$(id -g)" "$stage"
    note "copying PostgreSQL $PG_MAJOR into $stage"
    copy_postgres "$stage"
    tar -xJf "$TARBALL" -C "$work"
    [[ -x $work/timescaledb-$TSDB_VERSION/bootstrap ]] || die "unexpected layout of $TARBALL"
    note "building timescaledb $TSDB_VERSION (TSL edition)"
    DESTDIR='' build_timescaledb "$work/timescaledb-$TSDB_VERSION" "$work" \
        "$stage/lib/postgresql/$PG_MAJOR/bin/pg_config"
    installed_in "$stage" || die "build finished but timescaledb $TSDB_VERSION is not in $stage"
    as_root rm -rf "$PREFIX"
    as_root mv "$stage" "$PREFIX"
    engine_installed || die "timescaledb $TSDB_VERSION is not usable after moving it to $PREFIX"
    note "installed timescaledb $TSDB_VERSION (TSL) with PostgreSQL $PG_MAJOR into $PREFIX"
}

engine_main "$@"
