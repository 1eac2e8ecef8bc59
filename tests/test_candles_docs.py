"""Every ```sql example in docs/candles.md runs on the TSL engine, over real candles."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.candles_support import db_now, generate_trades, load_trades, open_autocommit

DOC = Path(__file__).resolve().parent.parent / "docs" / "candles.md"
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.S | re.M)


def sql_examples() -> list[str]:
    return SQL_BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_sql_examples() -> None:
    examples = sql_examples()
    assert len(examples) >= 8
    assert any("generate_series" in e for e in examples), "the gap-fill example is missing"


@pytest.mark.tsl
def test_every_sql_example_in_the_doc_runs(migrated_tsl_dsn: str) -> None:
    with open_autocommit(migrated_tsl_dsn) as conn:
        now = db_now(conn)
        trades = generate_trades(
            random.Random(41), now - timedelta(hours=30), timedelta(hours=30), count=3000
        )
        load_trades(conn, trades)
        # One symbol's watermark half an hour back (the service's, during an outage): the
        # watermark examples have rows to show, the others keep working.
        held_through = now - timedelta(minutes=30)
        conn.execute(
            "INSERT INTO ingest_watermarks (exchange, symbol, committed_through)"
            " VALUES ('okx', 'BTC-USDT', %s)",
            (held_through,),
        )
        for number, example in enumerate(sql_examples(), start=1):
            cur = conn.execute(example.encode())
            if cur.description is not None:
                rows = cur.fetchall()
                assert rows, f"example {number} returned no row:\n{example}"
        # The gap-fill example gives one row per minute, filled or not.
        gapfill = next(e for e in sql_examples() if "generate_series" in e)
        rows = conn.execute(gapfill.encode()).fetchall()
        assert len(rows) == 31
        assert all(r[0] > rows[i][0] for i, r in enumerate(rows[1:])), "slots must be ordered"
        # The watermark examples: the newest candle shown is not after the watermark, and the
        # candles it holds back are missing from the view.
        lag = next(e for e in sql_examples() if "newest_1m_candle" in e)
        (row,) = conn.execute(lag.encode()).fetchall()
        assert row[:3] == ("okx", "BTC-USDT", held_through)
        assert row[4] is not None
        assert row[4] <= held_through
        held = next(e for e in sql_examples() if "candles_1m_agg AS a" in e)
        held_back = conn.execute(held.encode()).fetchall()
        assert held_back
        assert all(r[2] > held_through for r in held_back)
        shown = conn.execute(
            "SELECT ts FROM candles_1m WHERE exchange = 'okx' AND symbol = 'BTC-USDT' AND ts > %s",
            (held_through,),
        ).fetchall()
        assert shown == []
