"""Keep CPython's cyclic garbage collector off the collector's hot path.

Reference counting frees what the hot path makes (frames, parsed dicts, rows, batches: no
reference cycles, tests/test_gc_policy.py checks it). The cyclic collector still runs every
700 container allocations by default, and its older generations are traversed whole: the
writer queue holds up to queue_max_rows rows (tuple subclasses stay tracked), plus everything
imported and built at start-up. At 10 trades per message that was ~20 % of the collector's
CPU (py-spy); with the settings below the collector's CPU per trade fell from ~3.9 to ~3.0 µs
(docs/performance.md). Cycles made elsewhere (exceptions, asyncio internals) are still
collected, only less often.
"""

from __future__ import annotations

import gc

# Allocations between young collections, young collections per middle one, middle per full.
THRESHOLDS = (50_000, 20, 100)


def keep_gc_off_the_hot_path() -> None:
    """Freeze what exists now out of all future collections and collect far less often.

    Call once in a long-running process, after start-up (imports, config) and before the
    hot path starts.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
