"""Fuzzing the OKX parser with 100,000 mutated real frames (hypothesis draws the seeds).

For every stream: parse_batch never raises and says exactly what parse() says frame by
frame (rows, controls, refusals, in order); every frame is stored, a control, or
dead-lettered, and every item of a data frame is stored, dead-lettered alone or (an open
candle) ignored; every stored trade is inside the documented ranges.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.exchanges.okx import OkxAdapter
from ingest.exchanges.okx.fields import MAX_MS, MIN_MS
from ingest.rows import TradeRow
from tests.okx_fuzz import account, check_trade_in_range, corpus, stream
from tests.okx_reference import parse_one_by_one

CORPUS = corpus()
OKX = OkxAdapter()
EXAMPLES = 100
FRAMES_PER_EXAMPLE = 1000  # 100 x 1000 = 100,000 frames


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**64 - 1), mutated_share=st.sampled_from([0.5, 0.9, 1.0]), store=st.booleans())
def test_mutated_frames_are_each_stored_or_dead_lettered(
    seed: int, mutated_share: float, store: bool
) -> None:
    frames = stream(random.Random(seed), CORPUS, FRAMES_PER_EXAMPLE, mutated_share)
    batch = OKX.parse_batch(frames, store)  # must not raise, whatever the bytes
    rows, controls, rejected = parse_one_by_one(OKX, frames, store)
    assert batch.rows == rows
    assert batch.controls == controls
    assert batch.rejected == rejected
    acc = account(OKX, frames, store)
    assert batch.rejected_frames == acc.frames_refused
    assert len(batch.rejected) == acc.dead_letters
    assert all(isinstance(reason, str) and reason for _, reason in batch.rejected)
    for row in batch.rows:
        if isinstance(row, TradeRow):
            check_trade_in_range(row)
        else:
            assert MIN_MS <= row.ts_ms < MAX_MS
            assert "\\u0000" not in row.data_json
            orjson.loads(row.data_json)


def test_the_mutations_reach_every_outcome() -> None:
    """A fixed stream of 20,000 frames: the mutations do reach every path the fuzz checks."""
    acc = account(OKX, stream(random.Random(0), CORPUS, 20_000, 0.9), store_raw_data=True)
    assert acc.frames == 20_000
    counts = {
        name: getattr(acc, name) for name in ("frames_refused", "controls", "items_stored", "items_refused")
    }
    assert min(counts.values()) > 500, counts
    assert acc.items_ignored > 0
    assert len({t.trade_id for t in acc.trades}) > 10


# One trade with hypothesis-made field values, between two good trades.
_GOOD = {"instId": "BTC-USDT", "px": "64000.5", "sz": "0.25", "side": "buy", "ts": "1786538760218"}
# Text without NUL (a frame carrying \u0000 is refused whole, see test_okx_parse.py) and
# without lone surrogates (no UTF-8 frame can carry one).
_VALUE = st.one_of(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30),
    st.from_regex(r"[0-9]{1,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
    st.integers(0, 5_000_000_000_000).map(str),
    st.integers(-(2**63), 2**64 - 1),  # what JSON integers orjson handles
    st.floats(),
    st.none(),
    st.booleans(),
)


@settings(max_examples=500, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(["instId", "tradeId", "px", "sz", "side", "ts"]), _VALUE))
def test_one_odd_trade_never_costs_its_neighbours(changes: dict[str, Any]) -> None:
    odd = {**_GOOD, "tradeId": "2", **changes}
    items = [{**_GOOD, "tradeId": "1"}, odd, {**_GOOD, "tradeId": "3"}]
    frame = orjson.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": items})
    result = OKX.parse(frame, store_raw_data=True)
    batch = OKX.parse_batch([frame], store_raw_data=True)
    assert batch.rejected == result.rejected
    assert [r for r in batch.rows if isinstance(r, TradeRow)] == result.trades
    ids = [t.trade_id for t in result.trades]
    assert (ids[0], ids[-1]) == ("1", "3")
    if len(ids) == 3:
        check_trade_in_range(result.trades[1])
        assert result.rejected == []
    else:
        assert len(ids) == 2
        ((raw, reason),) = result.rejected
        assert orjson.loads(raw)["data"] == [orjson.loads(orjson.dumps(odd))]
        assert reason.startswith("trades: ")
