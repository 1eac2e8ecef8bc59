"""Logging setup: handlers from the config, component levels, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.config import LoggingFile
from ingest.logsetup import COMPONENT_LOGGERS, LOG_FILE_NAME, LoggingSetup, RedactingFilter, configure_logging
from ingest.redact import register_secret

PASSWORD = "pw-Zx81-very-secret"
API_KEY = "okx-api-key-4f1e2d3c"


@pytest.fixture
def setups() -> Iterator[list[LoggingSetup]]:
    made: list[LoggingSetup] = []
    root = logging.getLogger()
    level = root.level
    yield made
    for setup in made:
        setup.close()
    root.setLevel(level)
    for names in COMPONENT_LOGGERS.values():
        for name in names:
            logging.getLogger(name).setLevel(logging.NOTSET)


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test_logsetup.capture")
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, stream


def test_filter_masks_dsn_password_in_args_and_message() -> None:
    log, stream = capture()
    log.info("connecting to %s", f"postgresql://tcpd:{PASSWORD}@db:5432/tcpd")
    log.warning(f"libpq said: host=db password={PASSWORD} dbname=x")
    text = stream.getvalue()
    assert PASSWORD not in text
    assert "postgresql://tcpd:***@db:5432/tcpd" in text
    assert "password=***" in text


def test_filter_masks_registered_secret_in_traceback() -> None:
    register_secret(API_KEY)
    log, stream = capture()

    def sign() -> None:
        raise RuntimeError(f"bad signature for key {API_KEY} via postgresql://u:{PASSWORD}@h/d")

    try:
        sign()
    except RuntimeError:
        log.exception("login failed")
    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: bad signature for key ***" in text
    assert API_KEY not in text
    assert PASSWORD not in text


def test_file_output_rotates_into_directory_and_cleans_old_files(
    tmp_path: Path, setups: list[LoggingSetup]
) -> None:
    old = []
    for day in range(5):
        path = tmp_path / f"{LOG_FILE_NAME}.2026-01-0{day + 1}"
        path.write_text("old\n")
        stamp = time.time() - (10 - day) * 86400
        os.utime(path, (stamp, stamp))
        old.append(path)
    config = LoggingFile(
        console_output=False, file_output=True, max_files=3, log_directory=str(tmp_path), level="INFO"
    )
    setups.append(configure_logging(config))
    logging.getLogger("ingest.somewhere").info("stored via %s", f"postgresql://a:{PASSWORD}@h/d")
    setups[-1].close()
    remaining = sorted(p.name for p in tmp_path.iterdir())
    # the three newest old files survive the start-up cleanup, plus the live file
    assert remaining == sorted([LOG_FILE_NAME] + [p.name for p in old[2:]])
    live = (tmp_path / LOG_FILE_NAME).read_text()
    assert "stored via postgresql://a:***@h/d" in live
    assert PASSWORD not in live


def test_component_levels_apply_to_mapped_loggers(tmp_path: Path, setups: list[LoggingSetup]) -> None:
    config = LoggingFile.model_validate(
        {
            "level": "WARNING",
            "console_output": False,
            "file_output": True,
            "log_directory": str(tmp_path),
            "components": {"data_collectors": "DEBUG", "websocket_clients": "ERROR"},
        }
    )
    setups.append(configure_logging(config))
    logging.getLogger("ingest.collector.manager").debug("collector detail")
    logging.getLogger("ingest.collector.websocket").warning("socket warning")
    logging.getLogger("ingest.collector.websocket").error("socket error")
    logging.getLogger("ingest.storage").info("writer info")
    logging.getLogger("ingest.storage").warning("writer warning")
    setups[-1].close()
    lines = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    messages = [line.split(": ", 1)[1] for line in lines]
    assert messages == ["collector detail", "socket error", "writer warning"]


def test_console_handler_has_redaction(setups: list[LoggingSetup]) -> None:
    setups.append(configure_logging(LoggingFile(console_output=True, file_output=False)))
    (handler,) = setups[-1].handlers
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)


def test_json_lines_are_one_redacted_object_per_record(tmp_path: Path, setups: list[LoggingSetup]) -> None:
    register_secret(API_KEY)
    config = LoggingFile(console_output=False, file_output=True, json_lines=True, log_directory=str(tmp_path))
    setups.append(configure_logging(config))
    log = logging.getLogger("ingest.somewhere")
    log.info("stored via %s", f"postgresql://a:{PASSWORD}@h/d")
    try:
        raise RuntimeError(f"bad key {API_KEY}\nsecond line")
    except RuntimeError:
        log.exception("login failed")
    setups[-1].close()
    text = (tmp_path / LOG_FILE_NAME).read_text()
    assert PASSWORD not in text
    assert API_KEY not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO"
    assert first["logger"] == "ingest.somewhere"
    assert first["message"] == "stored via postgresql://a:***@h/d"
    assert datetime.fromisoformat(first["time"]).utcoffset() == timedelta(0)
    assert second["message"] == "login failed"
    assert second["exception"].startswith("Traceback (most recent call last)")
    assert second["exception"].endswith("RuntimeError: bad key ***\nsecond line")
