"""Candles in SQL are right for Binance rows, unchanged: Binance `@trade` frames (combined
streams) through the Binance adapter and the real CopyWriter into a migrated database, then
every candles view equals the independent reference (tests/candles_support.py), on the
Apache edition (native engine) and the TSL edition (continuous aggregates, real-time part).

The views show a candle once the symbol's watermark (the exchange time up to which everything
is committed) passed its end: a 24hrTicker frame stamped after the trades, as Binance sends
them to a quiet symbol, moves it there.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from ingest.exchanges.binance import BinanceAdapter
from ingest.rows import TradeRow
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    TIMEFRAMES,
    Trade,
    assert_matches,
    fetch_view,
    open_autocommit,
    reference_candles,
)
from tests.storage_support import make_writer

SYMBOLS = ("BTCUSDT", "ETHUSDT")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def binance_trades(rng: random.Random, count: int) -> list[Trade]:
    """Trades of both symbols over the past window, ids rising with time as Binance numbers
    them; boundaries of every timeframe hit, several trades sharing one millisecond."""
    span_ms = ms(PAST_START + PAST_SPAN) - ms(PAST_START)
    times = [PAST_START + timedelta(milliseconds=rng.randrange(span_ms)) for _ in range(count)]
    for width in TIMEFRAMES.values():
        boundary = PAST_START + width
        while boundary < PAST_START + PAST_SPAN:
            times.extend([boundary] * rng.randint(1, 3))
            boundary += width * rng.randint(1, 5)
    trades: list[Trade] = []
    next_id = dict.fromkeys(SYMBOLS, 1_000_000)
    for ts in sorted(times):
        symbol = rng.choice(SYMBOLS)
        next_id[symbol] += 1
        t = next_id[symbol]
        price = Decimal(rng.randint(1, 9_000_000)) / Decimal(10 ** rng.randint(0, 8))
        size = Decimal(rng.randint(1, 10**9)) / Decimal(10 ** rng.randint(2, 8))
        # Binance's own spelling of decimals: fixed point, 8 places
        trades.append(Trade(0, "binance", symbol, str(t), price, size, ts, 1, t))
    return trades


def trade_frame(t: Trade, rng: random.Random) -> bytes:
    data = {
        "e": "trade",
        "E": ms(t.ts) + 3,
        "s": t.symbol,
        "t": t.seq,
        "p": f"{t.price:.8f}",
        "q": f"{t.size:.8f}",
        "T": ms(t.ts),
        "m": rng.random() < 0.5,
        "M": True,
    }
    return orjson.dumps({"stream": f"{t.symbol.lower()}@trade", "data": data})


def ticker_frame(symbol: str, at: datetime) -> bytes:
    data = {
        "e": "24hrTicker",
        "E": ms(at),
        "s": symbol,
        "c": "1.5",
        "b": "1.4",
        "B": "2",
        "a": "1.6",
        "A": "3",
    }
    return orjson.dumps({"stream": f"{symbol.lower()}@ticker", "data": data})


async def store_through_adapter(dsn: str, frames: list[bytes]) -> list[TradeRow]:
    adapter = BinanceAdapter()
    parsed = adapter.parse_batch(frames, store_raw_data=True)
    assert not parsed.rejected, parsed.rejected[:3]
    writer = make_writer(dsn)
    await writer.start()
    try:
        for start in range(0, len(parsed.rows), 1000):
            await writer.put(parsed.rows[start : start + 1000])
    finally:
        await writer.stop(30)
    return [r for r in parsed.rows if type(r) is TradeRow]


async def check_binance_candles(dsn: str, seed: int) -> None:
    rng = random.Random(seed)
    trades = binance_trades(rng, 3000)
    watermark = PAST_START + PAST_SPAN + timedelta(days=2)
    frames = [trade_frame(t, rng) for t in trades] + [ticker_frame(s, watermark) for s in SYMBOLS]
    rows = await store_through_adapter(dsn, frames)
    assert len(rows) == len(trades)
    with open_autocommit(dsn) as conn:
        stored: Any = conn.execute(
            "SELECT symbol, committed_through FROM ingest_watermarks WHERE exchange = 'binance'"
        ).fetchall()
        assert dict(stored) == dict.fromkeys(SYMBOLS, watermark)
        for tf, width in TIMEFRAMES.items():
            expected = reference_candles(trades, width, watermark)
            assert expected, f"test data gives no {tf} candle"
            assert_matches(fetch_view(conn, f"candles_{tf}"), expected, f"candles_{tf}")


async def test_binance_candles_equal_the_reference_on_the_apache_edition(migrated_db_dsn: str) -> None:
    await check_binance_candles(migrated_db_dsn, seed=21)


@pytest.mark.tsl
async def test_binance_candles_equal_the_reference_on_the_tsl_edition(migrated_tsl_dsn: str) -> None:
    await check_binance_candles(migrated_tsl_dsn, seed=22)
