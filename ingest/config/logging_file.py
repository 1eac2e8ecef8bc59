"""The logging config file (config/logging.json)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from ingest.config.base import StrictModel

LevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Level = Annotated[LevelName, BeforeValidator(_upper)]
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ComponentLevels(StrictModel):
    """Levels for groups of loggers; see ingest.logsetup.COMPONENT_LOGGERS for the mapping."""

    data_collectors: Level | None = None
    websocket_clients: Level | None = None


class LoggingFile(StrictModel):
    """Where log lines go, at which level, and how many old files are kept."""

    level: Level = "INFO"
    format: str = DEFAULT_FORMAT
    # One JSON object per record (ingest.logsetup.JsonLinesFormatter), for log shippers;
    # `format` is then not used.
    json_lines: bool = False
    console_output: bool = True
    file_output: bool = False
    cleanup: bool = True
    max_files: Annotated[int, Field(gt=0)] = 30
    log_directory: str = "logs"
    components: ComponentLevels = ComponentLevels()

    @field_validator("format")
    @classmethod
    def _valid_format(cls, value: str) -> str:
        try:
            logging.Formatter(value, validate=True)
        except ValueError as exc:
            raise ValueError(f"a %-style logging format ({exc})") from None
        return value
