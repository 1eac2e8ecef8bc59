"""Every database connection of the service is opened here.

All connections use prepare_threshold=None: no server-side prepared statements, so they
work behind PgBouncer (the hot path is COPY, so nothing is lost). Failures become
DatabaseError naming host, port, database and user, never the password; the original
exception is not chained (`from None`) because libpq's text can quote the connection string.

Defaults added to every connection unless the connection string (or libpq's PG*
environment variables) sets them, docs/configuration.md "Connections":

- connect_timeout 10 s;
- TCP keepalives (idle 10 s, interval 5 s, 3 probes) and tcp_user_timeout 30 s: a peer that
  vanished without a FIN or RST (a NAT that forgot the connection, a failover) is noticed by
  the kernel in about 25-30 s instead of the hours of TCP's own retransmission;
- sslmode=verify-full with sslrootcert=system (the operating system's CA store) when the
  server is not on this machine, like the WebSocket side's wss://; loopback and Unix-socket
  connections keep libpq's default. An explicit sslmode below verify-full off loopback is
  logged as a warning (without the password);
- application_name "tcpd" (the writer's pool: "tcpd-writer"), so operators can tell the
  service's sessions apart in pg_stat_activity.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest.config.urls import is_loopback_host
from ingest.errors import DatabaseError
from ingest.redact import redact_dsn, redact_text

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10
# libpq parameter -> (its PG* environment variable, the value added when neither sets it).
DEFAULTS: dict[str, tuple[str, str]] = {
    "connect_timeout": ("PGCONNECT_TIMEOUT", str(DEFAULT_CONNECT_TIMEOUT)),
    "keepalives": ("", "1"),
    "keepalives_idle": ("", "10"),
    "keepalives_interval": ("", "5"),
    "keepalives_count": ("", "3"),
    "tcp_user_timeout": ("", "30000"),  # milliseconds
    "application_name": ("PGAPPNAME", "tcpd"),
}
SECURE_SSLMODE = "verify-full"


def describe(conninfo: str) -> str:
    """`host=... port=... dbname=... user=...` of a connection string, without its password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return redact_dsn(conninfo)
    shown = [f"{key}={params[key]}" for key in ("host", "port", "dbname", "user") if params.get(key)]
    return " ".join(shown) or "the default local server"


def _connect_kwargs(conninfo: str, extra: dict[str, Any], app_name: str = "tcpd") -> dict[str, Any]:
    try:
        given = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise _failure(conninfo, exc, "bad connection string") from None
    kwargs: dict[str, Any] = dict(extra)
    for key, (env, value) in DEFAULTS.items():
        if key not in given and key not in kwargs and not (env and os.environ.get(env)):
            kwargs[key] = app_name if key == "application_name" else value
    kwargs.update(_tls_defaults(conninfo, {**given, **kwargs}))
    kwargs["prepare_threshold"] = None
    return kwargs


def libpq_params(conninfo: str, app_name: str = "tcpd") -> dict[str, str]:
    """The libpq parameters a connection to `conninfo` uses, with this module's defaults
    (timeouts, keepalives, TLS, application_name), for the PostgreSQL client programs
    (pg_dump, pg_restore). It holds the password: keep it out of argv and logs."""
    kwargs = _connect_kwargs(conninfo, {}, app_name)
    kwargs.pop("prepare_threshold", None)
    params = {key: str(value) for key, value in psycopg.conninfo.conninfo_to_dict(conninfo).items()}
    params.update({key: str(value) for key, value in kwargs.items()})
    return params


def is_local(params: dict[str, Any]) -> bool:
    """True when every host of the parameters is this machine: loopback or a Unix socket
    (no host at all means libpq's default socket)."""
    hosts = str(params.get("hostaddr") or params.get("host") or os.environ.get("PGHOST", "")).split(",")
    return all(not h or h.startswith(("/", "@")) or is_loopback_host(h) for h in hosts)


def _tls_defaults(conninfo: str, params: dict[str, Any]) -> dict[str, str]:
    """sslmode=verify-full (system CAs) off loopback unless set; a warning for weaker choices."""
    if is_local(params):
        return {}
    mode = params.get("sslmode") or os.environ.get("PGSSLMODE")
    if not mode:
        has_root = params.get("sslrootcert") or os.environ.get("PGSSLROOTCERT")
        return {"sslmode": SECURE_SSLMODE, **({} if has_root else {"sslrootcert": "system"})}
    where = describe(conninfo)
    if mode != SECURE_SSLMODE and (where, mode) not in _warned:
        _warned.add((where, mode))  # once per server and mode, not once per pooled connection
        risk = "its host name is not checked" if mode == "verify-ca" else "it may be unencrypted"
        if mode == "require":
            risk = "the server's identity is not verified"
        logger.warning(
            "database connection to %s with sslmode=%s: %s; sslmode=verify-full is the default "
            "off this machine (docs/configuration.md)",
            where,
            mode,
            risk,
        )
    return {}


_warned: set[tuple[str, str]] = set()


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
    options = _connect_kwargs(conninfo, kwargs, name or "tcpd")
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
