"""The disk spool itself: segments, order, crash safety, torn records, the bound and its losses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.errors import SpoolError
from ingest.model import DataType
from ingest.rows import DeadLetter, MarketRow, Row, TradeRow
from ingest.storage import spool_format
from ingest.storage.spool import Spool
from tests.storage_support import T0_MS, trade

SEG = 64 * 1024


def make_spool(path: Path, max_bytes: int = 1 << 20, segment_bytes: int = SEG) -> Spool:
    spool = Spool(path, max_bytes, segment_bytes, fsync_interval=0.05, spill_after=0)
    spool.open()
    return spool


async def drain(spool: Spool) -> list[Row]:
    """Every row the spool hands out, each segment discarded after it was read."""
    rows: list[Row] = []
    while (got := await spool.take_segment()) is not None:
        seg, seg_rows = got
        rows += seg_rows
        spool.discard(seg)
    return rows


def mixed_rows(n: int) -> list[Row]:
    rows: list[Row] = []
    for i in range(n):
        # every other trade with the exchange's fill count and order, as OKX trades carry them
        rows.append(
            trade(i) if i % 2 else trade(i)._replace(fill_count=str(i % 7 + 2), trade_seq=str(10**12 + i))
        )
        if i % 10 == 0:
            rows.append(
                MarketRow("okx", "BTC-USDT", DataType.TICKER, T0_MS + i, f'{{"i": {i}, "s": "a\\tb"}}')
            )
        if i % 10 == 5:  # a raw trade copy, with its trade id (market_data.trade_id)
            t = trade(i)
            rows.append(MarketRow(t.exchange, t.symbol, DataType.TRADE, t.ts_ms, t.raw_json, t.trade_id))
        if i % 50 == 0:
            rows.append(DeadLetter("okx", T0_MS + i, "bad frame", "not json\n\\N \t"))
    rows.append(trade(n, symbol="ÉTH-USDT"))  # non-ASCII survives
    rows.append(TradeRow("okx", "BTC-USDT", "x", "1", "2", "buy", T0_MS, ""))  # raw data off
    return rows


def segment_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.jsonl"))


async def test_rows_come_back_in_order_value_for_value_across_segments(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    rows = mixed_rows(1000)
    for i in range(0, len(rows), 7):
        assert spool.append(rows[i : i + 7])
    assert spool.pending
    assert len(segment_files(tmp_path)) > 3  # segment_bytes made it rotate
    assert spool.stats()["bytes"] == sum(p.stat().st_size for p in segment_files(tmp_path))
    assert await drain(spool) == rows
    assert not spool.pending
    assert segment_files(tmp_path) == []
    assert spool.stats()["bytes"] == 0
    await spool.close()


async def test_a_segment_is_plain_json_lines_with_a_header(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    spool.append([trade(1)])
    await spool.close()
    lines = segment_files(tmp_path)[0].read_bytes().splitlines()
    head = orjson.loads(lines[0])
    assert head["tcpd_spool"] == spool_format.FORMAT_VERSION == 3
    created = datetime.fromtimestamp(head["created_ms"] / 1000, UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    t = trade(1)
    assert orjson.loads(lines[1]) == ["t", *t]


async def test_a_version_1_segment_is_replayed_with_the_new_trade_columns_defaulted(tmp_path: Path) -> None:
    # written by the build before raw_trades had fill_count and trade_seq (sql/0104)
    old = trade(5)
    (tmp_path / "0000000000000001.jsonl").write_bytes(
        orjson.dumps({"tcpd_spool": 1, "created_ms": T0_MS}) + b"\n" + orjson.dumps(["t", *old[:8]]) + b"\n"
    )
    spool = make_spool(tmp_path)
    assert await drain(spool) == [old._replace(fill_count="1", trade_seq="0")]
    await spool.close()


async def test_a_version_2_segment_is_replayed_with_market_rows_without_trade_id(tmp_path: Path) -> None:
    # written by the build before market_data had trade_id (sql/0118)
    t = trade(5)
    copy = MarketRow(t.exchange, t.symbol, DataType.TRADE, t.ts_ms, t.raw_json, t.trade_id)
    (tmp_path / "0000000000000001.jsonl").write_bytes(
        orjson.dumps({"tcpd_spool": 2, "created_ms": T0_MS})
        + b"\n"
        + orjson.dumps(["t", *t])
        + b"\n"
        + orjson.dumps(["m", *copy[:5]])
        + b"\n"
    )
    spool = make_spool(tmp_path)
    assert await drain(spool) == [t, copy._replace(trade_id="")]
    await spool.close()


async def test_segments_left_by_a_closed_spool_are_replayed_by_the_next(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    rows = mixed_rows(300)
    spool.append(rows)
    await spool.close()
    again = make_spool(tmp_path)
    assert again.pending
    assert again.stats()["oldest_row_time"] is not None
    assert await drain(again) == rows
    await again.close()


def test_a_second_process_cannot_use_the_same_directory(tmp_path: Path) -> None:
    first = make_spool(tmp_path)
    with pytest.raises(SpoolError, match="in use by another tcpd process"):
        make_spool(tmp_path)
    assert first.directory == tmp_path


def test_an_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="cannot use spool directory"):
        make_spool(blocker / "spool")


async def test_kill_9_loses_nothing_that_was_spooled(tmp_path: Path) -> None:
    """A process killed with SIGKILL right after append(): the rows are in the files."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from ingest.storage.spool import Spool
        from tests.storage_support import trade
        spool = Spool(Path({str(tmp_path)!r}), 1 << 20, {SEG}, fsync_interval=60.0, spill_after=0)
        spool.open()
        for i in range(0, 2000, 10):
            spool.append([trade(j) for j in range(i, i + 10)])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    root = Path(__file__).parent.parent
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], cwd=root, check=False)
    assert done.returncode == -9
    spool = make_spool(tmp_path)  # the dead process's lock went with it
    assert await drain(spool) == [trade(i) for i in range(2000)]
    await spool.close()


