"""The gaps record (sql/0114, ingest.storage.gaps) and `tcpd gaps` / `tcpd status` showing it,
against a real database: upsert by gap_id, attempts, filling, the upgrade from 0108's
ingest_losses, and the CLI's table and JSON."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from typer.testing import CliRunner, Result

from cli.main import app
from ingest.db.connection import connect
from ingest.db.migrations import migrate
from ingest.paths import sql_dir
from ingest.storage.gaps import Gap, mark_filled, new_gap_id, note_attempt, record_gaps

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NO_ENV: dict[str, str | None] = {"TCPD_DATABASE_URL": None}


def tcpd(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={**NO_ENV, "COLUMNS": "80"})


def gap(symbol: str, minutes: int, **changes: object) -> Gap:
    fields: dict[str, object] = {
        "gap_id": new_gap_id(),
        "exchange": "okx",
        "symbol": symbol,
        "data_type": "trade",
        "from_ts": T0,
        "to_ts": T0 + timedelta(minutes=minutes),
        "reason": "older than the exchange's history",
        "after_trade_id": "1000",
        "before_trade_id": "2000",
    }
    fields.update(changes)
    return Gap(**fields)  # type: ignore[arg-type]


async def test_a_gap_is_recorded_once_grows_in_place_and_is_marked_filled(migrated_db_dsn: str) -> None:
    first = gap("BTC-USDT", 5)
    conn = await connect(migrated_db_dsn)
    try:
        await record_gaps(conn, [first])
        grown = replace(first, to_ts=T0 + timedelta(minutes=9))
        await record_gaps(conn, [grown])  # the same hole, longer now: updated, not added
        await note_attempt(conn, first.gap_id, "history-trades answered 503")
        assert await mark_filled(conn, first.gap_id, 1234)
        assert not await mark_filled(conn, first.gap_id, 99)  # filled once: the first count stays
        cur = await conn.execute(
            "SELECT gap_id, to_ts, attempts, last_error, rows_filled, filled_at IS NOT NULL FROM ingest_gaps"
        )
        rows = await cur.fetchall()
    finally:
        await conn.close()
    assert rows == [(first.gap_id, T0 + timedelta(minutes=9), 2, None, 1234, True)]


async def test_filled_and_counts_must_agree(migrated_db_dsn: str) -> None:
    conn = await connect(migrated_db_dsn)
    try:
        await record_gaps(conn, [gap("BTC-USDT", 1)])
        try:
            async with conn.transaction():
                await conn.execute("UPDATE ingest_gaps SET filled_at = now()")
        except psycopg.errors.CheckViolation:
            pass
        else:
            raise AssertionError("a filled gap without rows_filled was accepted")
    finally:
        await conn.close()


async def test_tcpd_gaps_lists_open_gaps_and_with_all_the_filled_ones(migrated_db_dsn: str) -> None:
    # Listed oldest first (from_ts): the ETH gap begins an hour after the BTC one.
    later = T0 + timedelta(hours=1)
    open_gap = gap("BTC-USDT", 3)
    filled = gap("ETH-USDT", 200, from_ts=later, to_ts=later + timedelta(minutes=200))
    conn = await connect(migrated_db_dsn)
    try:
        await record_gaps(conn, [open_gap, filled])
        await note_attempt(conn, open_gap.gap_id, "history-trades answered 429 for 120 s")
        await mark_filled(conn, filled.gap_id, 77)
    finally:
        await conn.close()

    shown = tcpd("gaps", "--database-url", migrated_db_dsn)
    assert shown.exit_code == 0, shown.output
    assert "BTC-USDT" in shown.stdout
    assert "ETH-USDT" not in shown.stdout
    assert "2026-11-30 12:00:00.000" in shown.stdout
    assert "3.0m" in shown.stdout
    assert "open, 1 attempt(s):" in shown.stdout
    assert "answered 429" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80

    every = tcpd("gaps", "--database-url", migrated_db_dsn, "--all", "--json")
    assert every.exit_code == 0, every.output
    listed = json.loads(every.stdout)
    assert [(g["symbol"], g["rows_filled"], g["after_trade_id"]) for g in listed] == [
        ("BTC-USDT", None, "1000"),
        ("ETH-USDT", 77, "1000"),
    ]
    assert listed[0]["from_ts"] == "2026-11-30T12:00:00Z"

    only_eth = tcpd("gaps", "--database-url", migrated_db_dsn, "--all", "--symbol", "ETH-USDT", "--json")
    assert [g["symbol"] for g in json.loads(only_eth.stdout)] == ["ETH-USDT"]


async def test_tcpd_status_counts_the_open_gaps(migrated_db_dsn: str) -> None:
    quiet = tcpd("status", "--database-url", migrated_db_dsn)
    assert quiet.exit_code == 0, quiet.output
    assert "open gap" not in quiet.stdout
    conn = await connect(migrated_db_dsn)
    try:
        await record_gaps(conn, [gap("BTC-USDT", 1), gap("SOL-USDT", 2)])
    finally:
        await conn.close()
    shown = tcpd("status", "--database-url", migrated_db_dsn)
    assert shown.exit_code == 0, shown.output
    assert "2 open gap(s) in the stored history: `tcpd gaps`" in shown.stdout


def test_upgrade_moves_spool_losses_into_gaps_and_keeps_ingest_losses_readable(
    tmp_path: Path, db_dsn: str
) -> None:
    before = tmp_path / "sql"
    before.mkdir()
    for file in sql_dir().glob("*.sql"):
        if int(file.name[:4]) < 114:
            shutil.copy(file, before / file.name)
    migrate(db_dsn, sql_dir=before)
    lost = ("0f" * 16, "okx", "BTC-USDT", "trade", "raw_trades", T0, T0 + timedelta(seconds=30), 4200)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest_losses (loss_id, exchange, symbol, data_type, table_name, from_ts, to_ts,"
            " rows, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'spool full')",
            lost,
        )
    migrate(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        moved = conn.execute(
            "SELECT gap_id, exchange, symbol, data_type, from_ts, to_ts, rows_lost, reason, filled_at"
            " FROM ingest_gaps"
        ).fetchall()
        old_shape = conn.execute(
            "SELECT loss_id, exchange, symbol, data_type, table_name, from_ts, to_ts, rows FROM ingest_losses"
        ).fetchall()
    assert moved == [(*lost[:4], *lost[5:], "spool full", None)]
    assert old_shape == [lost]
