"""tcpd db backup / tcpd db restore: encrypted pg_dump backups (docs/backup.md).

Registered by cli/db.py. The key is read from TCPD_BACKUP_PASSPHRASE only: there is
deliberately no option for it, so it can never be typed into argv (visible in `ps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import DatabaseConfigOption, DatabaseUrlOption, database_conninfo, reporting_errors
from ingest.backup import backup, passphrase_from_env, restore
from ingest.backup.pgtools import BINDIR_ENV
from ingest.db.connection import describe

PgBindirOption = Annotated[
    Path | None,
    typer.Option(
        "--pg-bindir",
        envvar=BINDIR_ENV,
        file_okay=False,
        help="Directory of pg_dump / pg_restore (default: PATH); at least the server's major version.",
    ),
]


def backup_command(
    directory: Annotated[
        Path,
        typer.Option("--dir", file_okay=False, help="Folder of the backup files (created if missing)."),
    ] = Path("backups"),
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Keep the newest N backups of this database, delete older ones."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="pg_dump parallel jobs.")] = 1,
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
    pg_bindir: PgBindirOption = None,
) -> None:
    """Dump the database into one encrypted file (key: TCPD_BACKUP_PASSPHRASE)."""
    with reporting_errors():
        passphrase = passphrase_from_env()
        conninfo = database_conninfo(config, database_url)
        result = backup(conninfo, directory, passphrase, keep=keep, jobs=jobs, pg_bindir=pg_bindir)
    size = result.path.stat().st_size
    typer.echo(f"backup written: {result.path} ({size} bytes)")
    for path in result.removed:
        typer.echo(f"removed old backup: {path}")


def restore_command(
    source: Annotated[Path, typer.Argument(dir_okay=False, help="A tcpd-<db>-<time>.tar.gpg file.")],
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
    pg_bindir: PgBindirOption = None,
    work_dir: Annotated[
        Path | None,
        typer.Option("--work-dir", file_okay=False, help="Where to unpack the dump (default: the temp dir)."),
    ] = None,
) -> None:
    """Restore a backup into an EMPTY database (create it first), TimescaleDB's way."""
    with reporting_errors():
        passphrase = passphrase_from_env()
        conninfo = database_conninfo(config, database_url)
        result = restore(conninfo, source, passphrase, pg_bindir=pg_bindir, work_dir=work_dir)
    made = result.manifest
    typer.echo(
        f"restored {source.name} into {describe(conninfo)}: database {made.database!r} "
        f"as of {made.created_at}, TimescaleDB {made.timescaledb_version} ({made.edition} edition)"
    )


def register(app: typer.Typer) -> None:
    """Add `backup` and `restore` to the `tcpd db` group."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
