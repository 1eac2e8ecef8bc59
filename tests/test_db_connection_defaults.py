"""What every service connection gets unless its connection string says otherwise
(ingest.db.connection): TCP keepalives and tcp_user_timeout on the real socket, an
application_name, and sslmode=verify-full off this machine, against the native engine."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator

import psycopg.conninfo
import pytest

from ingest.config.database import DatabaseSettings
from ingest.db.connection import connect, connect_sync
from ingest.errors import DatabaseError
from tests.tcp_proxy import StallingProxy
from tests.tls_support import outside_address

PASSWORD = "tls-Pa55-w0rd-zq"


def socket_options(conn: psycopg.Connection[object]) -> dict[str, int]:
    fd = os.dup(conn.pgconn.socket)
    with socket.socket(fileno=fd) as sock:
        return {
            "SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "TCP_KEEPIDLE": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "TCP_KEEPINTVL": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "TCP_KEEPCNT": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "TCP_USER_TIMEOUT": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


def test_the_socket_has_keepalives_and_a_user_timeout(db_dsn: str) -> None:
    with connect_sync(db_dsn) as conn:
        assert socket_options(conn) == {
            "SO_KEEPALIVE": 1,
            "TCP_KEEPIDLE": 10,
            "TCP_KEEPINTVL": 5,
            "TCP_KEEPCNT": 3,
            "TCP_USER_TIMEOUT": 30_000,
        }
        assert conn.execute("SHOW application_name").fetchone() == ("tcpd",)


def test_the_connection_string_wins_over_every_default(db_dsn: str) -> None:
    own = psycopg.conninfo.make_conninfo(
        db_dsn, keepalives_idle=42, tcp_user_timeout=7000, application_name="mine", connect_timeout=3
    )
    with connect_sync(own) as conn:
        options = socket_options(conn)
        assert (options["TCP_KEEPIDLE"], options["TCP_USER_TIMEOUT"]) == (42, 7000)
        assert conn.execute("SHOW application_name").fetchone() == ("mine",)
        assert conn.info.get_parameters()["connect_timeout"] == "3"


@pytest.fixture
async def outside_dsn(db_dsn: str) -> AsyncIterator[str]:
    """db_dsn reached through a proxy on a non-loopback address of this machine: to libpq
    a remote server (the engine itself listens on loopback only and has no TLS)."""
    params = psycopg.conninfo.conninfo_to_dict(db_dsn)
    outside = outside_address()
    proxy = StallingProxy(str(params["host"]), int(params["port"]), listen_host=outside)
    port = await proxy.start()
    try:
        yield psycopg.conninfo.make_conninfo(db_dsn, host=outside, port=port, password=PASSWORD)
    finally:
        await proxy.stop()


async def test_off_this_machine_tls_with_a_verified_server_is_required(outside_dsn: str) -> None:
    with pytest.raises(DatabaseError) as refused:
        await connect(outside_dsn)
    text = str(refused.value)
    assert "SSL" in text  # the server offers no TLS: libpq refuses to go on without it
    assert PASSWORD not in text


async def test_sslmode_disable_in_the_url_is_honoured_and_warned_about_once(
    outside_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain = psycopg.conninfo.make_conninfo(outside_dsn, sslmode="disable")
    caplog.set_level(logging.WARNING, "ingest.db.connection")
    for _ in range(2):
        conn = await connect(plain)
        async with conn:
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
    warnings = [r.getMessage() for r in caplog.records if "sslmode=disable" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "it may be unencrypted" in warnings[0]
    assert PASSWORD not in warnings[0]


def test_loopback_and_socket_urls_keep_libpqs_default_sslmode(db_dsn: str) -> None:
    for host in ("127.0.0.1", "localhost"):
        with connect_sync(psycopg.conninfo.make_conninfo(db_dsn, host=host)) as conn:
            assert "sslmode" not in conn.info.get_parameters()


def test_the_pool_needs_room_for_the_writer() -> None:
    with pytest.raises(ValueError, match="raise max_overflow"):
        DatabaseSettings.model_validate({"url": "postgresql://u@h/db", "pool_size": 1, "max_overflow": 1})
    fits = DatabaseSettings.model_validate({"url": "postgresql://u@h/db", "pool_size": 1, "max_overflow": 2})
    assert fits.max_connections == 3
