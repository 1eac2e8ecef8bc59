"""The README's SQL examples run over real candles and show the bounded query form.

docs/candles.md explains why `ORDER BY ts DESC LIMIT n` over a candle view needs a lower bound
on `bucket_start` (the views are computed, so an unbounded query reads the pair's whole
history); the README is the first page a user copies from, so it must not teach the slow form.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta
from pathlib import Path

from tests.candles_support import db_now, generate_trades, load_trades, open_autocommit

README = Path(__file__).resolve().parent.parent / "README.md"
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.S | re.M)
LOWER_BOUND = re.compile(r"\bbucket_start\s*>=", re.I)


def readme_sql() -> list[str]:
    return SQL_BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_candle_queries_bound_the_time_range() -> None:
    examples = [e for e in readme_sql() if re.search(r"\bFROM\s+candles_", e, re.I)]
    assert examples, "the README lost its candle example"
    for example in examples:
        assert LOWER_BOUND.search(example), f"unbounded candle query in README.md:\n{example}"


def test_readme_sql_examples_run(migrated_db_dsn: str) -> None:
    with open_autocommit(migrated_db_dsn) as conn:
        now = db_now(conn)
        trades = generate_trades(random.Random(7), now - timedelta(hours=2), timedelta(hours=2), count=600)
        load_trades(conn, trades)
        for example in readme_sql():
            rows = conn.execute(example.encode()).fetchall()
            assert rows, f"README example returned no row:\n{example}"
