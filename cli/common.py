"""Helpers shared by the command groups: database options, loading configs, reporting errors.

Every command body runs inside `reporting_errors()`: a TcpdError becomes one red message
on stderr (secrets masked) and exit code 2 for config errors, 1 for anything else; never
a traceback.

Nothing here imports rich at module level: `tcpd run` imports this module and would keep
rich (~2 MB) in its memory for its whole life just to print an error on the way out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from psycopg import conninfo as libpq_conninfo
from pydantic import ValidationError

from ingest.config import DatabaseFile, DatabaseSettings, load_database_file
from ingest.config.errors import from_validation_error
from ingest.config.secrets import DATABASE_URL_ENV
from ingest.errors import ConfigError, TcpdError
from ingest.redact import redact_text

DEFAULT_DATABASE_CONFIG = Path("config/database.json")
CONFIG_EXIT = 2
ERROR_EXIT = 1

DatabaseConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Database config file (default: config/database.json).", dir_okay=False),
]
# The same option, for commands whose --config means something else or that read only the database.
DatabaseConfigFileOption = Annotated[
    Path | None,
    typer.Option(
        "--database-config", help="Database config file (default: config/database.json).", dir_okay=False
    ),
]
ARGV_PASSWORD_WARNING = (
    f"warning: --database-url carries a password, which any user of this machine can read in the "
    f"process list (ps); set {DATABASE_URL_ENV} or database.url in the config file instead"
)


def _has_password(url: str) -> bool:
    try:
        return bool(libpq_conninfo.conninfo_to_dict(url).get("password"))
    except Exception:  # not a connection string: the config check reports it
        return False


DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        show_default=False,
        help=f"Connection URL; overrides database.url in the config file. Prefer {DATABASE_URL_ENV} "
        "for a URL with a password (argv is visible to every user in ps).",
    ),
]


def fail(error: TcpdError) -> NoReturn:
    """Print `error` in red on stderr and exit: 2 for a ConfigError, 1 for other errors."""
    from rich.console import Console
    from rich.markup import escape

    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    stderr.print(f"[bold red]error:[/] [red]{escape(redact_text(str(error)))}[/]")
    raise typer.Exit(CONFIG_EXIT if isinstance(error, ConfigError) else ERROR_EXIT)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn TcpdError raised in the block into a clean message and exit code."""
    try:
        yield
    except TcpdError as error:
        fail(error)


def warn_if_password_in_argv(database_url: str | None) -> None:
    """A password typed on the command line sits in argv, readable in `ps`, for the life of
    the process: say so (a URL that came from the environment variable is not warned about)."""
    from_env = os.environ.get(DATABASE_URL_ENV)
    if database_url and database_url != from_env and _has_password(database_url):
        typer.echo(ARGV_PASSWORD_WARNING, err=True)


def database_conninfo(config: Path | None, database_url: str | None) -> str:
    """The connection string to use: `--database-url`/TCPD_DATABASE_URL wins over the file.

    Without `--config`, config/database.json is read when it exists; when it does not,
    the URL alone is enough.
    """
    warn_if_password_in_argv(database_url)
    if config is None and database_url and not DEFAULT_DATABASE_CONFIG.exists():
        try:
            return DatabaseSettings.model_validate({"url": database_url}).conninfo()
        except ValidationError as exc:
            raise from_validation_error("--database-url", DatabaseSettings, exc) from None
    return load_database(config, database_url).database.conninfo()


def load_database(config: Path | None, database_url: str | None) -> DatabaseFile:
    """Load the database config file (default config/database.json) with the URL override."""
    return load_database_file(config or DEFAULT_DATABASE_CONFIG, database_url=database_url)
