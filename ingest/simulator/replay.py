"""Replay of recorded OKX frames: one Stream per (channel, instId) found in a file."""

from __future__ import annotations

from pathlib import Path

import orjson

from ingest.errors import ConfigError
from ingest.simulator.streams import SentTrade, Stream


def load_replay(path: Path) -> list[Stream]:
    """Streams of recorded data frames from `path`, in file order.

    Accepts a file with one OKX frame (`*.json`), or JSON lines that are either OKX frames
    or `{"raw": "<frame>", ...}` records as in tests/data/okx/*.jsonl. Event frames (acks,
    errors) are skipped: the simulator makes its own.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read replay file {path}: {exc.strerror}") from None
    lines = [text] if path.suffix == ".json" else text.splitlines()
    streams: dict[tuple[str, str], Stream] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            frame = _frame_of(line)
        except KeyError as exc:
            raise ConfigError(f"replay file {path} line {number}: trade without field {exc}") from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"replay file {path} line {number}: {exc}") from None
        if frame is None:
            continue
        payload, channel, inst_id, trades = frame
        stream = streams.setdefault((channel, inst_id), Stream(channel, inst_id))
        stream.append(payload, trades)
    return list(streams.values())


def _frame_of(line: str) -> tuple[bytes, str, str, tuple[SentTrade, ...]] | None:
    raw = line.strip()
    obj = orjson.loads(raw)
    if isinstance(obj, dict) and isinstance(obj.get("raw"), str):
        raw = obj["raw"]
        obj = orjson.loads(raw)
    if not isinstance(obj, dict) or "data" not in obj:
        return None
    arg = obj.get("arg")
    if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
        raise ValueError("data frame without arg.channel")
    channel, inst_id = arg["channel"], str(arg.get("instId", ""))
    trades: tuple[SentTrade, ...] = ()
    if channel == "trades":
        trades = tuple(_sent(t) for t in obj["data"])
    # Send the recorded text itself, byte for byte.
    return raw.encode(), channel, inst_id, trades


def _sent(t: dict[str, str]) -> SentTrade:
    return SentTrade(t["instId"], t["tradeId"], t["px"], t["sz"], t["side"], int(t["ts"]))
