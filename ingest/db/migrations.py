"""Apply the versioned SQL files in sql/ and keep a checksum ledger of what was applied.

Rules (docs/migrations.md explains them):
- files apply in version order, each in one transaction with its ledger row, unless its
  header says `-- tcpd:no-transaction` (then statement by statement, ledger row last);
- on the apache edition an `NNNN_name.apache.sql` variant replaces `NNNN_name.sql`;
- an applied file that changed, an applied file that disappeared, or a new file numbered
  below the latest applied one makes `migrate` refuse to do anything and `verify` report it;
- one migrator at a time: a session-level advisory lock is held around the whole run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ingest import paths
from ingest.db import ledger
from ingest.db.connection import connect_sync, describe
from ingest.db.edition import ServerInfo, ensure_timescaledb, read_server_info
from ingest.db.ledger import AppliedMigration
from ingest.db.migration_files import Migration, MigrationFile, discover
from ingest.db.sqlsplit import split_statements
from ingest.errors import DatabaseError, MigrationError
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

# pg_advisory_lock key: the bytes of "tcpdmigr" as a signed bigint.
LOCK_KEY = int.from_bytes(b"tcpdmigr", "big", signed=True)
DEFAULT_LOCK_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Inspection:
    """The ledger compared with the files: what is applied, what is pending, what is wrong."""

    info: ServerInfo
    applied: list[AppliedMigration]
    pending: list[tuple[Migration, MigrationFile]]
    problems: list[str]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of `verify`: ok is False when any applied file changed, vanished or is out of order."""

    ok: bool
    problems: list[str]
    applied: list[AppliedMigration]
    pending: list[str]


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Result of `status`: server versions, edition, applied and pending migrations."""

    server_version: str
    timescaledb_version: str | None
    edition: str
    applied: list[AppliedMigration]
    pending: list[str]
    problems: list[str]


def inspect(conn: psycopg.Connection[Any], migrations: list[Migration], sql_dir: Path) -> Inspection:
    """Compare the ledger in `conn` with `migrations`; reads only."""
    info = read_server_info(conn)
    applied = ledger.read_ledger(conn)
    by_version = {m.version: m for m in migrations}
    problems: list[str] = []
    for row in applied:
        migration = by_version.get(row.version)
        files = [] if migration is None else [migration.main, migration.apache]
        on_disk = next((f for f in files if f is not None and f.file_name == row.file), None)
        if on_disk is None:
            problems.append(
                f"{row.file} was applied (version {row.version:04d}) but is missing from {sql_dir}: "
                "restore it from version control"
            )
        elif on_disk.checksum != row.checksum:
            problems.append(
                f"{row.file} was edited after it was applied (sha256 {row.checksum[:12]}... in the "
                f"ledger, {on_disk.checksum[:12]}... on disk): restore it and put the change in a new "
                "migration"
            )
    done = {row.version for row in applied}
    latest = max(done, default=-1)
    pending: list[tuple[Migration, MigrationFile]] = []
    for migration in migrations:
        if migration.version in done:
            continue
        if migration.version < latest:
            problems.append(
                f"{migration.main.file_name} is new but numbered below the latest applied migration "
                f"({latest:04d}): renumber it above {latest:04d}"
            )
            continue
        try:
            pending.append((migration, migration.file_for(info.edition)))
        except MigrationError as exc:
            problems.append(str(exc))
    return Inspection(info=info, applied=applied, pending=pending, problems=problems)


@contextmanager
def advisory_lock(conn: psycopg.Connection[Any], wait_seconds: float) -> Iterator[None]:
    """Hold the migration lock (session level) for the block; MigrationError after `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if row is not None and row[0]:
            break
        if time.monotonic() >= deadline:
            raise MigrationError(
                f"another migrator has held the migration lock (advisory lock {LOCK_KEY}) for "
                f"{wait_seconds:g} s; wait for it to finish, or find it in pg_locks"
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        # A broken connection has lost the lock with its session: nothing to release.
        with suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _line_of(script: bytes, exc: psycopg.Error) -> str:
    position = exc.diag.statement_position
    if not position:
        return ""
    text = script.decode("utf-8")
    return f" near line {text[: int(position)].count(chr(10)) + 1}"


def _apply(conn: psycopg.Connection[Any], migration: Migration, file: MigrationFile, edition: str) -> float:
    script = file.read_bytes()
    started = time.perf_counter()
    if file.transactional:
        try:
            with conn.transaction():
                conn.execute(script)
                elapsed = _record(conn, migration, file, edition, started)
        except psycopg.Error as exc:
            raise MigrationError(
                f"{file.file_name} failed{_line_of(script, exc)} and was rolled back: "
                f"{redact_text(str(exc)).strip()}"
            ) from None
        return elapsed
    statements = split_statements(script.decode("utf-8"))
    for number, statement in enumerate(statements, start=1):
        try:
            conn.execute(statement.encode("utf-8"))
        except psycopg.Error as exc:
            raise MigrationError(
                f"{file.file_name} (no-transaction) failed at statement {number} of {len(statements)}; "
                f"the statements before it stay applied, so keep the file idempotent and rerun: "
                f"{redact_text(str(exc)).strip()}"
            ) from None
    return _record(conn, migration, file, edition, started)


def _record(
    conn: psycopg.Connection[Any], migration: Migration, file: MigrationFile, edition: str, started: float
) -> float:
    """Write the ledger row of an applied file; return its execution time in ms since `started`."""
    elapsed = (time.perf_counter() - started) * 1000
    ledger.record(
        conn,
        version=migration.version,
        name=migration.name,
        file=file.file_name,
        checksum=file.checksum,
        edition=edition,
        execution_ms=elapsed,
    )
    return elapsed


def migrate(
    conninfo: str,
    *,
    dry_run: bool = False,
    sql_dir: Path | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> list[str]:
    """Apply every pending migration; return the file names applied (or that would be, on dry_run).

    Refuses to apply anything (MigrationError) when the ledger and the files disagree.
    Creates the timescaledb extension and the ledger table first when they are missing
    (not on dry_run, which changes nothing).
    """
    folder = sql_dir or paths.sql_dir()
    migrations = discover(folder)
    with connect_sync(conninfo, autocommit=True) as conn:
        try:
            with advisory_lock(conn, lock_wait):
                if not dry_run:
                    ensure_timescaledb(conn)
                    ledger.ensure_ledger(conn)
                found = inspect(conn, migrations, folder)
                if found.problems:
                    raise MigrationError(
                        "refusing to migrate " + describe(conninfo) + ":\n  " + "\n  ".join(found.problems)
                    )
                names = [file.file_name for _, file in found.pending]
                if dry_run:
                    return names
                for migration, file in found.pending:
                    elapsed = _apply(conn, migration, file, found.info.edition)
                    logger.info("applied %s in %.0f ms", file.file_name, elapsed)
                return names
        except MigrationError:
            raise
        except psycopg.Error as exc:
            raise DatabaseError(f"migrating {describe(conninfo)}: {redact_text(str(exc)).strip()}") from None


def _inspect_readonly(conninfo: str, sql_dir: Path | None) -> Inspection:
    folder = sql_dir or paths.sql_dir()
    migrations = discover(folder)
    with connect_sync(conninfo, autocommit=True) as conn:
        try:
            return inspect(conn, migrations, folder)
        except psycopg.Error as exc:
            raise DatabaseError(f"reading {describe(conninfo)}: {redact_text(str(exc)).strip()}") from None


def verify(conninfo: str, *, sql_dir: Path | None = None) -> VerifyReport:
    """Check the ledger against the files without changing anything."""
    found = _inspect_readonly(conninfo, sql_dir)
    return VerifyReport(
        ok=not found.problems,
        problems=found.problems,
        applied=found.applied,
        pending=[file.file_name for _, file in found.pending],
    )


def status(conninfo: str, *, sql_dir: Path | None = None) -> StatusReport:
    """Server and TimescaleDB versions, edition, applied and pending migrations."""
    found = _inspect_readonly(conninfo, sql_dir)
    return StatusReport(
        server_version=found.info.server_version,
        timescaledb_version=found.info.timescaledb_version,
        edition=found.info.edition,
        applied=found.applied,
        pending=[file.file_name for _, file in found.pending],
        problems=found.problems,
    )
