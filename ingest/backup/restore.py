"""`tcpd db restore`: decrypt, unpack, then TimescaleDB's documented restore procedure.

Into an existing, empty database (at most the timescaledb extension in it):

1. CREATE EXTENSION timescaledb VERSION '<the backup's version>' (TimescaleDB restores only
   into the version that was dumped; update afterwards with ALTER EXTENSION ... UPDATE);
2. SELECT timescaledb_pre_restore();   (restoring mode, background workers stopped)
3. pg_restore, one job, stopping at the first error;
4. SELECT timescaledb_post_restore();  (always, also after a failed pg_restore).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ingest.backup import archive, gpg, pgtools
from ingest.db.connection import connect_sync, describe
from ingest.db.edition import read_server_info
from ingest.errors import BackupError
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

# Relations in the target that are not part of an extension: anything here means "not empty".
_USER_RELATIONS = """
SELECT count(*) FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """The manifest of the restored backup and the programs run."""

    manifest: archive.Manifest
    commands: list[list[str]] = field(default_factory=list)


def restore(
    conninfo: str,
    source: Path,
    passphrase: str,
    *,
    pg_bindir: Path | None = None,
    work_dir: Path | None = None,
) -> RestoreResult:
    """Restore the backup file `source` into the (empty) database of `conninfo`."""
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    gpg.gpg_program()
    commands: list[list[str]] = []
    work = Path(tempfile.mkdtemp(prefix=".tcpd-restore-", dir=work_dir))
    try:
        manifest = _decrypt(source, passphrase, work, commands)
        pg_restore = pgtools.program("pg_restore", pg_bindir)
        pgtools.require_at_least(pg_restore, manifest.pg_dump_major, "pg_dump that made the backup")
        with connect_sync(conninfo, autocommit=True) as conn, _sql_errors(conninfo):
            _prepare(conn, manifest, conninfo)
            target = pgtools.target(conninfo, "tcpd-restore")
            argv = pgtools.restore_command(pg_restore, target.dbname_arg, work / archive.DUMP_DIR)
            commands.append(argv)
            _pre_restore(conn)
            try:
                logger.info("restoring %s into %s", source.name, describe(conninfo))
                pgtools.run(argv, target.env, "pg_restore")
            except BackupError as exc:
                raise BackupError(
                    f"{exc}; the target database is partly restored: drop it, create it empty "
                    f"and restore again"
                ) from None
            finally:
                conn.execute("SELECT timescaledb_post_restore()")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return RestoreResult(manifest=manifest, commands=commands)


@contextmanager
def _sql_errors(conninfo: str) -> Iterator[None]:
    """A statement the target refused becomes a BackupError (redacted, no traceback)."""
    try:
        yield
    except psycopg.Error as exc:
        reason = " ".join(redact_text(str(exc)).split())
        raise BackupError(f"restore into {describe(conninfo)} failed: {reason}") from None


def _pre_restore(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute("SELECT timescaledb_pre_restore()")
    except psycopg.errors.InsufficientPrivilege:
        row = conn.execute("SELECT current_user").fetchone()
        role = row[0] if row else "<role>"
        raise BackupError(
            f"role {role} may not run timescaledb_pre_restore(), which sets timescaledb.restoring "
            f"on the database: restore as a superuser (the compose POSTGRES_USER is one)"
        ) from None


def _decrypt(source: Path, passphrase: str, work: Path, commands: list[list[str]]) -> archive.Manifest:
    """Decrypt and unpack into `work`. A wrong key is reported as such even though it shows
    first as an unreadable tar stream: gpg's verdict is asked before the archive's."""
    with gpg.decrypting(source, passphrase, commands) as decryption:
        try:
            manifest = archive.unpack(decryption.stream, work)
        except (tarfile.TarError, BackupError, OSError) as exc:
            decryption.finish()  # raises BackupKeyError when gpg failed
            if isinstance(exc, BackupError):
                raise
            raise BackupError(f"not a tcpd backup: {source.name} is not a tar archive ({exc})") from None
        decryption.finish()
    return manifest


def _prepare(conn: psycopg.Connection[Any], manifest: archive.Manifest, conninfo: str) -> None:
    """Check the target is empty and matches the backup; create timescaledb at its version."""
    where = describe(conninfo)
    row = conn.execute(_USER_RELATIONS).fetchone()
    assert row is not None
    if row[0]:
        raise BackupError(
            f"the target database ({where}) is not empty ({row[0]} tables, views or sequences): "
            f"restore into a new database (CREATE DATABASE ...; then tcpd db restore)"
        )
    info = read_server_info(conn)
    wanted = manifest.timescaledb_version
    if wanted is None:
        return
    if info.timescaledb_version not in (None, wanted):
        raise BackupError(
            f"the target database has TimescaleDB {info.timescaledb_version}, the backup {wanted}: "
            f"TimescaleDB restores only into the same version; restore into a new database "
            f"(tcpd creates the extension at {wanted}), then ALTER EXTENSION timescaledb UPDATE"
        )
    if info.timescaledb_version is None:
        available = [
            r[0]
            for r in conn.execute(
                "SELECT version FROM pg_available_extension_versions WHERE name = 'timescaledb'"
            ).fetchall()
        ]
        if wanted not in available:
            raise BackupError(
                f"the backup needs TimescaleDB {wanted}, which the server of {where} does not have "
                f"(it has: {', '.join(sorted(available)) or 'none'}): TimescaleDB restores only into "
                f"the version that was dumped; install {wanted}, restore, then ALTER EXTENSION "
                f"timescaledb UPDATE"
            )
        conn.execute(sql.SQL("CREATE EXTENSION timescaledb VERSION {}").format(sql.Literal(wanted)))
        info = read_server_info(conn)  # the edition is known once the library is loaded
    if manifest.edition == "timescale" and not info.has_tsl:
        raise BackupError(
            f"the backup comes from TimescaleDB's TSL edition (continuous aggregates, policies) "
            f"but {where} runs the Apache edition: restore on a server with timescaledb.license = timescale"
        )
