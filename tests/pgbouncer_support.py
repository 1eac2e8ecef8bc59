"""A real PgBouncer on loopback in transaction pooling mode, in front of a test server.

Debian's `pgbouncer` package (.ci/run installs it). Started per test, stopped after it.
Without the binary the test skips, except in CI (CI=true), where it fails: the claim that
the writer works behind PgBouncer must not silently go untested there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SERVER_SESSIONS = 2


def _binary() -> str:
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def transaction_pooler(dsn: str, workdir: Path) -> Iterator[str]:
    """Run PgBouncer (pool_mode=transaction, SERVER_SESSIONS server sessions used round robin)
    in front of `dsn`'s server; yield `dsn` rewritten to go through it."""
    binary = _binary()
    target = conninfo_to_dict(dsn)
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    ini = workdir / "pgbouncer.ini"
    lines = [
        "[databases]",
        f"* = host={target.get('host', '127.0.0.1')} port={target.get('port', 5432)} "
        f"user={target.get('user', 'postgres')}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = any",
        "pool_mode = transaction",
        f"default_pool_size = {SERVER_SESSIONS}",
        f"min_pool_size = {SERVER_SESSIONS}",
        # Consecutive transactions of one client go to different server sessions: the
        # situation transaction pooling creates under load, made deterministic.
        "server_round_robin = 1",
    ]  # no logfile or pidfile: it logs to stderr, which goes to a file this process opens
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        lines.append("user = postgres")
    ini.write_text("\n".join(lines) + "\n")
    log = workdir / "pgbouncer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, str(ini)], stdout=out, stderr=subprocess.STDOUT)
    try:
        through = make_conninfo(dsn, host="127.0.0.1", port=str(port))
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(through, prepare_threshold=None, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pgbouncer did not come up: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        # Open every server session now (two transactions at once), so that round robin
        # has sessions to alternate between from the first transaction on.
        with (
            psycopg.connect(through, prepare_threshold=None) as one,
            psycopg.connect(through, prepare_threshold=None) as two,
        ):
            one.execute("SELECT 1")
            two.execute("SELECT 1")
        yield through
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
