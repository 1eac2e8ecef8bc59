"""Upgrading a database with candles to migration 0105/0106 (candles v2) on the TSL engine:
candles recomputed with the new rules over the whole history, policies carried over, and a
refusal (changing nothing) when old candles could not be rebuilt from raw trades."""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.db.migrations import migrate
from ingest.errors import MigrationError
from ingest.paths import sql_dir
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    assert_all_views,
    db_now,
    generate_trades,
    load_trades,
    open_autocommit,
    refresh_all,
)

pytestmark = pytest.mark.tsl

BEFORE_V2 = 104  # the last version before the candle aggregates were rebuilt


def sql_up_to(folder: Path, version: int) -> Path:
    folder.mkdir()
    for file in sql_dir().glob("*.sql"):
        if int(file.name[:4]) <= version:
            shutil.copy(file, folder / file.name)
    return folder


def policies(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT kind, timeframe, start_offset, end_offset, schedule_interval, drop_after"
        " FROM tcpd_candle_policies WHERE timeframe IS NOT NULL ORDER BY kind, timeframe"
    ).fetchall()


def test_upgrade_recomputes_every_candle_and_keeps_the_policies(tmp_path: Path, tsl_dsn: str) -> None:
    migrate(tsl_dsn, sql_dir=sql_up_to(tmp_path / "sql", BEFORE_V2))
    trades = generate_trades(random.Random(41), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(tsl_dsn) as conn:
        load_trades(conn, trades)  # fill counts, trade_seq and instruments exist since 0104
        refresh_all(conn, PAST_START - timedelta(days=1), PAST_START + PAST_SPAN + timedelta(days=1))
        conn.execute("SELECT tcpd_set_candle_refresh('1h', '10 days', '2 hours', '1 hour')")
        conn.execute("SELECT tcpd_set_candle_retention('1d', '5 years')")
        before = policies(conn)
    applied = migrate(tsl_dsn)
    assert applied[:2] == ["0105_candles_fills_and_contracts.sql", "0106_candles_rematerialize.sql"]
    assert all(name > "0106" for name in applied[2:])  # later migrations of other changes
    with open_autocommit(tsl_dsn) as conn:
        assert policies(conn) == before
        assert ("refresh", "1h", timedelta(days=10), timedelta(hours=2), timedelta(hours=1), None) in before
        assert conn.execute("SELECT to_regclass('tcpd_saved_candle_policies')").fetchone() == (None,)
        # New rules (fills, exchange order, contract volumes) over the whole history ...
        assert_all_views(conn, trades)
        # ... materialized by 0106: after every policy job has run over recent trades (which
        # moves the watermark to now), the 2025 candles, far outside every refresh window, are
        # still there.
        now = db_now(conn)
        recent = [replace(t, id=10**8 + n, ts=now - timedelta(hours=3)) for n, t in enumerate(trades[:20])]
        load_trades(conn, recent)
        trades += recent
        jobs = conn.execute("SELECT job_id FROM tcpd_candle_policies WHERE kind = 'refresh'").fetchall()
        assert len(jobs) == 6
        for (job,) in jobs:
            conn.execute("CALL run_job(%s)", (job,))
        assert_all_views(conn, trades)


def test_upgrade_refuses_when_old_candles_cannot_be_rebuilt(tmp_path: Path, tsl_dsn: str) -> None:
    migrate(tsl_dsn, sql_dir=sql_up_to(tmp_path / "sql", BEFORE_V2))
    trades = generate_trades(random.Random(42), PAST_START, PAST_SPAN, count=600)
    with open_autocommit(tsl_dsn) as conn:
        load_trades(conn, trades)
        refresh_all(conn, PAST_START - timedelta(days=1), PAST_START + PAST_SPAN + timedelta(days=1))
        # What a raw retention does: the first day of raw trades is gone, its candles are not.
        conn.execute('DELETE FROM raw_trades WHERE "timestamp" < %s', (PAST_START + timedelta(days=1),))
        kept = conn.execute("SELECT count(*) FROM candles_1m_agg").fetchone()
    with pytest.raises(MigrationError) as refused:
        migrate(tsl_dsn)
    text = str(refused.value)
    assert "0105_candles_fills_and_contracts.sql failed" in text
    assert re.search(
        r"candles_1m holds candles from 2025-03-08 21:0\d:00\+00 on, but raw_trades only from 2025-03-09 ",
        text,
    )
    assert "would lose the older ones" in text
    with open_autocommit(tsl_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM candles_1m_agg").fetchone() == kept
        versions = conn.execute("SELECT max(version) FROM tcpd_schema_migrations").fetchone()
        assert versions == (BEFORE_V2,)
