"""Configure logging from config/logging.json, with every line passed through ingest.redact.

Component levels map to logger names (COMPONENT_LOGGERS):

    data_collectors   -> ingest.collector, ingest.exchanges
    websocket_clients -> ingest.collector.websocket, websockets (the library's own logger)

A RedactingFilter sits on every handler installed here, so neither a message, its
arguments nor an exception traceback can carry a password or a registered API key
into a log line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ingest.config.logging_file import LoggingFile
from ingest.redact import redact_text

logger = logging.getLogger(__name__)

COMPONENT_LOGGERS: dict[str, tuple[str, ...]] = {
    "data_collectors": ("ingest.collector", "ingest.exchanges"),
    "websocket_clients": ("ingest.collector.websocket", "websockets"),
}
LOG_FILE_NAME = "tcpd.log"


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments, the traceback and the stack of each record."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC, milliseconds), level, logger,
    message, and exception and stack when the record has them. The RedactingFilter has
    already masked every part (it runs before any formatter)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line).decode()


class LoggingSetup:
    """The handlers installed by `configure_logging`; `close()` removes and closes them."""

    def __init__(self, handlers: list[logging.Handler]) -> None:
        self.handlers = handlers

    def close(self) -> None:
        """Detach the handlers from the root logger and close them (flushes the file)."""
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.close()
        self.handlers = []


def cleanup_old_files(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` log files (tcpd.log*) in `directory`; return the deleted."""
    files = sorted(directory.glob(LOG_FILE_NAME + "*"), key=lambda p: p.stat().st_mtime, reverse=True)
    doomed = files[keep:]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def configure_logging(config: LoggingFile) -> LoggingSetup:
    """Install console and/or daily-rotating file handlers on the root logger as `config` says."""
    formatter = JsonLinesFormatter() if config.json_lines else logging.Formatter(config.format)
    handlers: list[logging.Handler] = []
    if config.console_output:
        handlers.append(logging.StreamHandler())
    if config.file_output:
        # Imported only here: it pulls in pickle, which a console-only process never uses.
        from logging.handlers import TimedRotatingFileHandler

        directory = Path(config.log_directory)
        directory.mkdir(parents=True, exist_ok=True)
        deleted: list[Path] = []
        if config.cleanup:
            # The live file counts as one of max_files.
            deleted = cleanup_old_files(directory, config.max_files)
        handlers.append(
            TimedRotatingFileHandler(
                directory / LOG_FILE_NAME,
                when="midnight",
                utc=True,
                backupCount=max(config.max_files - 1, 1) if config.cleanup else 0,
                encoding="utf-8",
            )
        )
    root = logging.getLogger()
    root.setLevel(config.level)
    redactor = RedactingFilter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        root.addHandler(handler)
    for component, names in COMPONENT_LOGGERS.items():
        level = getattr(config.components, component)
        for name in names:
            logging.getLogger(name).setLevel(level or logging.NOTSET)
    if config.file_output and config.cleanup and deleted:
        logger.info("deleted %d old log files from %s", len(deleted), config.log_directory)
    return LoggingSetup(handlers)
