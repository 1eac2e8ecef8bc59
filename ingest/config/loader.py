"""Read config files from disk into validated, frozen models."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg.conninfo
from pydantic import BaseModel, ValidationError

from ingest.config.database import DatabaseFile
from ingest.config.errors import ConfigFileError, Problem, from_validation_error
from ingest.config.exchange import ExchangeFile
from ingest.config.logging_file import LoggingFile
from ingest.config.secrets import DATABASE_URL_ENV
from ingest.redact import register_secret

M = TypeVar("M", bound=BaseModel)


def read_json(path: Path) -> Any:
    """Parse a JSON file; ConfigFileError on a missing file or bad JSON (with line and column)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(
            name, [Problem("(file)", "an existing file", "no such file", "check the --config path")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(
            name, [Problem("(file)", "a readable UTF-8 file", type(exc).__name__, str(exc))]
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"(line {exc.lineno}, column {exc.colno})"
        raise ConfigFileError(name, [Problem(where, "valid JSON", exc.msg, "fix the syntax there")]) from None


def validate(path: Path, model: type[M], data: Any) -> M:
    """Validate parsed JSON against `model`; every problem reported in one ConfigFileError."""
    if not isinstance(data, dict):
        raise ConfigFileError(str(path), [Problem("(top level)", "a JSON object", type(data).__name__)])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(str(path), model, exc) from None


def load_database_file(
    path: str | Path,
    *,
    database_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> DatabaseFile:
    """Load the database config; the URL comes from `database_url`, else TCPD_DATABASE_URL, else the file.

    The password never needs to be in the file: put the full URL in TCPD_DATABASE_URL.
    """
    path = Path(path)
    data = read_json(path)
    env = os.environ if environ is None else environ
    override = database_url or env.get(DATABASE_URL_ENV) or None
    if override is not None:
        register_secret(_password_of(override))
        section = data.get("database", {}) if isinstance(data, dict) else None
        if isinstance(section, dict):
            data = {**data, "database": {**section, "url": override}}
    try:
        return validate(path, DatabaseFile, data)
    except ConfigFileError as exc:
        raise ConfigFileError(
            exc.file, [_url_origin(p, override, database_url) for p in exc.problems]
        ) from None


def _url_origin(problem: Problem, override: str | None, database_url: str | None) -> Problem:
    """Say where a bad URL came from, and where a missing one may come from."""
    if problem.key != "database.url":
        return problem
    if override is None:
        return replace(problem, hint=f"put it in the file or set {DATABASE_URL_ENV}")
    source = "--database-url" if database_url else DATABASE_URL_ENV
    return replace(problem, key=f"database.url (from {source})")


def load_exchange_file(path: str | Path) -> ExchangeFile[Any]:
    """Load an exchange config file such as config/okx.json or config/binance.json."""
    path = Path(path)
    return parse_exchange_file(read_json(path), path)


def parse_exchange_file(data: Any, path: str | Path = "(exchange config)") -> ExchangeFile[Any]:
    """Validate a parsed exchange config: its `exchange` key picks the venue, whose own
    model validates the `connection` section (ingest.exchanges.venue)."""
    # Imported here: the venues' packages build on this package's models.
    from ingest.exchanges.registry import find_venue, supported_exchanges

    path = Path(path)
    name = data.get("exchange") if isinstance(data, dict) else None
    venue = find_venue(name) if isinstance(name, str) else None
    if venue is None:
        if not isinstance(data, dict):
            return validate(path, ExchangeFile, data)  # reports the top level
        raise ConfigFileError(
            str(path),
            [
                Problem(
                    "exchange",
                    f"one of {', '.join(supported_exchanges())}",
                    "missing" if name is None else repr(name),
                    "set `exchange` to the venue this file configures",
                )
            ],
        )
    # The venue is known only at run time; mypy cannot check a runtime type argument.
    return validate(path, ExchangeFile[venue.connection], data)  # type: ignore[name-defined]


def load_logging_file(path: str | Path) -> LoggingFile:
    """Load the logging config file (config/logging.json)."""
    path = Path(path)
    return validate(path, LoggingFile, read_json(path))


def _password_of(dsn: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn).get("password")  # type: ignore[return-value]
    except Exception:
        return None
