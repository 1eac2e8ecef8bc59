"""Active-active: two `tcpd run` with the same config, one database, every row stored once."""

from __future__ import annotations

from pathlib import Path

from tests.collector_support import simulator, wait_for
from tests.service_support import Service, db_trades, query, sent_tuples, wait_trades, write_configs


async def test_two_services_with_the_same_config_store_every_row_once(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    dsn = migrated_db_dsn
    total = 12_000
    homes = [tmp_path / "a", tmp_path / "b"]
    async with simulator(symbols=("BTC-USDT", "ETH-USDT"), total=total, rate=3000.0) as sim:
        services = []
        for home in homes:
            home.mkdir()
            args = write_configs(home, sim, dsn, ["BTC-USDT", "ETH-USDT"], store_raw_data=True)
            services.append(Service(home, args))
        try:
            for svc in services:
                await svc.start()
            # Both receive (most of) the same stream; the first also what came before the
            # second subscribed. Wait until every generated trade went out.
            await wait_for(lambda: len(set(sim.sent_trades)) == total, within=60)
            unique = sorted(set(sent_tuples(sim)), key=lambda r: (r[0], r[5], int(r[1])))
            await wait_trades(dsn, lambda rows: rows == unique)
            for svc in services:
                assert await svc.terminate() == 0, svc.output()
        finally:
            for svc in services:
                svc.kill()
    sent_twice = len(sim.sent_trades) - total
    assert sent_twice > total // 2, "the two services did not overlap enough to prove anything"
    assert await db_trades(dsn) == unique
    # The raw trade objects in market_data: once each too.
    raw = await query(dsn, "SELECT symbol, data->>'tradeId' FROM market_data WHERE data_type = 'trade'")
    assert sorted(raw) == sorted({(t.inst_id, t.trade_id) for t in sim.sent_trades})
    # What is not shared: both wrote the same collector names, so each collector has one
    # status row, written by whichever service was last.
    status = await query(dsn, "SELECT collector FROM collector_status ORDER BY collector")
    assert status == [("okx-BTC-USDT",), ("okx-ETH-USDT",)]
