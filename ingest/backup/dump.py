"""`tcpd db backup`: pg_dump, pack and encrypt into one file, prune old ones."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ingest.backup import archive, gpg, pgtools
from ingest.db.connection import connect_sync, describe
from ingest.db.edition import read_server_info
from ingest.errors import BackupError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What a backup made: the file, its manifest, the old files pruned, the programs run."""

    path: Path
    manifest: archive.Manifest
    removed: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


def backup(
    conninfo: str,
    directory: Path,
    passphrase: str,
    *,
    keep: int | None = None,
    jobs: int = 1,
    pg_bindir: Path | None = None,
) -> BackupResult:
    """Dump the database of `conninfo` into an encrypted file in `directory`.

    The file appears under its final name only when complete (written as `.partial`, then
    renamed); with `keep`, older backups of the same database beyond the newest `keep` are
    deleted afterwards.
    """
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1")
    if jobs < 1:
        raise BackupError("--jobs must be at least 1")
    gpg.gpg_program()  # missing gpg: say so before a long pg_dump, not after
    directory.mkdir(parents=True, exist_ok=True)
    with connect_sync(conninfo, autocommit=True) as conn:
        info = read_server_info(conn)
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        database = str(row[0])
    pg_dump = pgtools.program("pg_dump", pg_bindir)
    server_major = info.server_version_num // 10000
    dump_major = pgtools.require_at_least(pg_dump, server_major, "server")
    now = datetime.now(UTC)
    manifest = archive.Manifest(
        format=archive.FORMAT,
        database=database,
        created_at=now.isoformat(),
        server_version=info.server_version,
        server_major=server_major,
        timescaledb_version=info.timescaledb_version,
        edition=info.edition,
        pg_dump_major=dump_major,
    )
    final = directory / archive.backup_name(database, now)
    if final.exists():
        raise BackupError(f"{final} exists already: one backup per database and second")
    partial = final.with_name(final.name + ".partial")
    commands: list[list[str]] = []
    work = Path(tempfile.mkdtemp(prefix=".tcpd-backup-", dir=directory))
    try:
        target = pgtools.target(conninfo, "tcpd-backup")
        dump_dir = work / archive.DUMP_DIR
        argv = pgtools.dump_command(pg_dump, target.dbname_arg, dump_dir, jobs)
        commands.append(argv)
        logger.info("dumping %s", describe(conninfo))
        pgtools.run(argv, target.env, "pg_dump")
        with gpg.encrypting(partial, passphrase, commands) as sink:
            archive.pack(sink, manifest, dump_dir)
        partial.chmod(0o600)
        partial.rename(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    removed = archive.prune(directory, database, keep) if keep else []
    logger.info("backup written: %s (%d old removed)", final, len(removed))
    return BackupResult(path=final, manifest=manifest, removed=removed, commands=commands)
