"""Rows the spool could not keep: counted per (exchange, symbol, data type, table) with
their exchange-time range, logged, kept in a file beside the segments, and recorded in the
`ingest_gaps` table once the database answers (ingest.storage.gaps; sql/0114, which
took over 0108's `ingest_losses`).

A loss *episode* runs from the first row the spool refuses to the next row it accepts
again; every key that lost rows in it gets one range (loss_id, from_ts, to_ts, rows). The
ranges of the running episode are written to the file and the table too, and updated as
they grow (the table row is upserted by its gap_id, the range's loss_id), so a crash in
the middle of an episode still leaves the range recorded up to the last second. The
gap-filling work reads the table and fetches those ranges again from the exchange.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from ingest.rows import DeadLetter, MarketRow, Row, TradeRow
from ingest.storage.gaps import Gap, record_gaps

logger = logging.getLogger(__name__)

LossKey = tuple[str, str, str, str]  # exchange, symbol, data_type, table_name


def loss_key(row: Row) -> tuple[LossKey, int]:
    """The key a lost row is counted under, and its exchange time (epoch ms)."""
    if type(row) is TradeRow:
        return (row.exchange, row.symbol, "trade", "raw_trades"), row.ts_ms
    if type(row) is MarketRow:
        return (row.exchange, row.symbol, row.data_type.value, "market_data"), row.ts_ms
    if type(row) is DeadLetter:
        return (row.exchange, "", "dead_letter", "dead_letters"), row.received_ms
    raise TypeError(f"not a row: {type(row).__name__}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(ms: int) -> datetime:
    """Epoch milliseconds as an exact UTC datetime (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)


def _iso(ms: int) -> str:
    return utc(ms).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class LossRange:
    """Rows of one key lost in one episode."""

    loss_id: str
    exchange: str
    symbol: str
    data_type: str
    table_name: str
    from_ms: int
    to_ms: int
    rows: int
    reason: str
    open: bool = True  # the episode is still running: the range may grow
    recorded_rows: int = 0  # rows the table holds for it (0: not recorded yet)

    def as_gap(self, rows: int) -> Gap:
        """The range as a gap of `rows` rows lost (ingest_gaps.rows_lost)."""
        return Gap(
            gap_id=self.loss_id,
            exchange=self.exchange,
            symbol=self.symbol,
            data_type=self.data_type,
            from_ts=utc(self.from_ms),
            to_ts=utc(self.to_ms),
            reason=self.reason,
            rows_lost=rows,
        )

    def describe(self) -> str:
        what = f"{self.exchange} {self.symbol} {self.data_type}".replace("  ", " ")
        return (
            f"{self.rows} rows of {what} ({self.table_name}) from {_iso(self.from_ms)} "
            f"to {_iso(self.to_ms)}: {self.reason}"
        )


class LossLedger:
    """The loss ranges not yet fully recorded in the database, persisted in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ranges: list[LossRange] = []
        self._open: dict[LossKey, LossRange] = {}
        self.rows_lost = 0  # in this run
        self._changed = False  # ranges differ from the file

    def load(self) -> None:
        """Read ranges a previous run could not record yet (they are closed now)."""
        if not self.path.exists():
            return
        try:
            items = orjson.loads(self.path.read_bytes())
            self._ranges = [LossRange(**{**item, "open": False}) for item in items]
        except (orjson.JSONDecodeError, TypeError) as exc:
            # Written by rename after fsync, so only a foreign hand gets here; say so and go on.
            logger.error("spool loss file %s unreadable (%s): its ranges are not recorded", self.path, exc)
            return
        for r in self._ranges:
            logger.error("LOST (previous run, not yet recorded) %s", r.describe())
        self._changed = bool(self._ranges)

    @property
    def in_episode(self) -> bool:
        """True while rows are being dropped (since the last row the spool accepted)."""
        return bool(self._open)

    def count(self, rows: Sequence[Row], reason: str) -> None:
        """Count `rows` as lost for `reason`; they extend the running episode's ranges."""
        if not self._open:
            logger.error(
                "spool cannot take more rows (%s): dropping rows from now on, counted per symbol "
                "and recorded in ingest_gaps",
                reason,
            )
        opened = self._open
        for row in rows:
            key, ms = loss_key(row)
            r = opened.get(key)
            if r is None:
                r = LossRange(uuid.uuid4().hex, *key, from_ms=ms, to_ms=ms, rows=0, reason=reason)
                opened[key] = r
                self._ranges.append(r)
            r.rows += 1
            if ms < r.from_ms:
                r.from_ms = ms
            if ms > r.to_ms:
                r.to_ms = ms
        self.rows_lost += len(rows)
        self._changed = True

    def end_episode(self) -> None:
        """The spool accepts rows again: close the running ranges and log each of them."""
        if not self._open:
            return
        for r in self._open.values():
            r.open = False
            logger.error("LOST %s", r.describe())
        self._open = {}
        self._changed = True

    def unrecorded(self) -> list[LossRange]:
        """Ranges whose current counts are not in the database yet."""
        return [r for r in self._ranges if r.recorded_rows != r.rows]

    def persist(self) -> None:
        """Write the ranges not fully recorded to the file (write, fsync, rename): blocking."""
        if not self._changed:
            return
        self._changed = False
        keep = [r for r in self._ranges if r.open or r.recorded_rows != r.rows]
        if not keep:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        data = orjson.dumps([{k: v for k, v in asdict(r).items() if k != "open"} for r in keep])
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    async def record(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Upsert every unrecorded range into ingest_gaps; returns how many."""
        todo = [(r, r.rows) for r in self.unrecorded()]
        if not todo:
            return 0
        await record_gaps(conn, [r.as_gap(rows) for r, rows in todo])
        for r, rows in todo:
            r.recorded_rows = rows
        closed_done = [r for r, _ in todo if not r.open and r.recorded_rows == r.rows]
        self._ranges = [r for r in self._ranges if r not in closed_done]
        self._changed = True
        return len(todo)

    def stats(self) -> dict[str, Any]:
        """rows_lost (this run) and the ranges not yet in the database."""
        return {"rows_lost": self.rows_lost, "loss_ranges_unrecorded": len(self.unrecorded())}
