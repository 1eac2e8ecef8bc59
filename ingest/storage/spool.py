"""The local spool: rows the writer's memory queue cannot hold, kept on disk in order.

A database outage does not stop the exchange: it keeps sending, and a reader that stops
reading is disconnected. So when the queue is full, RowQueue.put hands rows to the spool
instead of waiting, and later rows follow them there until the spool has drained, so
the writer meets every row in arrival order. Rows are appended to numbered segment files
(ingest.storage.spool_format) in `directory`; the writer takes a whole segment when the
memory queue is empty, and a segment is deleted only after every one of its rows has
committed. Segments left by a crash are found by open() and replayed first.

Durability: rows are written to the open segment at once (the OS page cache: a killed
process loses nothing it spooled) and fsynced every `fsync_interval` seconds and when a
segment is closed, in a worker thread so the event loop never waits for the disk; an OS
crash or power loss can lose at most the last `fsync_interval` seconds of spooled rows,
and a torn last record is reported (ingest.storage.spool_format), never taken as a row.

Bound: at most `max_bytes` of segments. A put that does not fit is dropped and counted
(ingest.storage.spool_losses); the spool takes rows again only once a segment was deleted
(its rows committed), so each loss is one contiguous stretch of rows per symbol, no holes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest.config.spool import SpoolSettings
from ingest.errors import SpoolError
from ingest.redact import redact_text
from ingest.rows import DeadLetter, Row
from ingest.storage import spool_format
from ingest.storage.spool_losses import LossLedger

logger = logging.getLogger(__name__)

SUFFIX = ".jsonl"
LOCK_FILE = "lock"
LOSSES_FILE = "losses.json"
# Seconds between attempts to record loss ranges in the database.
RECORD_INTERVAL = 2.0
# Seconds a loss-recording attempt may wait for a pool connection.
RECORD_CONNECT_TIMEOUT = 2.0

Pool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]


@dataclass(slots=True)
class Segment:
    """One segment file; `rows` is None for a segment found on disk (not counted)."""

    seq: int
    path: Path
    size: int
    created_ms: int
    rows: int | None = 0
    left: int = 0  # after take(): rows handed to the writer and not yet committed


def spool_from(settings: SpoolSettings | None) -> Spool | None:
    """The Spool a config section describes (None when absent or disabled); not opened yet."""
    if settings is None or not settings.enabled:
        return None
    s = settings
    return Spool(Path(s.directory), s.max_bytes, s.segment_bytes, s.fsync_interval, spill_after=s.spill_after)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Bounded, ordered, crash-safe row storage on local disk; one process per directory."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        segment_bytes: int,
        fsync_interval: float,
        *,
        spill_after: float,
    ) -> None:
        if segment_bytes > max_bytes:
            raise ValueError("segment_bytes must not exceed max_bytes")
        self.directory = directory
        self.spill_after = spill_after  # read by RowQueue.put: how long to wait for room first
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.losses = LossLedger(directory / LOSSES_FILE)
        self._segments: list[Segment] = []  # oldest first; taken ones stay until discarded
        self._taken = 0  # how many of the oldest segments were handed to the writer
        self._fd: int | None = None  # the open (newest) segment's descriptor
        self._next_seq = 1
        self._bytes = 0
        self._refusing = False  # in a loss episode: refuse until a segment was deleted
        self._freed = False  # a segment was deleted since refusing began
        self._unsynced = False  # the open segment has writes not yet fsynced
        self._to_close: list[int] = []  # closed segments' descriptors, fsynced and closed by the task
        self._lock_fd: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.pending = False  # segments hold rows not yet handed to the writer
        self.rows_spooled = 0
        self.rows_replayed = 0
        self.records_unreadable = 0

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Create or lock the directory and find segments a previous run left (blocking)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolError(
                f"spool directory {self.directory} is in use by another tcpd process; "
                "give each process its own spool.directory"
            ) from None
        self._lock_fd = fd
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                seq = int(path.stem)
            except ValueError:
                continue
            size = path.stat().st_size
            with path.open("rb") as f:
                first = f.readline(4096)
            created = spool_format.decode(first).created_ms if first.endswith(b"\n") else None
            created = created if created is not None else int(path.stat().st_mtime * 1000)
            self._segments.append(Segment(seq, path, size, created, rows=None))
            self._bytes += size
            self._next_seq = max(self._next_seq, seq + 1)
        self.losses.load()
        self._update_pending()
        if self._segments:
            logger.warning(
                "spool %s holds %d segment(s), %d bytes, from a previous run: replaying them first",
                self.directory,
                len(self._segments),
                self._bytes,
            )

    def start(self, pool: Pool | None) -> None:
        """Start the background tasks: fsync, and loss recording through `pool` (if given)."""
        self._tasks = {asyncio.create_task(self._fsync_loop(), name="tcpd-spool-fsync")}
        if pool is not None:
            self._tasks.add(asyncio.create_task(self._record_loop(pool), name="tcpd-spool-losses"))

    async def close(self) -> None:
        """Fsync and close the open segment, record losses a last time, unlock."""
        self.losses.end_episode()
        self._stopping.set()
        self._wake.set()
        if self._tasks:
            # Bounded: the last loss recording may wait RECORD_CONNECT_TIMEOUT for the database.
            _done, stuck = await asyncio.wait(self._tasks, timeout=RECORD_CONNECT_TIMEOUT + 3.0)
            for task in stuck:
                task.cancel()
            self._tasks = set()
        await asyncio.to_thread(self.sync)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writing -----------------------------------------------------------------------

    def _update_pending(self) -> None:
        # An attribute, not a property: RowQueue.has_room() reads it on every put.
        waiting = len(self._segments) - self._taken
        self.pending = waiting > 0 and not (
            waiting == 1 and self._fd is not None and self._segments[-1].rows == 0
        )

    def append(self, rows: list[Row] | tuple[Row, ...]) -> bool:
        """Spool `rows` (all or none); False when they were dropped and counted as lost."""
        if self._refusing and self._freed:
            self._refusing = False
            self.losses.end_episode()
        if not self._refusing:
            data = spool_format.encode(rows)
            if self._bytes + len(data) <= self.max_bytes:
                try:
                    self._write(data, len(rows))
                    return True
                except OSError as exc:
                    reason = f"spool write failed: {exc.strerror or exc}"
                    logger.error("%s (%s)", reason, self.directory)
                    self._refusing = True
                    self._freed = False
                    self.losses.count(rows, reason)
                    return False
            self._refusing = True
            self._freed = False
        self.losses.count(rows, f"spool full ({self.max_bytes} bytes)")
        return False

    def _write(self, data: bytes, rows: int) -> None:
        seg = self._segments[-1] if self._fd is not None else None
        if seg is None or (seg.rows and seg.size + len(data) > self.segment_bytes):
            self._rotate()
            seg = self._new_segment()
        fd = self._fd
        assert fd is not None
        written = 0
        view = memoryview(data)
        try:
            while written < len(data):
                written += os.write(fd, view[written:])
        except OSError:
            # A partial record stays at the end of this segment, reported as torn on
            # replay; later rows go to a new segment so they are not glued to it.
            seg.size += written
            self._bytes += written
            self._rotate()
            raise
        seg.size += len(data)
        seg.rows = (seg.rows or 0) + rows
        self._bytes += len(data)
        self.rows_spooled += rows
        self._unsynced = True
        self.pending = True

    def _new_segment(self) -> Segment:
        created = _now_ms()
        path = self.directory / f"{self._next_seq:016d}{SUFFIX}"
        head = spool_format.header(created)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.write(self._fd, head)
        seg = Segment(self._next_seq, path, len(head), created)
        self._next_seq += 1
        self._segments.append(seg)
        self._bytes += len(head)
        self._unsynced = True
        return seg

    def _rotate(self) -> None:
        """Close the open segment (its fsync and close run in the background task)."""
        if self._fd is None:
            return
        self._to_close.append(self._fd)
        self._fd = None
        self._wake.set()

    def sync(self) -> None:
        """Fsync and close closed segments, fsync the open one and the directory (blocking)."""
        while self._to_close:
            _fsync_and_close(self._to_close.pop(0))
        fd = self._fd  # read once: the event loop may rotate it meanwhile
        if fd is not None and self._unsynced:
            self._unsynced = False
            os.fsync(fd)
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.losses.persist()

    # -- reading -----------------------------------------------------------------------

    async def take_segment(self) -> tuple[Segment, list[Row]] | None:
        """The oldest segment not yet handed out, with its rows (None: nothing spooled).

        Records that cannot be read back come as DeadLetter rows at the end, so they are
        stored (and the segment deleted) only with everything else.
        """
        while self._taken < len(self._segments):
            seg = self._segments[self._taken]
            if seg is self._segments[-1] and self._fd is not None:
                if seg.rows == 0:
                    return None  # only the header of the open segment
                self._rotate()
            self._taken += 1
            try:
                data = await asyncio.to_thread(seg.path.read_bytes)
            except OSError as exc:
                # Left on disk for the operator (and the next start): never deleted unread.
                logger.error("cannot read spool segment %s (%s): skipped in this run", seg.path, exc)
                self._update_pending()
                continue
            decoded = spool_format.decode(data)
            rows = decoded.rows
            for offset, raw, why in decoded.unreadable:
                self.records_unreadable += 1
                logger.error(
                    "spool segment %s: unreadable record at byte %d (%s); kept as a dead letter",
                    seg.path.name,
                    offset,
                    why,
                )
                rows.append(
                    DeadLetter(
                        spool_format.exchange_of(raw),
                        _now_ms(),
                        f"spool segment {seg.path.name} byte {offset}: {why}",
                        raw.decode("utf-8", "replace"),
                    )
                )
            seg.rows = len(rows)
            seg.left = len(rows)
            self.rows_replayed += len(decoded.rows)
            self._update_pending()
            if rows:
                return seg, rows
            self.discard(seg)
        self._update_pending()
        return None

    def discard(self, seg: Segment) -> None:
        """Delete a segment whose rows are all committed."""
        try:
            seg.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.error("cannot delete spool segment %s (%s): it will be replayed again", seg.path, exc)
        i = self._segments.index(seg)
        del self._segments[i]
        if i < self._taken:
            self._taken -= 1
        self._bytes -= seg.size
        self._freed = True
        self._update_pending()

    # -- background: fsync and loss recording ----------------------------------------

    async def _fsync_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.fsync_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await asyncio.to_thread(self.sync)
            except OSError as exc:
                logger.error("spool fsync failed (%s): %s", self.directory, exc)

    async def _record_loop(self, pool: Pool) -> None:
        """Every RECORD_INTERVAL, and once more at close: upsert unrecorded loss ranges."""
        while True:
            stopping = self._stopping.is_set()
            if self.losses.unrecorded():
                await self._record_losses(pool)
            if stopping:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECORD_INTERVAL):
                    await self._stopping.wait()

    async def _record_losses(self, pool: Pool) -> None:
        try:
            async with pool.connection(timeout=RECORD_CONNECT_TIMEOUT) as conn:
                done = await self.losses.record(conn)
            if done:
                logger.info("recorded %d loss range(s) in ingest_gaps", done)
        except Exception as exc:  # the database is down: try again later
            logger.debug("loss ranges not recorded yet: %s", redact_text(str(exc)))

    # -- reporting ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Bytes, segments, the oldest spooled row's time and age, rows lost."""
        holding = [seg for seg in self._segments if seg.rows != 0]
        oldest = holding[0].created_ms if holding else None
        when = datetime.fromtimestamp(oldest / 1000, UTC) if oldest else None
        return {
            "directory": str(self.directory),
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
            "segments": len(holding),
            "rows_spooled": self.rows_spooled,
            "rows_replayed": self.rows_replayed,
            "records_unreadable": self.records_unreadable,
            "oldest_row_time": when.isoformat(timespec="milliseconds") if when else None,
            "oldest_row_age": (_now_ms() - oldest) / 1000 if oldest else 0.0,
            **self.losses.stats(),
        }
