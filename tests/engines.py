"""Where the test database servers come from, and how each test gets a clean database.

Two roles: "native" (PostgreSQL + TimescaleDB, Apache edition is enough: fault tests,
concurrency, figures) and "tsl" (TimescaleDB's TSL edition: continuous aggregates,
compression, policies). For each role, the first source that applies wins:

1. the environment: TCPD_TEST_DSN (native), TCPD_TEST_TSL_DSN (tsl), each with an optional
   command controlling it (TCPD_TEST_NATIVE_CTL, TCPD_TEST_TSL_CTL);
2. a Docker engine that answers: one testcontainers container of
   timescale/timescaledb:latest-pg17 (full edition) serves both roles;
3. the repository's own engines: engines/native.sh (Apache 2.19.3, port 55450) and
   engines/tsl.sh (TSL 2.28.3, port 55451), stopped again at session end when we started them.

Isolation per test: every server gives each test a new database (CREATE DATABASE from a
per-session template that has the extension, dropped WITH (FORCE) afterwards).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from engine_control import (
    Controller,
    DockerController,
    NativeControl,
    ScriptController,
    connect,
    run_script,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ingest.redact import redact_text, register_secret

REPO = Path(__file__).resolve().parent.parent
NATIVE_SH = REPO / "engines" / "native.sh"
TSL_SH = REPO / "engines" / "tsl.sh"
DOCKER_IMAGE = "timescale/timescaledb:latest-pg17"
DB_PREFIX = "tcpdtest_"


def env_flag(name: str) -> bool:
    """True when the environment variable is set to 1/true/yes."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def with_dbname(dsn: str, dbname: str) -> str:
    """The same DSN pointing at another database (URL or key=value form kept)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))
    return make_conninfo(dsn, dbname=dbname)


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What a server says about itself."""

    server_version: str
    timescaledb_version: str | None  # installed in a test database (or available)
    license: str | None  # timescaledb.license once the library is loaded

    def describe(self) -> str:
        return (
            f"PostgreSQL {self.server_version}, timescaledb {self.timescaledb_version}"
            f" (license {self.license})"
        )


def read_facts(conn: psycopg.Connection[Any]) -> ServerFacts:
    """Ask the server (needs timescaledb created in the connected database for the license)."""
    row = conn.execute(
        "SELECT current_setting('server_version'),"
        " coalesce((SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        "          (SELECT default_version FROM pg_available_extensions"
        "            WHERE name = 'timescaledb')),"
        " current_setting('timescaledb.license', true)"
    ).fetchone()
    assert row is not None
    return ServerFacts(
        server_version=str(row[0]).split(" ")[0],
        timescaledb_version=row[1],
        license=row[2] or None,
    )


@dataclass
class Engine:
    """One server playing one role; hands out clean databases."""

    role: str  # "native" or "tsl"
    origin: str  # where it came from, for the summary
    admin_dsn: str
    facts: ServerFacts
    controller: Controller | None = None
    tests_served: int = 0
    isolation_seconds: float = 0.0
    _template: str | None = None

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """DSN of a new database with the timescaledb extension, dropped afterwards."""
        self.tests_served += 1
        name = f"{DB_PREFIX}{uuid.uuid4().hex[:16]}"
        started = time.perf_counter()
        template = self._template_database()
        with connect(self.admin_dsn) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        dsn = with_dbname(self.admin_dsn, name)
        self.isolation_seconds += time.perf_counter() - started
        try:
            yield dsn
        finally:
            started = time.perf_counter()
            with self._admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            self.isolation_seconds += time.perf_counter() - started

    def _template_database(self) -> str:
        """A template with timescaledb created: copying it is 3x faster than CREATE EXTENSION."""
        if self._template:
            return self._template
        name = f"{DB_PREFIX}template_{uuid.uuid4().hex[:12]}"
        ident = sql.Identifier(name)
        with connect(self.admin_dsn) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
            with connect(with_dbname(self.admin_dsn, name)) as tmpl:
                tmpl.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            # no connections: TimescaleDB's scheduler would otherwise sit in it and block
            # CREATE DATABASE ... TEMPLATE ("being accessed by other users")
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true").format(ident)
            )
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            deadline = time.monotonic() + 10
            while conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"template database {name} still has connections")
                time.sleep(0.05)
        self._template = name
        return name

    def close(self) -> None:
        """Drop the session's template database (per-test databases are gone already)."""
        if not self._template:
            return
        ident = sql.Identifier(self._template)
        with self._admin() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        self._template = None

    def _admin(self) -> psycopg.Connection[Any]:
        try:
            return connect(self.admin_dsn)
        except psycopg.OperationalError:
            # a fault test may have left the server stopped: clean-up and later tests need it
            if self.controller is None:
                raise
            self.controller.start()
            return connect(self.admin_dsn)


