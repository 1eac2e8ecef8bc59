"""tcpd db: apply, verify and inspect the SQL migrations; backup and restore (cli/db_backup.py)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import db_backup
from cli.common import DatabaseConfigOption, DatabaseUrlOption, database_conninfo, reporting_errors
from ingest.db import migrations

app = typer.Typer(
    help="Database schema: migrate, verify, status; encrypted backup and restore.", no_args_is_help=True
)
out = Console(highlight=False)

SqlDirOption = Annotated[
    Path | None,
    typer.Option("--sql-dir", help="Migrations folder (default: the packaged sql/).", file_okay=False),
]


@app.command("migrate")
def migrate_command(
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
    sql_dir: SqlDirOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be applied.")] = False,
) -> None:
    """Apply every pending migration, in order, under an advisory lock."""
    with reporting_errors():
        conninfo = database_conninfo(config, database_url)
        applied = migrations.migrate(conninfo, dry_run=dry_run, sql_dir=sql_dir)
    if not applied:
        out.print("Nothing to apply: the schema is up to date.")
        return
    verb = "would apply" if dry_run else "applied"
    for name in applied:
        out.print(f"{verb} {name}")


@app.command("verify")
def verify_command(
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
    sql_dir: SqlDirOption = None,
) -> None:
    """Check that applied migrations match the files (exit 1 when they do not)."""
    with reporting_errors():
        report = migrations.verify(database_conninfo(config, database_url), sql_dir=sql_dir)
    for problem in report.problems:
        out.print(f"[red]problem:[/] {problem}")
    if not report.ok:
        raise typer.Exit(1)
    out.print(
        f"OK: {len(report.applied)} applied migrations match their files; {len(report.pending)} pending."
    )


@app.command("status")
def status_command(
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
    sql_dir: SqlDirOption = None,
) -> None:
    """Show server and TimescaleDB versions, the edition, applied and pending migrations."""
    with reporting_errors():
        report = migrations.status(database_conninfo(config, database_url), sql_dir=sql_dir)
    out.print(f"PostgreSQL {report.server_version}")
    out.print(
        f"TimescaleDB {report.timescaledb_version or '(extension not created)'} ({report.edition} edition)"
    )
    table = Table(title="Migrations")
    for column in ("version", "file", "state", "applied at (UTC)", "ms"):
        table.add_column(column)
    for row in report.applied:
        applied_at = row.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(f"{row.version:04d}", row.file, "applied", applied_at, f"{row.execution_ms:.0f}")
    for name in report.pending:
        table.add_row(name[:4], name, "pending", "", "")
    out.print(table)
    for problem in report.problems:
        out.print(f"[red]problem:[/] {problem}")
    if report.problems:
        raise typer.Exit(1)


db_backup.register(app)
