"""Running PostgreSQL's client programs (pg_dump, pg_restore) without leaking the password.

The connection goes to them as a libpq connection string in `--dbname` WITHOUT the password,
which travels in the child's environment (PGPASSWORD), so it is never in argv (`ps`).
The parameters are the service's own (ingest.db.connection.libpq_params): same TLS defaults,
timeouts and keepalives as every other connection of tcpd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

from ingest.backup.key import child_env
from ingest.db.connection import libpq_params
from ingest.errors import BackupError
from ingest.redact import redact_text

BINDIR_ENV = "TCPD_PG_BINDIR"
# Never on the command line; libpq reads them from the environment.
_SECRET_PARAMS = {"password": "PGPASSWORD", "sslpassword": ""}
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class Target:
    """How a client program reaches a database: argv-safe conninfo plus secret environment."""

    dbname_arg: str  # for --dbname: every parameter except secrets
    env: dict[str, str]  # the process environment with PGPASSWORD added when there is one


def target(conninfo: str, app_name: str) -> Target:
    """Split `conninfo` into what may be shown in argv and what goes to the environment."""
    params = libpq_params(conninfo, app_name)
    env = child_env()
    for key, variable in _SECRET_PARAMS.items():
        value = params.pop(key, None)
        if value and not variable:
            raise BackupError(
                f"{key} in the database URL cannot be passed to pg_dump safely; "
                f"use a key file without a passphrase for the backup"
            )
        if value:
            env[variable] = value
    return Target(dbname_arg=make_conninfo(**params), env=env)


def program(name: str, bindir: Path | None = None) -> str:
    """Path of `name` (pg_dump, pg_restore) in `bindir` or TCPD_PG_BINDIR, else on PATH."""
    folder = bindir or (Path(os.environ[BINDIR_ENV]) if os.environ.get(BINDIR_ENV) else None)
    found = shutil.which(name, path=str(folder)) if folder else shutil.which(name)
    if not found:
        where = f"in {folder}" if folder else "on PATH"
        raise BackupError(
            f"{name} not found {where}: install the PostgreSQL client of the server's major version "
            f"or newer (Debian: postgresql-client-<major>) or set {BINDIR_ENV} to its bin directory"
        )
    return found


def major_version(path: str) -> int:
    """The major version of a PostgreSQL client program (`pg_dump --version`)."""
    result = subprocess.run([path, "--version"], capture_output=True, text=True, env=child_env(), check=False)
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or not match:
        raise BackupError(
            f"cannot tell the version of {path}: {result.stdout.strip() or result.stderr.strip()}"
        )
    return int(match.group(1))


def require_at_least(path: str, server_major: int, what: str) -> int:
    """The program's major version; BackupError when it is older than `server_major`."""
    major = major_version(path)
    if major < server_major:
        raise BackupError(
            f"{path} is PostgreSQL {major}, older than the {what} ({server_major}): "
            f"{Path(path).name} must be at least the same major version; install "
            f"postgresql-client-{server_major} or set {BINDIR_ENV}"
        )
    return major


def dump_command(pg_dump: str, dbname_arg: str, out_dir: Path, jobs: int) -> list[str]:
    """pg_dump in directory format (one compressed file per table; parallel with jobs > 1)."""
    return [pg_dump, "--format=directory", f"--jobs={jobs}", f"--file={out_dir}", f"--dbname={dbname_arg}"]


def restore_command(pg_restore: str, dbname_arg: str, in_dir: Path) -> list[str]:
    """pg_restore of a directory dump, one job (TimescaleDB's catalog must load in order),
    stopping at the first error, objects owned by the restoring role."""
    return [
        pg_restore,
        "--format=directory",
        "--exit-on-error",
        "--no-owner",
        f"--dbname={dbname_arg}",
        str(in_dir),
    ]


def run(argv: list[str], env: dict[str, str], what: str) -> None:
    """Run a client program; BackupError with its last lines of stderr (redacted) on failure."""
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in redact_text(result.stderr).splitlines() if line.strip()]
        detail = " | ".join(lines[-3:]) or f"exit code {result.returncode}"
        raise BackupError(f"{what} failed: {detail}")
