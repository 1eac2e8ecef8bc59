"""No write hangs forever (issue 9, item 2): a COPY whose connection went silent mid-stream
(a TCP proxy between writer and database stops forwarding that connection, closing nothing:
half-open) is reported as an outage at writer.batch_deadline; its connection is dropped, its
server session (still holding the half-written COPY's locks) terminated, and the batch
retried on a new connection: every row stored exactly once while the old connection stays
silent. Real native engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg.conninfo
import pytest

from tests.storage_support import count, expected_trades, make_writer, read_trades, trade, wait_until
from tests.tcp_proxy import StallingProxy

DEADLINE = 3.0


@pytest.fixture
async def proxy(migrated_db_dsn: str) -> AsyncIterator[tuple[StallingProxy, str]]:
    params = psycopg.conninfo.conninfo_to_dict(migrated_db_dsn)
    proxy = StallingProxy(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    port = await proxy.start()
    try:
        yield proxy, psycopg.conninfo.make_conninfo(migrated_db_dsn, port=port)
    finally:
        await proxy.stop()


async def test_a_copy_stalled_mid_stream_is_an_outage_at_the_deadline_and_stored_once_after(
    proxy: tuple[StallingProxy, str], migrated_db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    silent, via_proxy = proxy
    writer = make_writer(
        via_proxy, batch_deadline=DEADLINE, batch_max_rows=5000, queue_max_rows=50_000, retry_max_delay=0.5
    )
    await writer.start()
    try:
        await writer.put([trade(i) for i in range(100)])
        await wait_until(lambda: count(migrated_db_dsn, "raw_trades") == 100, 20, "the first rows")
        silent.stall_during_copy(after=200_000)  # each batch's COPY is ~1 MB
        rows = [trade(i) for i in range(100, 20_100)]
        await writer.put(rows)
        await wait_until(lambda: silent.stalled, 20, "the proxy to stall mid-COPY")
        await wait_until(lambda: writer.stats()["outage"], DEADLINE + 2, "the outage to be reported")
        loop = asyncio.get_running_loop()
        assert silent.stalled_at is not None
        assert loop.time() - silent.stalled_at < DEADLINE + 2
        dropped = [r for r in caplog.records if "not committed within writer.batch_deadline" in r.message]
        assert dropped, "the stalled COPY was not given up at its deadline"
        # The stalled connection stays silent: the rows must come through new ones.
        await wait_until(lambda: count(migrated_db_dsn, "raw_trades") == 20_100, 60, "every row")
        await wait_until(lambda: not writer.stats()["outage"], 20, "the outage to end")
        assert silent.stalled
    finally:
        silent.resume()
        await writer.stop(30)
    assert writer.unwritten == 0
    assert read_trades(migrated_db_dsn) == expected_trades([trade(i) for i in range(20_100)])