def open_engine(role: str, origin: str, dsn: str, controller: Controller | None = None) -> Engine:
    """Connect, read what the server is (in a database with timescaledb: the license shows
    only once the library is loaded) and return the engine."""
    with connect(dsn) as conn:
        facts = read_facts(conn)
    if facts.timescaledb_version is None:
        raise EngineUnavailable(f"the server from {origin} has no timescaledb extension")
    engine = Engine(role, origin, dsn, facts, controller)
    with engine.fresh_database() as scratch, connect(scratch) as conn:
        engine.facts = read_facts(conn)
    engine.tests_served = 0
    engine.isolation_seconds = 0.0
    return engine


def docker_answers() -> bool:
    """True when a Docker engine answers a ping (never raises)."""
    if env_flag("TCPD_TEST_NO_DOCKER"):
        return False
    try:
        import docker  # type: ignore[import-untyped]  # comes with testcontainers

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_container() -> tuple[Any, str]:
    """Start the TimescaleDB container; returns (container, admin DSN with password)."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.13 (the old path now warns about deprecation)
        from testcontainers.postgres import PostgresContainer

    password = uuid.uuid4().hex
    register_secret(password)
    port = free_port()
    container = PostgresContainer(
        DOCKER_IMAGE, username="postgres", password=password, dbname="postgres", driver=None
    )
    container.with_env("TIMESCALEDB_TELEMETRY", "off")
    container.with_bind_ports(5432, port)  # fixed host port: survives restarts
    container.start()
    host = container.get_container_host_ip()
    dsn = f"postgresql://postgres:{password}@{host}:{port}/postgres"
    return container, dsn


BUILD_TIMES = {"engines/native.sh": "~25 s", "engines/tsl.sh": "~70 s, needs the TimescaleDB 2.28.3 tarball"}


def build_advice(unbuilt: list[str]) -> str:
    """One line: which engines are missing and the command that builds them."""
    command = " && ".join(f"{script} build" for script in unbuilt)
    times = "; ".join(f"{script}: {BUILD_TIMES[script]}" for script in unbuilt)
    return (
        f"database tests need the repository's engines, not built on this machine yet: run"
        f" `{command}` once (as root or with sudo; {times}), or set TCPD_TEST_DSN (docs/testing.md)"
    )


class EngineUnavailable(Exception):
    """No server for a role; the message says why and how to get one."""


class EngineBroker:
    """Finds (or starts) a server per role on first use, and stops what it started."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}
        self._errors: dict[str, str] = {}
        self._start_seconds: dict[str, float] = {}
        self._docker: bool | None = None
        self._container: Any = None
        self._container_dsn = ""
        self._stop_commands: list[list[str]] = []

    def native(self) -> Engine:
        """The native-role engine (raises EngineUnavailable with the reason)."""
        return self._get("native")

    def tsl(self) -> Engine:
        """The TSL-role engine (raises EngineUnavailable with the reason)."""
        return self._get("tsl")

    def native_control(self) -> NativeControl:
        """Start/stop/restart of the native engine, when the fixture layer controls it."""
        engine = self.native()
        if engine.controller is None:
            raise EngineUnavailable(
                f"the native engine comes from {engine.origin}, which the tests do not control;"
                " set TCPD_TEST_NATIVE_CTL to a command taking start|stop|restart|status"
                " (e.g. 'engines/native.sh --port 55450') to run fault tests against it"
            )
        return NativeControl(engine.admin_dsn, engine.controller)

    def unbuilt_engines(self, roles: list[str]) -> list[str]:
        """The repository engines among `roles` that the session would start but that are not
        built on this machine, as their scripts' paths relative to the repository ("engines/
        native.sh"). A role served by the environment or Docker needs no build."""
        scripts = {"native": ("TCPD_TEST_DSN", NATIVE_SH), "tsl": ("TCPD_TEST_TSL_DSN", TSL_SH)}
        unbuilt = []
        for role in roles:
            variable, script = scripts[role]
            if os.environ.get(variable) or self._docker_available():
                continue
            check = subprocess.run([str(script), "check"], capture_output=True, timeout=60, check=False)
            if check.returncode:
                unbuilt.append(str(script.relative_to(REPO)))
        return unbuilt

    def _get(self, role: str) -> Engine:
        if role in self._engines:
            return self._engines[role]
        if role in self._errors:
            raise EngineUnavailable(self._errors[role])
        started = time.perf_counter()
        try:
            engine = self._native_source() if role == "native" else self._tsl_source()
        except EngineUnavailable as exc:
            self._errors[role] = str(exc)
            raise
        except Exception as exc:  # any failure becomes the reason shown to every test
            self._errors[role] = redact_text(f"{type(exc).__name__}: {exc}")
            raise EngineUnavailable(self._errors[role]) from None
        self._start_seconds[role] = time.perf_counter() - started
        self._engines[role] = engine
        return engine

    def _native_source(self) -> Engine:
        dsn = os.environ.get("TCPD_TEST_DSN")
        if dsn:
            register_secret(conninfo_password(dsn))
            ctl = os.environ.get("TCPD_TEST_NATIVE_CTL")
            controller = ScriptController(shlex.split(ctl)) if ctl else None
            return open_engine("native", "TCPD_TEST_DSN", dsn, controller)
        if self._docker_available():
            return self._container_engine("native")
        command = [str(NATIVE_SH)]
        if subprocess.run([*command, "status"], capture_output=True, check=False).returncode:
            self._stop_commands.append([*command, "stop"])
        dsn = run_script([*command, "start"])
        return open_engine("native", "engines/native.sh", dsn, ScriptController(command))

    def _tsl_source(self) -> Engine:
        dsn = os.environ.get("TCPD_TEST_TSL_DSN")
        origin = "TCPD_TEST_TSL_DSN"
        controller: Controller | None = None
        if dsn:
            register_secret(conninfo_password(dsn))
            ctl = os.environ.get("TCPD_TEST_TSL_CTL")
            controller = ScriptController(shlex.split(ctl)) if ctl else None
        elif self._docker_available():
            return self._container_engine("tsl")
        else:
            origin = "engines/tsl.sh"
            command = [str(TSL_SH)]
            if subprocess.run([*command, "status"], capture_output=True, check=False).returncode:
                self._stop_commands.append([*command, "stop"])
            dsn = run_script([*command, "start"])
            controller = ScriptController(command)
        try:
            engine = open_engine("tsl", origin, dsn, controller)
        except psycopg.OperationalError as exc:
            raise EngineUnavailable(
                f"cannot connect to the TSL server from {origin}: {redact_text(str(exc).strip())}"
            ) from None
        if engine.facts.license != "timescale":
            engine.close()
            raise EngineUnavailable(
                f"the server from {origin} is not TimescaleDB's TSL edition ({engine.facts.describe()})"
            )
        return engine

    def _docker_available(self) -> bool:
        if self._docker is None:
            self._docker = docker_answers()
        return self._docker

    def _container_engine(self, role: str) -> Engine:
        if self._container is None:
            self._container, self._container_dsn = start_container()
        dsn = self._container_dsn
        controller = DockerController(self._container, dsn) if role == "native" else None
        origin = f"testcontainers ({DOCKER_IMAGE})"
        return open_engine(role, origin, dsn, controller)

    def close(self) -> None:
        """Stop the engines this session started (never ones it found running)."""
        for engine in self._engines.values():
            try:
                engine.close()
            except (psycopg.Error, RuntimeError) as exc:
                # a leftover template is harmless; stopping what we started matters more
                print(f"engines: could not drop the template database: {redact_text(str(exc))}")
        for command in reversed(self._stop_commands):
            subprocess.run(command, capture_output=True, timeout=120, check=False)
        self._stop_commands.clear()
        if self._container is not None:
            self._container.stop()
            self._container = None

    def summary(self) -> list[str]:
        """One line per role: where the server came from, what it is, how much it was used."""
        lines = []
        for role in ("native", "tsl"):
            if role in self._engines:
                e = self._engines[role]
                per_test = e.isolation_seconds / e.tests_served * 1000 if e.tests_served else 0.0
                lines.append(
                    f"{role}: {e.origin}: {e.facts.describe()}; {e.tests_served} tests;"
                    f" engine ready in {self._start_seconds[role]:.1f} s;"
                    f" isolation {per_test:.0f} ms/test"
                )
            elif role in self._errors:
                lines.append(f"{role}: unavailable: {self._errors[role]}")
            else:
                lines.append(f"{role}: not used")
        return lines


def conninfo_password(dsn: str) -> str | None:
    """The password inside a DSN, if any (to register it as a secret)."""
    try:
        value = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return None
    return str(value) if value else None
