"""Where a collector puts its rows: anything with `async put(rows, since)` (the CopyWriter).

`since` is the monotonic time (time.monotonic) from which the rows may have been waiting
already, e.g. in the socket while reading lingered; None means "now". A writer that
batches by age counts from it, so a linger and a batch delay do not add up.

The protocol is structural, so the collector does not import the storage package; the
writer's queue gives backpressure by making put() wait while it is full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ingest.rows import Row


@runtime_checkable
class RowSink(Protocol):
    """Accepts rows; waits while its queue is full."""

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None: ...


class DiscardSink:
    """A sink that counts and forgets rows: for collectors used only through callbacks."""

    def __init__(self) -> None:
        self.rows_discarded = 0

    async def put(self, rows: Sequence[Row], since: float | None = None) -> None:
        """Count the rows and drop them."""
        self.rows_discarded += len(rows)

    def stats(self) -> dict[str, Any]:
        """Same keys as the writer's stats that health checks read."""
        return {"rows_discarded": self.rows_discarded, "queue_rows": 0, "queue_capacity": 0}
