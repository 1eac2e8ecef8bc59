"""`tcpd simulate` with one message per build chunk, for latency runs.

`tcpd simulate --rate R` builds R/200 trades per chunk (~5 ms of trades) and stamps them all
with the chunk's build time, so a trade's `ts` can be a few ms older than the moment it is
sent, which would be counted as pipeline latency. Here the chunk is one message:
it is built (and stamped) by the simulator's pump right before it is written, so `ts` is
the send time to within the pump's ~1 ms step. Same options and output as `tcpd simulate`.

    .venv/bin/python benchmarks/ingest_simulator.py --port 0 --rate 1000 --total 60000
"""

from __future__ import annotations

import argparse
import asyncio

from cli.simulate import serve_okx
from ingest.simulator import SimulatorSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--symbols", default="BTC-USDT")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--trades-per-message", type=int, default=1)
    parser.add_argument("--total", type=int, default=None)
    parser.add_argument("--idle-timeout", type=float, default=3600.0)
    a = parser.parse_args()
    settings = SimulatorSettings(
        port=a.port,
        symbols=tuple(s for s in a.symbols.split(",") if s),
        rate=a.rate or None,
        trades_per_message=a.trades_per_message,
        total=a.total,
        idle_timeout=a.idle_timeout,
        record=False,
        chunk_trades=a.trades_per_message,  # one message per chunk: stamped when sent
    )
    asyncio.run(serve_okx(settings))


if __name__ == "__main__":
    main()
