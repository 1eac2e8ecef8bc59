"""Shared by the candle tests: trade generator, loader, the independent Python reference.

The reference is written from the spec, not from the SQL: a trade at t belongs to the
interval [floor(t / width) * width, + width) in UTC, the candle is stamped with the interval's
end, open/close are the prices of the first/last trade ordered by ("timestamp", trade_seq, id),
trade_count is the number of exchange fills, and base/quote volumes follow docs/candles.md
("Volumes"): spot sizes are base currency, a linear contract is worth contract_size base
currency, an inverse one contract_size quote currency.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import psycopg

from cli.candles import Timeframe
from ingest.db.connection import connect_sync

# The CLI's timeframes and widths: the views are checked against them, so a width the CLI
# and the SQL disagree on fails here.
TIMEFRAMES: dict[str, timedelta] = {tf.value: tf.width for tf in Timeframe}
COLUMNS = (
    "exchange, symbol, bucket_start, ts, open, high, low, close, volume, quote_volume, trade_count, vwap,"
    " base_volume, trade_rows"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Trade:
    id: int
    exchange: str
    symbol: str
    trade_id: str
    price: Decimal
    size: Decimal
    ts: datetime
    fills: int = 1  # raw_trades.fill_count
    seq: int = 0  # raw_trades.trade_seq (0: the exchange defines no order)


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_type: str
    contract_type: str | None
    contract_value: Decimal | None
    contract_multiplier: Decimal | None


# The instruments table of the candle tests; binance BTC-USDT has no row (sizes are base currency).
INSTRUMENTS: dict[tuple[str, str], Instrument] = {
    ("okx", "BTC-USDT"): Instrument("spot", None, None, None),
    ("okx", "ETH-USDT-SWAP"): Instrument("swap", "linear", Decimal("0.1"), Decimal("1")),
    ("okx", "BTC-USD-SWAP"): Instrument("swap", "inverse", Decimal("100"), Decimal("1")),
    ("okx", "BTC-USD-250328"): Instrument("futures", "inverse", Decimal("10"), Decimal("10")),
}


Key = tuple[str, str, datetime]
Candle = dict[str, Any]


def generate_trades(
    rng: random.Random, start: datetime, span: timedelta, *, count: int, first_id: int = 1
) -> list[Trade]:
    """Trades spread over [start, start + span), with the cases that break naive candles:
    trades exactly on bucket boundaries of every width, groups sharing one timestamp with
    different prices, empty minutes, and ids that do not follow time order."""
    pairs = [
        ("okx", "BTC-USDT"),
        ("okx", "ETH-USDT"),
        ("binance", "BTC-USDT"),
        ("okx", "ETH-USDT-SWAP"),
        ("okx", "BTC-USD-SWAP"),
        ("okx", "BTC-USD-250328"),
    ]
    times: list[datetime] = []
    span_ms = int(span.total_seconds() * 1000)
    for _ in range(count):
        times.append(start + timedelta(milliseconds=rng.randrange(span_ms)))
    for width in TIMEFRAMES.values():
        boundary = start + width
        while boundary < start + span:
            times.extend([boundary] * rng.randint(1, 3))  # on the boundary, some sharing it
            boundary += width * rng.randint(1, 7)
    trades: list[Trade] = []
    ids = list(range(first_id, first_id + len(times) * 2))
    rng.shuffle(ids)  # id order unrelated to time order, so the tie rule is really exercised
    seqs = list(range(1, len(times) * 2 + 1))
    rng.shuffle(seqs)  # the exchange's order, unrelated to ids as well
    for n, ts in enumerate(times):
        repeat = 3 if rng.random() < 0.05 else 1  # same timestamp, different prices and ids
        exchange, symbol = rng.choice(pairs)
        for r in range(repeat):
            price = Decimal(rng.randint(1, 9_000_000)) / Decimal(10 ** rng.randint(0, 8))
            size = Decimal(rng.randint(1, 10**9)) / Decimal(10 ** rng.randint(2, 8))
            trade_id = f"t{n}-{r}"
            row_id = ids.pop()
            if rng.random() < 0.02:  # explicit negative ids exist too: the whole bigint range
                row_id = -9 * 10**18 - row_id
            fills = rng.choice([1, 1, 2, 10, rng.randint(1, 2**31 - 1)])
            seq = 0 if exchange == "binance" else seqs.pop()  # no exchange order: storage order
            trades.append(Trade(row_id, exchange, symbol, trade_id, price, size, ts, fills, seq))
    return trades


def load_trades(conn: psycopg.Connection[Any], trades: Iterable[Trade]) -> None:
    """COPY the trades into raw_trades with their explicit ids; INSTRUMENTS into instruments."""
    for (exchange, symbol), i in INSTRUMENTS.items():
        conn.execute(
            "INSERT INTO instruments (exchange, symbol, instrument_type, contract_type, contract_value,"
            " contract_multiplier) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (exchange, symbol, i.instrument_type, i.contract_type, i.contract_value, i.contract_multiplier),
        )
    with (
        conn.cursor() as cur,
        cur.copy(
            'COPY raw_trades (id, exchange, symbol, trade_id, price, size, side, "timestamp", fill_count,'
            " trade_seq) FROM STDIN"
        ) as copy,
    ):
        for t in trades:
            copy.write_row(
                (t.id, t.exchange, t.symbol, t.trade_id, t.price, t.size, "buy", t.ts, t.fills, t.seq)
            )


def volumes(exchange: str, symbol: str, group: Sequence[Trade]) -> tuple[Decimal, Decimal]:
    """(base_volume, quote_volume) of trades of one instrument, from the spec."""
    i = INSTRUMENTS.get((exchange, symbol))
    contracts = sum((t.size for t in group), Decimal(0))
    if i is None or i.contract_type is None:  # sizes in the base currency
        return contracts, sum((t.price * t.size for t in group), Decimal(0))
    assert i.contract_value is not None
    assert i.contract_multiplier is not None
    worth = i.contract_value * i.contract_multiplier
    if i.contract_type == "linear":  # a contract is `worth` base currency
        return contracts * worth, sum((t.price * t.size * worth for t in group), Decimal(0))
    # inverse: a contract is `worth` quote currency, so worth / price base currency
    return sum((t.size * worth / t.price for t in group), Decimal(0)), contracts * worth


def bucket_of(ts: datetime, width: timedelta) -> datetime:
    """UTC-aligned bucket start: every width here divides a day, so the epoch is an origin."""
    step = int(width.total_seconds() * 1_000_000)
    micros = (ts - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=micros - micros % step)


def reference_candles(trades: Sequence[Trade], width: timedelta, now: datetime) -> dict[Key, Candle]:
    """OHLCV per (exchange, symbol, interval) from the trades, only intervals closed at `now`."""
    groups: dict[Key, list[Trade]] = {}
    for t in trades:
        groups.setdefault((t.exchange, t.symbol, bucket_of(t.ts, width)), []).append(t)
    out: dict[Key, Candle] = {}
    with localcontext() as ctx:
        ctx.prec = 200  # exact: numeric sums never round
        for key, group in groups.items():
            end = key[2] + width
            if end > now:
                continue
            group.sort(key=lambda t: (t.ts, t.seq, t.id))
            volume = sum((t.size for t in group), Decimal(0))
            base, quote = volumes(key[0], key[1], group)
            out[key] = {
                "ts": end,
                "open": group[0].price,
                "high": max(t.price for t in group),
                "low": min(t.price for t in group),
                "close": group[-1].price,
                "volume": volume,
                "quote_volume": quote,
                "trade_count": sum(t.fills for t in group),
                "vwap": quote / base if base else None,
                "base_volume": base,
                "trade_rows": len(group),
            }
    return out


def fetch_view(conn: psycopg.Connection[Any], relation: str) -> dict[Key, Candle]:
    """Every row of a candles view (name from this module's constants, never user input)."""
    rows = conn.execute(f"SELECT {COLUMNS} FROM {relation}").fetchall()
    out: dict[Key, Candle] = {}
    for row in rows:
        key = (row[0], row[1], row[2])
        assert key not in out, f"{relation}: duplicate candle {key}"
        out[key] = dict(zip(COLUMNS.split(", ")[3:], row[3:], strict=True))
    return out


def assert_matches(actual: dict[Key, Candle], expected: dict[Key, Candle], label: str) -> None:
    """Exact equality of every field (vwap and inverse base volumes: division rounds, so 1e-12
    relative)."""
    assert actual.keys() == expected.keys(), (
        f"{label}: missing {sorted(expected.keys() - actual.keys())[:5]}, "
        f"unexpected {sorted(actual.keys() - expected.keys())[:5]}"
    )
    for key, want in expected.items():
        got = actual[key]
        for field in (
            "ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "trade_count",
            "trade_rows",
        ):
            assert got[field] == want[field], f"{label} {key} {field}: {got[field]} != {want[field]}"
        for field in ("vwap", "base_volume"):
            if want[field] is None:
                assert got[field] is None
            else:
                assert abs(got[field] - want[field]) <= abs(want[field]) * Decimal("1e-12"), (
                    f"{label} {key} {field}: {got[field]} != {want[field]}"
                )


def db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def assert_all_views(
    conn: psycopg.Connection[Any],
    trades: Sequence[Trade],
    schema: str = "",
    may_be_empty: frozenset[str] = frozenset(),
) -> None:
    """Every candles view equals the reference, read in one transaction (one now()).

    A timeframe in `may_be_empty` is still compared, but the data need not close one of its
    intervals (tests whose window depends on the time of day)."""
    with conn.transaction():
        now = db_now(conn)
        for tf, width in TIMEFRAMES.items():
            expected = reference_candles(trades, width, now)
            assert expected or tf in may_be_empty, f"test data gives no {tf} candle"
            assert_matches(fetch_view(conn, f"{schema}candles_{tf}"), expected, f"candles_{tf}")


def refresh_all(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> None:
    """Materialize every timeframe over [start, end), finest first (coarser ones read it)."""
    for tf in TIMEFRAMES:
        conn.execute(
            "CALL refresh_continuous_aggregate(%s::REGCLASS, %s::TIMESTAMPTZ, %s::TIMESTAMPTZ)",
            (f"candles_{tf}_agg", start, end),
        )


def open_autocommit(dsn: str) -> psycopg.Connection[Any]:
    return connect_sync(dsn, autocommit=True)


# A fixed past window, day-aligned plus an offset, so every interval is closed and 1d/4h
# buckets are both complete and partial at the edges.
PAST_START = datetime(2025, 3, 8, 21, 0, tzinfo=UTC)
PAST_SPAN = timedelta(days=2, hours=7)
