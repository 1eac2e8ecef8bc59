"""ingest.db.connection: no prepared statements, and failures that never show the password."""

from __future__ import annotations

import socket
import traceback

import pytest

from ingest.db.connection import connect, connect_sync, describe, make_pool, open_pool
from ingest.errors import DatabaseError

PASSWORD = "Wr0ng-Horse-Battery"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_redacted(error: DatabaseError, port: int) -> None:
    text = str(error)
    assert f"host=127.0.0.1 port={port} dbname=tcpd_prod user=tcpd" in text
    assert PASSWORD not in text
    assert error.__cause__ is None
    assert error.__suppress_context__
    printed = "".join(traceback.format_exception(error))
    assert PASSWORD not in printed


def test_sync_connection_refused_is_redacted() -> None:
    port = closed_port()
    with pytest.raises(DatabaseError) as info:
        connect_sync(f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{port}/tcpd_prod")
    check_redacted(info.value, port)
    assert "Connection refused" in str(info.value)


async def test_async_connection_refused_is_redacted() -> None:
    port = closed_port()
    with pytest.raises(DatabaseError) as info:
        await connect(f"host=127.0.0.1 port={port} dbname=tcpd_prod user=tcpd password={PASSWORD}")
    check_redacted(info.value, port)


async def test_pool_that_cannot_connect_fails_within_wait() -> None:
    port = closed_port()
    pool = make_pool(f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{port}/tcpd_prod", min_size=1, max_size=2)
    with pytest.raises(DatabaseError, match="no connection within 1 s") as info:
        await open_pool(pool, wait_seconds=1)
    check_redacted(info.value, port)
    assert pool.closed


def test_unparsable_conninfo_is_a_database_error_without_password() -> None:
    with pytest.raises(DatabaseError, match="bad connection string") as info:
        connect_sync(f"host=h password={PASSWORD} port")
    assert PASSWORD not in str(info.value)


def test_describe_hides_password() -> None:
    assert describe(f"postgresql://u:{PASSWORD}@db:5433/x") == "host=db port=5433 dbname=x user=u"


@pytest.mark.db
async def test_every_connection_kind_disables_prepared_statements(db_dsn: str) -> None:
    with connect_sync(db_dsn) as conn:
        assert conn.prepare_threshold is None
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    aconn = await connect(db_dsn)
    async with aconn:
        assert aconn.prepare_threshold is None
    pool = make_pool(db_dsn, min_size=1, max_size=2)
    await open_pool(pool, wait_seconds=10)
    try:
        async with pool.connection() as pooled:
            assert pooled.prepare_threshold is None
            for _ in range(10):  # past psycopg's default threshold of 5: still no prepare
                await pooled.execute("SELECT 1")
            cur = await pooled.execute("SELECT count(*) FROM pg_prepared_statements")
            assert await cur.fetchone() == (0,)
    finally:
        await pool.close()
