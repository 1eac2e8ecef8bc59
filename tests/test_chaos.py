"""The short chaos soak (tests/chaos_support.py; the 30-minute one is benchmarks/chaos.py):
every fault kind once, about three minutes, on the native engine and a real `tcpd run`."""

from __future__ import annotations

from pathlib import Path

from engine_control import NativeControl

from tests.chaos_support import FAULT_KINDS, Soak, short_plan


async def test_short_chaos_soak_stores_every_trade_once_and_right_candles(
    tmp_path: Path, migrated_db_dsn: str, native_engine: NativeControl
) -> None:
    report = await Soak(short_plan(seed=7), migrated_db_dsn, native_engine, tmp_path).run()
    summary = "\n".join(report.lines())
    print(summary)  # shown with -s, and in the failure report
    assert report.problems == [], summary
    assert {f.kind for f in report.faults} == set(FAULT_KINDS), summary
    assert all(f.healed is not None for f in report.faults), summary
    assert report.trades_stored == report.trades_published > 0, summary
    assert report.candles_compared["1m"] > 0, summary  # candles were really compared
    assert any(g[0] and g[3] for g in report.gaps), summary  # and some gap really filled
