"""tcpd run: collect from every exchange config given, into the database, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from cli.common import DEFAULT_DATABASE_CONFIG, reporting_errors
from ingest.config import (
    DatabaseFile,
    ExchangeFile,
    LoggingFile,
    load_database_file,
    load_exchange_file,
    load_logging_file,
)
from ingest.config.http import HttpSettings
from ingest.errors import ConfigError
from ingest.gc_policy import keep_gc_off_the_hot_path
from ingest.logsetup import configure_logging
from ingest.service import IngestService

DEFAULT_LOGGING_CONFIG = Path("config/logging.json")


def run(
    config: Annotated[
        list[Path],
        typer.Option("--config", help="Exchange config file (repeat for more exchanges).", dir_okay=False),
    ],
    database_config: Annotated[
        Path,
        typer.Option(
            "--database-config",
            help="Database config file; TCPD_DATABASE_URL overrides its URL.",
            dir_okay=False,
        ),
    ] = DEFAULT_DATABASE_CONFIG,
    logging_config: Annotated[
        Path | None,
        typer.Option(
            "--logging-config",
            help="Logging config file (default: config/logging.json when it exists).",
            dir_okay=False,
        ),
    ] = None,
    http_listen: Annotated[
        str | None,
        typer.Option(
            "--http-listen",
            help='Address of /metrics, /healthz, /readyz ("IP:port", or "off"); overrides http.listen.',
        ),
    ] = None,
) -> None:
    """Run the collectors of every --config file until SIGINT/SIGTERM, then flush and exit."""
    with reporting_errors():
        if logging_config is None and DEFAULT_LOGGING_CONFIG.exists():
            logging_config = DEFAULT_LOGGING_CONFIG
        log_settings = load_logging_file(logging_config) if logging_config else LoggingFile()
        database = load_database_file(database_config)
        if http_listen is not None:
            database = database.model_copy(update={"http": http_settings(http_listen)})
        exchanges = [load_exchange_file(path) for path in config]
        setup = configure_logging(log_settings)
        if database.http.listen is not None:
            # Imported before the freeze below, so the metrics code is frozen out of the
            # cyclic collections like every other module, not traversed by them (the service
            # would import it at start otherwise).
            importlib.import_module("ingest.metrics.endpoints")
            importlib.import_module("ingest.metrics.exporter")
        keep_gc_off_the_hot_path()
        release_freed_heap()
        try:
            code = asyncio.run(_serve(database, exchanges))
        finally:
            setup.close()
    raise typer.Exit(code)


def http_settings(listen: str) -> HttpSettings:
    """--http-listen as HttpSettings ("off": no endpoints); checked like http.listen."""
    try:
        return HttpSettings(listen=None if listen == "off" else listen)
    except ValidationError as exc:
        raise ConfigError(
            f"--http-listen {listen!r}: expected {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
        ) from None


def release_freed_heap() -> None:
    """Give the C heap's free pages back to the system, once, at the end of start-up.

    Start-up frees much of what it allocates (compiling modules without bytecode caches,
    building the config models), but glibc keeps freed heap pages mapped, in this process's
    RSS for good (~0.8 MB when the sources are compiled at import). malloc_trim(0) returns them;
    other C libraries (musl) have no such call, and lose nothing but that.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim  # ctypes is loaded already (psycopg uses it)
    except (OSError, AttributeError):
        return
    trim(0)


async def _serve(database: DatabaseFile, exchanges: list[ExchangeFile[Any]]) -> int:
    # Built inside the running loop: the service creates asyncio objects.
    service = IngestService(database, exchanges)
    return await service.run()
