"""Every database connection of the service is opened here.

All connections use prepare_threshold=None: no server-side prepared statements, so they
work behind PgBouncer and on the single-session PGlite engine (the hot path is COPY, so
nothing is lost). Failures become DatabaseError naming host, port, database and user,
never the password; the original exception is not chained (`from None`) because
libpq's text can quote the connection string.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.errors import DatabaseError
from ingest.redact import redact_dsn, redact_text

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10


def describe(conninfo: str) -> str:
    """`host=... port=... dbname=... user=...` of a connection string, without its password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return redact_dsn(conninfo)
    shown = [f"{key}={params[key]}" for key in ("host", "port", "dbname", "user") if params.get(key)]
    return " ".join(shown) or "the default local server"


def _connect_kwargs(conninfo: str, extra: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"prepare_threshold": None, **extra}
    try:
        has_timeout = "connect_timeout" in psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise _failure(conninfo, exc, "bad connection string") from None
    if not has_timeout and "connect_timeout" not in kwargs:
        kwargs["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    kwargs["prepare_threshold"] = None
    return kwargs


def _failure(conninfo: str, exc: BaseException, what: str = "cannot connect") -> DatabaseError:
    reason = " ".join(redact_text(str(exc)).split())
    return DatabaseError(f"{what} to {describe(conninfo)}: {reason}")


def connect_sync(conninfo: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a synchronous connection (CLI, migrations); DatabaseError when it fails."""
    options = _connect_kwargs(conninfo, kwargs)
    try:
        return psycopg.Connection.connect(conninfo, **options)
    except psycopg.Error as exc:
        raise _failure(conninfo, exc) from None


async def connect(conninfo: str, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    """Open an asyncio connection; DatabaseError when it fails."""
    options = _connect_kwargs(conninfo, kwargs)
    try:
        return await psycopg.AsyncConnection.connect(conninfo, **options)
    except psycopg.Error as exc:
        raise _failure(conninfo, exc) from None


def make_pool(
    conninfo: str,
    *,
    min_size: int,
    max_size: int,
    timeout: float = 30.0,
    max_lifetime: float = 3600.0,
    name: str | None = None,
    **kwargs: Any,
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """Build (not open) an asyncio pool; the caller runs `await open_pool(pool)` or `pool.open()`.

    `timeout` is how long getconn() waits for a free connection, `max_lifetime` when a
    connection is recycled (the config's pool_timeout and pool_recycle).
    """
    options = _connect_kwargs(conninfo, kwargs)
    return AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        max_lifetime=max_lifetime,
        name=name,
        kwargs=options,
        open=False,
    )


async def open_pool(pool: AsyncConnectionPool[Any], *, wait_seconds: float = 30.0) -> None:
    """Open `pool` and wait for its first connections; DatabaseError if none comes in `wait_seconds`."""
    try:
        await pool.open(wait=True, timeout=wait_seconds)
    except PoolTimeout:
        await pool.close()
        where = describe(pool.conninfo) if isinstance(pool.conninfo, str) else f"pool {pool.name}"
        raise DatabaseError(
            f"cannot connect to {where}: no connection within {wait_seconds:g} s "
            "(is the server up and the URL right?)"
        ) from None
