"""/metrics, /healthz and /readyz of `tcpd run` (ingest/metrics/): against the simulator, a real
database that is stopped and started again, and a real Prometheus server scraping the service."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.collector_support import simulator, wait_for
from tests.dashboard_support import SERIES_ONLY_SOMETIMES, dashboard_queries, interpolate_promql, metric_names
from tests.service_support import TCPD, Service, endpoint_port, http_request, query, wait_rows, write_configs


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


async def test_metrics_count_what_was_committed_and_readyz_follows_the_database(
    tmp_path: Path, migrated_db_dsn: str, native_engine: Any
) -> None:
    dsn = migrated_db_dsn
    async with simulator(symbols=("BTC-USDT", "ETH-USDT"), total=3000, rate=2000.0) as sim:
        svc = Service(tmp_path, write_configs(tmp_path, sim, dsn, ["BTC-USDT", "ETH-USDT"]))
        await svc.start()
        try:
            port = await endpoint_port(svc)
            await wait_rows(dsn, "raw_trades", 3000)
            status, body = await asyncio.to_thread(http_request, port, "/metrics")
            assert status == 200
            got = samples(body)
            assert got[("tcpd_rows_committed_total", (("table", "raw_trades"),))] == 3000
            received = [
                got[("tcpd_rows_received_total", (("exchange", "okx"), ("symbol", s)))]
                for s in ("BTC-USDT", "ETH-USDT")
            ]
            assert received == [1500, 1500]
            assert got[("tcpd_writer_queue_capacity_rows", ())] > 0
            assert got[("tcpd_batch_commit_seconds_count", ())] >= 1
            # every trade's exchange-time-to-commit latency, each well within 10 s here
            okx = (("exchange", "okx"),)
            assert got[("tcpd_trade_commit_latency_seconds_count", okx)] == 3000
            assert got[("tcpd_trade_commit_latency_seconds_bucket", (*okx, ("le", "10.0")))] == 3000
            assert got[("tcpd_database_outage_seconds", ())] == 0
            assert (await asyncio.to_thread(http_request, port, "/healthz"))[0] == 200
            status, body = await asyncio.to_thread(http_request, port, "/readyz")
            assert status == 200, body
            ready = json.loads(body)
            assert ready["database_reachable"] is True
            assert set(ready["collectors"]) == {"okx-BTC-USDT", "okx-ETH-USDT"}

            await asyncio.to_thread(native_engine.stop)
            try:
                await wait_for(lambda: http_request(port, "/readyz")[0] == 503, within=30, what="/readyz 503")
                status, body = await asyncio.to_thread(http_request, port, "/readyz")
                assert json.loads(body)["database_reachable"] is False
                assert (await asyncio.to_thread(http_request, port, "/healthz"))[0] == 200  # alive all along
            finally:
                await asyncio.to_thread(native_engine.start)
            await wait_for(
                lambda: http_request(port, "/readyz")[0] == 200, within=60, what="/readyz 200 again"
            )
            assert (await asyncio.to_thread(http_request, port, "/nope"))[0] == 404
            assert await svc.terminate() == 0, svc.output()
        finally:
            svc.kill()


async def test_a_port_in_use_stops_the_start_with_the_key_and_the_fix(
    tmp_path: Path, migrated_db_dsn: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with simulator(symbols=("BTC-USDT",), total=10) as sim:
            args = write_configs(tmp_path, sim, migrated_db_dsn, ["BTC-USDT"])
            database = json.loads((tmp_path / "database.json").read_text())
            database["http"] = {"listen": f"127.0.0.1:{port}"}
            (tmp_path / "database.json").write_text(json.dumps(database))
            done = await asyncio.to_thread(
                subprocess.run, [str(TCPD), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
            )
    said = done.stderr + done.stdout
    assert done.returncode != 0, said
    assert f"http.listen 127.0.0.1:{port}: cannot listen there" in said
    assert "null for no endpoints" in said


# -- a real Prometheus ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Prometheus server on loopback (Debian's `prometheus`); yields its URL and config file,
    which the test fills with the target and reloads (SIGHUP)."""
    binary = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if binary is None:
        if os.environ.get("TCPD_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("prometheus is not installed (TCPD_REQUIRE_PROMETHEUS=1): apt-get install prometheus")
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs: []\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--web.enable-lifecycle"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_request(port, "/-/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError((tmp_path / "prometheus.log").read_text())
            time.sleep(0.2)
        yield url, config
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def promql(url: str, expression: str) -> list[dict[str, Any]]:
    port = int(url.rsplit(":", 1)[1])
    status, body = http_request(port, "/api/v1/query?query=" + urllib.parse.quote(expression))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


async def test_prometheus_scrapes_the_committed_row_rate_and_the_queue(
    tmp_path: Path, migrated_db_dsn: str, prometheus: tuple[str, Path]
) -> None:
    url, config = prometheus
    rate = 400.0
    async with simulator(symbols=("BTC-USDT",), total=None, rate=rate) as sim:
        svc = Service(tmp_path, write_configs(tmp_path, sim, migrated_db_dsn, ["BTC-USDT"]))
        await svc.start()
        try:
            port = await endpoint_port(svc)
            config.write_text(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tcpd\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            )
            status, _ = await asyncio.to_thread(
                lambda: http_request(int(url.rsplit(":", 1)[1]), "/-/reload", "POST")
            )
            assert status == 200
            rows = 'tcpd_rows_committed_total{job="tcpd",table="raw_trades"}'
            # rate() over 10 s needs that much scraping first.
            await wait_for(lambda: len(promql(url, f"rate({rows}[10s])")) == 1, within=60, what="a rate")
            await asyncio.sleep(11)
            (measured,) = promql(url, f"rate({rows}[10s])")
            assert 0.7 * rate <= float(measured["value"][1]) <= 1.3 * rate, measured
            (latest,) = promql(url, rows)
            stored = (await query(migrated_db_dsn, "SELECT count(*) FROM raw_trades"))[0][0]
            assert stored - 3 * rate <= float(latest["value"][1]) <= stored  # scraped within ~1 s
            (queue,) = promql(url, 'tcpd_writer_queue_rows{job="tcpd"}')
            assert 0 <= float(queue["value"][1]) <= rate  # a healthy writer keeps up
            (up,) = promql(url, 'up{job="tcpd"}')
            assert up["value"][1] == "1"
            _, body = await asyncio.to_thread(http_request, port, "/metrics")
            await asyncio.to_thread(check_dashboard_expressions, url, {name for name, _ in samples(body)})
            assert await svc.terminate() == 0, svc.output()
        finally:
            svc.kill()


def check_dashboard_expressions(url: str, exported: set[str]) -> None:
    """Every PromQL expression of the Grafana dashboards (monitoring/grafana/dashboards/) is valid
    for this Prometheus and names metrics the service exports (or, with no series in this test,
    SERIES_ONLY_SOMETIMES); one that reads only exported metrics answers with series."""
    expressions = [q for q in dashboard_queries() if q.language == "promql"]
    assert expressions
    for panel_query in expressions:
        where = f"{panel_query.dashboard}, {panel_query.where!r}"
        expression = interpolate_promql(panel_query.text, rate_interval="10s")
        result = promql(url, expression)  # status "success", or the assertion shows Prometheus' error
        names = metric_names(expression)
        unknown = names - exported - SERIES_ONLY_SOMETIMES
        assert not unknown, f"{where}: the service exports no {sorted(unknown)}"
        if not names & SERIES_ONLY_SOMETIMES:
            assert result, f"{where}: {expression} answered no series"
