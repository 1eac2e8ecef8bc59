"""Upgrading a database with candles to 0115 (complete candles), on both editions: the views
keep their names, columns and values (no watermark row yet: the wall-clock rule), and the
first watermark the service writes hides what ends after it."""

from __future__ import annotations

import random
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.db.migrations import migrate
from ingest.paths import sql_dir
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    TIMEFRAMES,
    assert_all_views,
    assert_matches,
    db_now,
    fetch_view,
    generate_trades,
    load_trades,
    open_autocommit,
    reference_candles,
)

WATERMARKS = 115


def sql_below(folder: Path, version: int) -> Path:
    folder.mkdir()
    for file in sql_dir().glob("*.sql"):
        if int(file.name[:4]) < version:
            shutil.copy(file, folder / file.name)
    return folder


def view_columns(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT table_name, ordinal_position, column_name, data_type FROM information_schema.columns"
        " WHERE table_name LIKE 'candles\\_%' AND table_name NOT LIKE '%\\_agg' ORDER BY 1, 2"
    ).fetchall()


def upgrade_keeps_the_candles(tmp_path: Path, dsn: str) -> None:
    migrate(dsn, sql_dir=sql_below(tmp_path / "sql", WATERMARKS))
    trades = generate_trades(random.Random(7), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(dsn) as conn:
        load_trades(conn, trades)
        assert_all_views(conn, trades)
        columns = view_columns(conn)
    applied = migrate(dsn)
    assert [n for n in applied if n.startswith("0115")] in (
        ["0115_candles_complete.sql"],
        ["0115_candles_complete.apache.sql"],
    )
    with open_autocommit(dsn) as conn:
        assert view_columns(conn) == columns
        assert_all_views(conn, trades)  # no watermark rows: every closed candle, as before
        # The service's first watermark for one symbol: its later candles disappear, the
        # other symbols' stay.
        through = PAST_START + timedelta(hours=20)
        conn.execute(
            "INSERT INTO ingest_watermarks (exchange, symbol, committed_through)"
            " VALUES ('okx', 'BTC-USDT', %s)",
            (through,),
        )
        with conn.transaction():
            now = db_now(conn)
            for tf, width in TIMEFRAMES.items():
                expected = {
                    k: c
                    for k, c in reference_candles(trades, width, now).items()
                    if k[:2] != ("okx", "BTC-USDT") or c["ts"] <= through
                }
                assert any(k[:2] == ("okx", "BTC-USDT") for k in expected), tf
                assert_matches(fetch_view(conn, f"candles_{tf}"), expected, f"candles_{tf}")


def test_upgrade_native(tmp_path: Path, db_dsn: str) -> None:
    upgrade_keeps_the_candles(tmp_path, db_dsn)


@pytest.mark.tsl
def test_upgrade_tsl(tmp_path: Path, tsl_dsn: str) -> None:
    upgrade_keeps_the_candles(tmp_path, tsl_dsn)
