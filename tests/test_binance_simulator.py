"""The Binance simulator against real websockets clients on 127.0.0.1 (no database)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from cli.main import app
from ingest.errors import ConfigError
from ingest.simulator.binance import BinanceSimulator, BinanceSimulatorSettings, PublishedTrade
from ingest.simulator.binance.tape import Tape, agg_of, agg_span

ROOT = Path(__file__).resolve().parent.parent


def binance(**settings: Any) -> BinanceSimulator:
    """A Binance simulator with these settings; `async with` starts and stops it."""
    return BinanceSimulator(BinanceSimulatorSettings(**settings))


async def recv_json(ws: ClientConnection, within: float = 5.0) -> Any:
    async with asyncio.timeout(within):
        return orjson.loads(await ws.recv())


async def call(ws: ClientConnection, method: str, params: Any = None, request_id: Any = 1) -> Any:
    """Send a method call and return the first answer (a message with an "id")."""
    request: dict[str, Any] = {"method": method, "id": request_id}
    if params is not None:
        request["params"] = params
    await ws.send(orjson.dumps(request).decode())
    while True:
        message = await recv_json(ws)
        if isinstance(message, dict) and "id" in message:
            return message


async def collect(
    ws: ClientConnection, count: int, keep: Callable[[Any], bool] = lambda m: True
) -> list[Any]:
    out: list[Any] = []
    while len(out) < count:
        message = await recv_json(ws)
        if keep(message):
            out.append(message)
    return out


def as_published(payloads: list[dict[str, Any]]) -> list[PublishedTrade]:
    """Trade payloads back as PublishedTrade (agg_id and µs time taken from the record)."""
    return [(p["s"], p["t"], p["p"], p["q"], p["T"], p["m"]) for p in payloads]  # type: ignore[misc]


def published_as_tuples(trades: list[PublishedTrade]) -> list[tuple[Any, ...]]:
    return [(t.symbol, t.trade_id, t.price, t.qty, t.time_ms, t.buyer_maker) for t in trades]


async def until_closed(
    ws: ClientConnection, on_message: Callable[[Any], None] = lambda m: None
) -> tuple[list[Any], bool]:
    """Messages received until the connection ends (within 5 s each), and whether it ended."""
    messages: list[Any] = []
    try:
        while True:
            messages.append(await recv_json(ws))
            on_message(messages[-1])
    except ConnectionClosed:
        return messages, True


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class RawClient:
    """A WebSocket client on websockets' Sans-I/O ClientProtocol over a plain TCP stream.

    Unlike websockets' own clients it answers pings only with answer_pings=True, so a test can
    play a client whose pong never comes; it also sends ping and pong frames on demand."""

    def __init__(
        self, protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self.answer_pings = True

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[RawClient]:
        uri = parse_uri(url)
        protocol = ClientProtocol(uri)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        client = cls(protocol, reader, writer)
        protocol.send_request(protocol.connect())
        client._flush()
        while not any(isinstance(e, Response) for e in await client._read()):
            pass
        try:
            yield client
        finally:
            writer.close()

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)

    async def _read(self) -> list[Any]:
        data = await self.reader.read(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        if self.answer_pings:
            self._flush()
        else:
            self.protocol.data_to_send()  # the automatic pong (and close echo) is dropped
        return list(self.protocol.events_received())

    async def frames(self, within: float) -> list[Frame]:
        """Frames received until the connection ends or `within` seconds pass."""
        out: list[Frame] = []
        deadline = asyncio.get_running_loop().time() + within
        with_timeout = asyncio.timeout_at(deadline)
        try:
            async with with_timeout:
                while not self.reader.at_eof():
                    out += [e for e in await self._read() if isinstance(e, Frame)]
        except TimeoutError:
            pass
        return out

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def send_ping(self, payload: bytes = b"") -> None:
        self.protocol.send_ping(payload)
        self._flush()

    def send_pong(self, payload: bytes = b"") -> None:
        self.protocol.send_pong(payload)
        self._flush()


# -- streams ------------------------------------------------------------------------------


async def test_combined_trades_have_consecutive_ids_and_equal_the_published_record() -> None:
    sim = binance(symbols=("BTCUSDT", "ETHUSDT"), rate=2000, total=60)
    async with sim, connect(sim.stream_url("btcusdt@trade", "ethusdt@trade")) as ws:
        messages = await collect(ws, 60)
        with pytest.raises(TimeoutError):
            await recv_json(ws, within=0.2)  # the total is reached: nothing more
    assert {m["stream"] for m in messages} == {"btcusdt@trade", "ethusdt@trade"}
    for m in messages:
        assert m["stream"] == m["data"]["s"].lower() + "@trade"
        assert m["data"]["e"] == "trade"
        assert m["data"]["M"] is True
        assert m["data"]["E"] >= m["data"]["T"]
    for symbol in ("BTCUSDT", "ETHUSDT"):
        data = [m["data"] for m in messages if m["data"]["s"] == symbol]
        assert [d["t"] for d in data] == list(range(1, 31))
        assert as_published(data) == published_as_tuples(sim.published_trades(symbol))
        assert sim.published_count(symbol) == 30
    assert sim.published_trades("BTCUSDT", 5, 7) == sim.published_trades("BTCUSDT")[4:7]
    assert Decimal(messages[0]["data"]["p"]).as_tuple().exponent == -8  # Binance's 8 decimals


async def test_raw_path_sends_bare_payloads_and_microseconds_on_request() -> None:
    async with binance(rate=1000, total=6) as sim, connect(sim.base_url + "/ws/btcusdt@trade") as ws:
        raw = await collect(ws, 6)
        published = sim.published_trades("BTCUSDT")
    assert [m["t"] for m in raw] == [1, 2, 3, 4, 5, 6]
    assert all("stream" not in m for m in raw)
    assert [m["T"] for m in raw] == [t.time_ms for t in published]
    async with binance(rate=1000, total=3) as sim, connect(sim.stream_url("btcusdt@trade", micro=True)) as ws:
        micro = [m["data"] for m in await collect(ws, 3)]
        published = sim.published_trades("BTCUSDT")
    assert [m["T"] for m in micro] == [t.time_us for t in published]
    assert micro[0]["E"] > 10**15  # microseconds since the epoch


async def test_agg_trades_cover_consecutive_trade_ids_with_their_summed_quantity() -> None:
    async with binance(rate=5000, total=40) as sim, connect(sim.stream_url("btcusdt@aggTrade")) as ws:
        aggs = [m["data"] for m in await collect(ws, 21)]  # 40 trades: aggregates of 1, 2, 3, 1, ...
        trades = {t.trade_id: t for t in sim.published_trades("BTCUSDT")}
    assert [a["a"] for a in aggs] == list(range(1, 22))
    covered = [i for a in aggs for i in range(a["f"], a["l"] + 1)]
    assert covered == list(range(1, 41))
    for a in aggs:
        assert a["e"] == "aggTrade"
        parts = [trades[i] for i in range(a["f"], a["l"] + 1)]
        assert {t.price for t in parts} == {a["p"]}
        assert {t.buyer_maker for t in parts} == {a["m"]}
        assert {t.time_ms for t in parts} == {a["T"]}
        assert Decimal(a["q"]) == sum(Decimal(t.qty) for t in parts)


async def test_live_tape_trades_while_nobody_listens() -> None:
    async with binance(rate=500, live=True) as sim:
        await wait_for(lambda: sim.published_count("BTCUSDT") >= 50)
        async with connect(sim.stream_url("btcusdt@trade")) as ws:
            first = (await recv_json(ws))["data"]
        assert first["t"] > 50, "the tape ran before anyone subscribed"
        assert sim.published_trades("BTCUSDT", 1, 3)[0].trade_id == 1


async def test_quiet_tape_waits_for_a_trade_subscriber() -> None:
    async with binance(rate=500) as sim, connect(sim.url) as ws:
        assert await call(ws, "SUBSCRIBE", ["btcusdt@depth5"]) == {"result": None, "id": 1}
        await asyncio.sleep(0.2)
        assert sim.published_count("BTCUSDT") == 0


async def test_partial_depth_book_ticker_and_ticker_around_the_last_price() -> None:
    streams = (
        "btcusdt@depth5@100ms",
        "btcusdt@depth10",
        "btcusdt@bookTicker",
        "btcusdt@ticker",
        "btcusdt@trade",
    )
    settings = {"rate": 200, "total": 10, "book_ticker_per_second": 20.0, "ticker_per_second": 20.0}
    async with binance(**settings) as sim, connect(sim.stream_url(*streams)) as ws:
        messages = await collect(ws, 60, lambda m: m["stream"] != "btcusdt@trade")
        trades = sim.published_trades("BTCUSDT")
    by_stream: dict[str, list[Any]] = {}
    for m in messages:
        by_stream.setdefault(m["stream"], []).append(m["data"])
    depth5 = by_stream["btcusdt@depth5@100ms"]
    assert {len(d["bids"]) for d in depth5} == {5}
    assert {len(d["asks"]) for d in depth5} == {5}
    ids = [d["lastUpdateId"] for d in depth5]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for d in depth5:
        assert Decimal(d["bids"][0][0]) < Decimal(d["asks"][0][0])
        assert [Decimal(b[0]) for b in d["bids"]] == sorted((Decimal(b[0]) for b in d["bids"]), reverse=True)
    assert len(by_stream["btcusdt@depth10"][0]["bids"]) == 10
    book = by_stream["btcusdt@bookTicker"][-1]
    assert set(book) == {"u", "s", "b", "B", "a", "A"}
    assert book["s"] == "BTCUSDT"
    ticker = by_stream["btcusdt@ticker"][-1]
    assert ticker["e"] == "24hrTicker"
    # The last ticker comes long after the whole (bounded, 50 ms) tape was published.
    assert (ticker["F"], ticker["L"], ticker["n"]) == (1, 10, 10)
    assert Decimal(ticker["v"]) == sum(Decimal(t.qty) for t in trades)
    assert Decimal(ticker["c"]) == Decimal(trades[-1].price)
    assert Decimal(ticker["b"]) == Decimal(trades[-1].price)


async def test_kline_updates_then_closes_once_with_the_interval_trades() -> None:
    settings = {"rate": 100, "live": True, "kline_update_seconds": 0.2}
    async with binance(**settings) as sim, connect(sim.stream_url("btcusdt@kline_1s")) as ws:
        klines: list[dict[str, Any]] = []
        while sum(k["x"] for k in klines) < 2:
            klines.append((await recv_json(ws))["data"]["k"])
        trades = sim.published_trades("BTCUSDT")
    closed = [k for k in klines if k["x"]]
    assert closed[1]["t"] == closed[0]["t"] + 1000, "one closing kline per interval"
    updates = [k for k in klines if not k["x"] and k["t"] == closed[1]["t"]]
    assert len(updates) >= 3  # every 0.2 s while the interval is open
    assert [k["n"] for k in updates] == sorted(k["n"] for k in updates)
    last = closed[1]
    assert last["T"] == last["t"] + 999
    assert last["i"] == "1s"
    inside = [t for t in trades if last["t"] <= t.time_ms <= last["T"]]
    assert last["n"] == len(inside) > 0
    assert (last["f"], last["L"]) == (inside[0].trade_id, inside[-1].trade_id)
    assert Decimal(last["o"]) == Decimal(inside[0].price)
    assert Decimal(last["c"]) == Decimal(inside[-1].price)
    assert Decimal(last["h"]) == max(Decimal(t.price) for t in inside)
    assert Decimal(last["v"]) == sum(Decimal(t.qty) for t in inside)
    assert Decimal(last["V"]) == sum(Decimal(t.qty) for t in inside if not t.buyer_maker)


def test_aggregate_ids_and_trade_spans_are_inverse() -> None:
    spans = [agg_span(a) for a in range(1, 301)]
    assert [i for first, last in spans for i in range(first, last + 1)] == list(range(1, 601))
    assert all(agg_of(i) == a for a, (first, last) in enumerate(spans, 1) for i in range(first, last + 1))


def test_tape_keeps_the_newest_trades_only_without_record() -> None:
    tape = Tape("BTCUSDT", limit=None, keep=10)
    for k in range(5000):
        assert tape.publish(1, 1_000_000 + k) is not None
    newest = tape.published
    assert tape.oldest() == newest - 9
    assert [t.trade_id for t in tape.trades(1, newest)] == list(range(newest - 9, newest + 1))
    bounded = Tape("BTCUSDT", limit=4, keep=None)
    assert bounded.publish(10, 5) == (1, 4)
    assert bounded.publish(1, 6) is None
    assert [(a.first, a.last) for a in bounded.aggregates(1, 10)] == [(1, 1), (2, 3), (4, 4)]


# -- methods ------------------------------------------------------------------------------


async def test_subscribe_list_unsubscribe() -> None:
    async with binance(rate=1000, max_messages_per_second=100) as sim, connect(sim.url) as ws:
        assert await call(ws, "LIST_SUBSCRIPTIONS", request_id=1) == {"result": [], "id": 1}
        answer = await call(ws, "SUBSCRIBE", ["btcusdt@trade", "btcusdt@aggTrade"], request_id=2)
        assert answer == {"result": None, "id": 2}
        first = await recv_json(ws)
        assert first["e"] in ("trade", "aggTrade")
        assert "stream" not in first
        answer = await call(ws, "LIST_SUBSCRIPTIONS", request_id="abc3")
        assert answer == {"result": ["btcusdt@trade", "btcusdt@aggTrade"], "id": "abc3"}
        assert await call(ws, "UNSUBSCRIBE", ["btcusdt@trade", "btcusdt@aggTrade"], 4) == {
            "result": None,
            "id": 4,
        }
        with pytest.raises(TimeoutError):
            await recv_json(ws, within=0.2)  # nothing follows the answer
        assert await call(ws, "GET_PROPERTY", ["combined"], 5) == {"result": False, "id": 5}
        assert await call(ws, "SET_PROPERTY", ["combined", True], 6) == {"result": None, "id": 6}
        await call(ws, "SUBSCRIBE", ["btcusdt@trade"], 7)
        assert (await recv_json(ws))["stream"] == "btcusdt@trade"


async def test_errors_in_binance_shape() -> None:
    async with binance(max_messages_per_second=100) as sim, connect(sim.url) as ws:
        await ws.send("{nope")
        assert await recv_json(ws) == {
            "error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 2"},
            "id": None,
        }
        answer = await call(ws, "SUBSCRIBE", ["btcusdt@nosuch"], 1)
        assert answer == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 1}
        answer = await call(ws, "SUBSCRIBE", ["dogeusdt@trade"], 2)  # not a configured symbol
        assert answer["error"]["code"] == 2
        assert await call(ws, "LIST_SUBSCRIPTIONS", request_id=3) == {"result": [], "id": 3}
        answer = await call(ws, "FETCH", [], 4)
        assert answer["error"]["code"] == 2
        assert answer["error"]["msg"].startswith("Invalid request: unknown variant `FETCH`, expected one of")
        await ws.send('{"params":[],"id":5}')
        assert (await recv_json(ws))["error"]["msg"].startswith("Invalid request: missing field `method`")
        await ws.send('{"method":"SUBSCRIBE","params":[],"id":{"x":1}}')
        assert (await recv_json(ws))["error"] == {
            "code": 2,
            "msg": "Invalid request: request ID must be an unsigned integer",
        }
        assert (await call(ws, "SET_PROPERTY", ["combined", "yes"], 6))["error"] == {
            "code": 1,
            "msg": "Invalid value type: expected Boolean",
        }
        assert (await call(ws, "GET_PROPERTY", ["colour"], 7))["error"] == {
            "code": 0,
            "msg": "Unknown property",
        }
        assert sim.counters["errors"] == 8


async def test_stream_limit_per_connection() -> None:
    async with binance(symbols=("BTCUSDT", "ETHUSDT"), max_streams=2) as sim, connect(sim.url) as ws:
        answer = await call(ws, "SUBSCRIBE", ["btcusdt@depth5", "ethusdt@depth5", "btcusdt@ticker"])
        assert answer["error"]["code"] == 2
        assert "too many streams" in answer["error"]["msg"]
        assert await call(ws, "SUBSCRIBE", ["btcusdt@depth5", "ethusdt@depth5"], 2) == {
            "result": None,
            "id": 2,
        }
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim.stream_url("btcusdt@depth5", "ethusdt@depth5", "btcusdt@ticker")):
                pass
        assert refused.value.response.status_code == 400


# -- keep-alive, limits, lifetime ---------------------------------------------------------


async def test_ping_frames_arrive_and_a_client_without_pongs_is_closed() -> None:
    async with binance(ping_interval=0.1, pong_timeout=0.3) as sim:
        async with RawClient.open(sim.url) as answering:
            frames = await answering.frames(within=0.5)
            assert [f.opcode for f in frames].count(Opcode.PING) >= 3
            assert Opcode.CLOSE not in [f.opcode for f in frames]
        async with RawClient.open(sim.url) as silent:
            silent.answer_pings = False
            started = time.monotonic()
            frames = await silent.frames(within=3.0)
            took = time.monotonic() - started
        assert frames[0].opcode == Opcode.PING
        assert frames[-1].opcode == Opcode.CLOSE
        assert 0.35 <= took < 2.0


async def test_unsolicited_pongs_are_allowed_but_count_as_messages() -> None:
    async with binance() as sim, RawClient.open(sim.url) as client:
        client.send_pong()
        client.send_ping(b"hi")
        client.send_text('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        frames = await client.frames(within=0.3)
        assert [(f.opcode, f.data) for f in frames] == [
            (Opcode.PONG, b"hi"),
            (Opcode.TEXT, b'{"result":[],"id":1}'),
        ]
        client.send_pong()
        client.send_ping()
        client.send_pong()  # the 6th message within a second
        frames = await client.frames(within=2.0)
        assert frames[-1].opcode == Opcode.CLOSE
    assert sim.counters["flood_closes"] == 1


async def test_five_messages_a_second_are_fine_six_close_the_connection() -> None:
    async with binance() as sim, connect(sim.url, ping_interval=None) as ws:
        for i in range(5):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        assert [m["id"] for m in await collect(ws, 5)] == [0, 1, 2, 3, 4]
        await asyncio.sleep(1.05)
        for i in range(6):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        answers, closed = await until_closed(ws)
        assert closed
        # Messages that came before the sixth may be answered; nothing after it is.
        assert [m["id"] for m in answers] == list(range(len(answers)))
        assert len(answers) <= 5
        assert ws.close_code == 1008
    assert sim.counters["flood_closes"] == 1


async def test_lifetime_ends_with_server_shutdown_then_close() -> None:
    sim = binance(lifetime=0.3, shutdown_grace=0.3)
    async with sim, connect(sim.stream_url("btcusdt@depth5"), ping_interval=None) as ws:
        started = time.monotonic()
        shutdown_at = 0.0

        def note(message: Any) -> None:
            nonlocal shutdown_at
            if message["stream"] == "!serverShutdown":
                shutdown_at = time.monotonic()

        messages, closed = await until_closed(ws, note)
        closed_at = time.monotonic()
    assert closed
    notice = [m for m in messages if m["stream"] == "!serverShutdown"]
    assert len(notice) == 1
    assert set(notice[0]) == {"stream", "data"}
    assert set(notice[0]["data"]) == {"e", "E"}
    assert notice[0]["data"]["e"] == "serverShutdown"
    assert 0.25 <= shutdown_at - started < 1.0
    assert 0.25 <= closed_at - shutdown_at < 1.5
    assert ws.close_code == 1001


async def test_server_shutdown_control_and_refused_handshakes() -> None:
    async with binance() as sim:
        async with connect(sim.url, ping_interval=None) as ws:
            assert await sim.server_shutdown(grace=0.05) == 1
            notice = await recv_json(ws)
            assert notice["e"] == "serverShutdown"
            assert set(notice) == {"e", "E"}
            assert abs(notice["E"] - time.time() * 1000) < 5000
            with pytest.raises(ConnectionClosed):
                await recv_json(ws)
        async with connect(sim.url, ping_interval=None) as ws:
            await wait_for(lambda: sim.open_connections == 1)
            assert await sim.disconnect_all(refuse_for=0.5) == 1
            with pytest.raises(ConnectionClosed):
                await recv_json(ws)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim.url):
                pass
        assert refused.value.response.status_code == 503
        await asyncio.sleep(0.6)
        async with connect(sim.url) as ws:
            assert await call(ws, "LIST_SUBSCRIPTIONS") == {"result": [], "id": 1}


async def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="give it a rate"):
        await binance(live=True, rate=None).start()
    with pytest.raises(ConfigError, match="not a Binance symbol"):
        binance(symbols=("BTC-USDT",))


# -- REST ---------------------------------------------------------------------------------


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback simulator
            return answer.status, dict(answer.headers), orjson.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), orjson.loads(exc.read())


async def get(url: str) -> tuple[int, dict[str, str], Any]:
    return await asyncio.to_thread(_get, url)


async def test_rest_history_equals_what_was_published() -> None:
    async with binance(rate=2000, total=100, live=True) as sim:
        await wait_for(lambda: sim.published_count("BTCUSDT") == 100)
        base = sim.rest_url + "/api/v3"
        published = sim.published_trades("BTCUSDT")
        status, headers, newest = await get(f"{base}/trades?symbol=BTCUSDT&limit=10")
        assert status == 200
        assert headers["X-MBX-USED-WEIGHT-1M"] == "25"
        assert [t["id"] for t in newest] == list(range(91, 101))
        t = published[95]
        assert newest[5] == {
            "id": 96,
            "price": t.price,
            "qty": t.qty,
            "quoteQty": f"{(Decimal(t.price) * Decimal(t.qty)).normalize():f}",
            "time": t.time_ms,
            "isBuyerMaker": t.buyer_maker,
            "isBestMatch": True,
        }
        _, _, older = await get(f"{base}/historicalTrades?symbol=BTCUSDT&fromId=20&limit=5")
        assert [(o["id"], o["price"], o["time"]) for o in older] == [
            (p.trade_id, p.price, p.time_ms) for p in published[19:24]
        ]
        _, _, aggs = await get(f"{base}/aggTrades?symbol=BTCUSDT&fromId=1&limit=1000")
        assert [i for a in aggs for i in range(a["f"], a["l"] + 1)] == list(range(1, 101))
        start = published[50].time_ms
        _, _, timed = await get(f"{base}/aggTrades?symbol=BTCUSDT&startTime={start}&endTime={start}")
        assert timed
        assert all(a["T"] == start for a in timed)
        status, _, info = await get(f"{base}/exchangeInfo?symbol=BTCUSDT")
        assert status == 200
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]
        assert info["symbols"][0]["baseAsset"] == "BTC"
        assert info["symbols"][0]["quoteAsset"] == "USDT"
        status, _, error = await get(f"{base}/trades?symbol=NOPE")
        assert (status, error) == (400, {"code": -1121, "msg": "Invalid symbol."})


async def test_rest_weight_budget_answers_429_with_retry_after() -> None:
    async with binance(weight_per_minute=50) as sim:
        url = sim.rest_url + "/api/v3/trades?symbol=BTCUSDT"
        if time.time() % 60 > 58:  # keep the three requests within one UTC minute
            await asyncio.sleep(2.5)
        assert (await get(url))[0] == 200
        assert (await get(url))[0] == 200
        status, headers, body = await get(url)
        assert status == 429
        assert body["code"] == -1003
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert sim.rest.rate_limited == 1


# -- CLI ----------------------------------------------------------------------------------


async def test_cli_simulate_binance_prints_where_it_listens_and_serves_trades() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "simulate",
        "--exchange",
        "binance",
        "--port",
        "0",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--rate",
        "200",
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            lines = [(await proc.stdout.readline()).decode().strip() for _ in range(2)]
        ws_url, rest_url = (line.split(" ", 1)[1] for line in lines)
        assert lines[0].startswith("ws_url: ws://127.0.0.1:")
        assert rest_url == ws_url.replace("ws://", "http://")
        async with connect(f"{ws_url}/stream?streams=ethusdt@trade") as ws:
            trade = (await recv_json(ws, within=10))["data"]
        assert trade["s"] == "ETHUSDT"
        assert trade["t"] >= 1
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
    assert proc.returncode == 0
    assert "stopped: " in err.decode()


def test_cli_simulate_binance_refuses_okx_only_options() -> None:
    for option, value in (
        ("--replay", "x.jsonl"),
        ("--trades-channel", "trades"),
        ("--trades-per-message", "2"),
    ):
        result = CliRunner().invoke(app, ["simulate", "--exchange", "binance", option, value, "--port", "0"])
        assert result.exit_code == 2
        assert f"{option} is an OKX option" in result.output
    result = CliRunner().invoke(app, ["simulate", "--exchange", "kraken", "--port", "0"])
    assert result.exit_code == 2
    assert "--exchange is 'kraken'; use okx or binance" in result.output
    result = CliRunner().invoke(app, ["simulate", "--exchange", "binance", "--symbols", "BTC-USDT"])
    assert result.exit_code == 2
    assert "not a Binance symbol" in result.output
