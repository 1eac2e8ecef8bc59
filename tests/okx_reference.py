"""parse_batch's reference: what OkxAdapter.parse() says frame by frame, in parse_batch's shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.errors import FrameError
from ingest.exchanges.okx import OkxAdapter


def parse_one_by_one(
    okx: OkxAdapter, frames: Sequence[str | bytes], store: bool
) -> tuple[list[Any], list[Any], list[Any]]:
    """(rows, controls, rejected) as parse_batch would return them for `frames`."""
    rows: list[Any] = []
    controls: list[Any] = []
    rejected: list[Any] = []
    for frame in frames:
        try:
            result = okx.parse(frame, store)
        except FrameError as exc:
            rejected.append((frame, exc.reason))
            continue
        # parse_batch keeps each trade's market_data copy right after the trade.
        market = iter(result.market)
        for trade in result.trades:
            rows.append(trade)
            if store:
                rows.append(next(market))
        rows += list(market)
        rejected += result.rejected
        if result.control is not None:
            controls.append(result.control)
    return rows, controls, rejected