async def test_a_torn_last_record_is_reported_as_a_dead_letter_not_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = make_spool(tmp_path)
    rows: list[Row] = [trade(i) for i in range(20)]
    spool.append(rows)
    await spool.close()
    (path,) = segment_files(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the crash cut the last record short
    torn = data[:-25].rsplit(b"\n", 1)[1]

    spool = make_spool(tmp_path)
    got = await drain(spool)
    assert got[:19] == rows[:19]
    (dead,) = got[19:]
    assert isinstance(dead, DeadLetter)
    assert dead.exchange == "okx"
    assert "torn record" in dead.reason
    assert path.name in dead.reason
    assert dead.raw_text == torn.decode()
    assert spool.stats()["records_unreadable"] == 1
    assert any("unreadable record" in r.getMessage() for r in caplog.records)
    await spool.close()
    # Reported once: the segment is gone after its rows (the dead letter too) were handed out.
    again = make_spool(tmp_path)
    assert await drain(again) == []
    await again.close()


async def test_zeros_after_a_power_loss_and_a_corrupted_record_are_reported(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    spool.append([trade(i) for i in range(3)])
    await spool.close()
    (path,) = segment_files(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:10] + b"#" + lines[2][11:]  # one flipped byte in the second row
    path.write_bytes(b"\n".join(lines) + b"\x00" * 300)
    decoded = spool_format.decode(path.read_bytes())
    assert decoded.rows == [trade(0), trade(2)]
    assert [why.split(" (")[0].split(":")[0] for _, _, why in decoded.unreadable] == [
        "corrupted record",
        "torn record",
    ]
    spool = make_spool(tmp_path)
    got = await drain(spool)
    assert got[:2] == [trade(0), trade(2)]
    assert [type(r) for r in got[2:]] == [DeadLetter, DeadLetter]
    await spool.close()


async def test_a_full_spool_drops_whole_puts_and_counts_one_contiguous_range_per_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = make_spool(tmp_path, max_bytes=1 << 20, segment_bytes=SEG)
    kept: list[Row] = []
    lost: list[Row] = []
    i = 0
    while len(lost) < 500:
        rows: list[Row] = [trade(i + k) for k in range(10)]
        rows.append(MarketRow("okx", "ETH-USDT", DataType.ORDERBOOK, T0_MS + i, "{}"))
        (kept if spool.append(rows) else lost).extend(rows)
        i += 10
        if lost and i % 100 == 0:
            # Small puts do not slip in while the spool is refusing: no holes in a range.
            assert not spool.append([trade(10_000_000 + i)])
            lost.append(trade(10_000_000 + i))
    assert spool.stats()["bytes"] <= 1 << 20
    assert spool.losses.in_episode
    # Rows are taken again only once a whole segment of room is free.
    seg, first_rows = await spool.take_segment() or (None, [])
    assert seg is not None
    assert not spool.append([trade(20_000_000)])  # read, not yet committed and deleted
    lost.append(trade(20_000_000))
    spool.discard(seg)
    assert spool.append([trade(30_000_000)])
    assert not spool.losses.in_episode
    stats = spool.stats()
    assert stats["rows_lost"] == len(lost)
    ranges = {(r.exchange, r.symbol, r.data_type, r.table_name): r for r in spool.losses.unrecorded()}
    assert set(ranges) == {
        ("okx", "BTC-USDT", "trade", "raw_trades"),
        ("okx", "ETH-USDT", "orderbook", "market_data"),
    }
    lost_trades = [r for r in lost if isinstance(r, TradeRow)]
    t = ranges["okx", "BTC-USDT", "trade", "raw_trades"]
    assert (t.rows, t.from_ms, t.to_ms) == (
        len(lost_trades),
        min(r.ts_ms for r in lost_trades),
        max(r.ts_ms for r in lost_trades),
    )
    assert ranges["okx", "ETH-USDT", "orderbook", "market_data"].rows == len(lost) - len(lost_trades)
    assert t.reason == f"spool full ({1 << 20} bytes)"
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("LOST ")]
    assert len(logged) == 2
    assert any(f"LOST {len(lost_trades)} rows of okx BTC-USDT trade" in m for m in logged)
    # Everything kept is still there, in order.
    assert first_rows + await drain(spool) == [*kept, trade(30_000_000)]
    await spool.close()


async def test_loss_ranges_survive_a_restart_until_recorded(tmp_path: Path) -> None:
    spool = make_spool(tmp_path, max_bytes=1 << 20, segment_bytes=SEG)
    while spool.append([trade(1)] * 100):
        pass
    spool.append([trade(2)] * 5)
    await spool.close()  # persists the open episode, closed
    again = make_spool(tmp_path)
    (r,) = again.losses.unrecorded()
    assert (r.symbol, r.rows, r.open) == ("BTC-USDT", 105, False)
    await again.close()


async def test_loss_ranges_are_upserted_into_ingest_gaps_exactly_once(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    from ingest.db.connection import connect

    spool = make_spool(tmp_path)
    spool.losses.count([trade(1), trade(5)], "spool full (test)")
    conn = await connect(migrated_db_dsn)
    try:
        assert await spool.losses.record(conn) == 1
        spool.losses.count([trade(9)], "spool full (test)")  # the range grows
        assert await spool.losses.record(conn) == 1
        assert await spool.losses.record(conn) == 0  # nothing new
        spool.losses.end_episode()
        spool.losses.persist()
        assert not (tmp_path / "losses.json").exists() or spool.losses.unrecorded() == []
        cur = await conn.execute(
            "SELECT exchange, symbol, data_type, from_ts, to_ts, rows_lost, reason, filled_at"
            " FROM ingest_gaps"
        )
        got = await cur.fetchall()
    finally:
        await conn.close()
    ms = [datetime.fromtimestamp((T0_MS + i) / 1000, UTC) for i in (1, 9)]
    assert got == [("okx", "BTC-USDT", "trade", ms[0], ms[1], 3, "spool full (test)", None)]
    await spool.close()


async def test_the_background_task_fsyncs_without_blocking(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    spool.start(None)
    spool.append([trade(1)])
    assert spool._unsynced
    for _ in range(200):
        if not spool._unsynced:
            break
        await asyncio.sleep(0.01)
    assert not spool._unsynced  # fsynced by the task within a few fsync_intervals
    await spool.close()
    assert os.listdir(tmp_path)  # lock file and segment stay


def test_spool_settings_defaults_and_one_validation() -> None:
    from pydantic import ValidationError

    from ingest.config.spool import SpoolSettings

    s = SpoolSettings()
    assert (s.enabled, s.directory, s.max_bytes, s.segment_bytes, s.fsync_interval) == (
        True,
        "spool",
        1 << 30,
        4 << 20,
        1.0,
    )
    with pytest.raises(ValidationError, match=r"at most half of spool\.max_bytes"):
        SpoolSettings(max_bytes=1 << 20, segment_bytes=1 << 20)
    with pytest.raises(ValidationError):
        SpoolSettings(max_bytes=1000)  # under 1 MiB
    with pytest.raises(ValidationError):
        SpoolSettings(fsync_interval=0)


def test_health_names_the_spool_bytes_oldest_row_and_losses() -> None:
    from ingest.collector.base import sink_pressure, sink_stats

    class Sink:
        def stats(self) -> dict[str, object]:
            return {
                "queue_rows": 10,
                "queue_capacity": 100,
                "spool": {
                    "bytes": 123456,
                    "segments": 2,
                    "oldest_row_age": 42.4,
                    "oldest_row_time": "2026-12-03T11:00:00.000+00:00",
                    "rows_lost": 7,
                    "loss_ranges_unrecorded": 1,
                },
            }

    assert sink_pressure(sink_stats(Sink())) == (
        "writer spool in use: 123456 bytes on disk, oldest row spooled 42s ago "
        "(2026-12-03T11:00:00.000+00:00); rows lost: 7 (spool full; ranges in ingest_gaps, `tcpd gaps`; "
        "1 not recorded yet)"
    )
