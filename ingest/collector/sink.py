"""Where a collector puts its rows: anything with `async put(rows)` (the CopyWriter).

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

    async def put(self, rows: Sequence[Row]) -> None: ...


class DiscardSink:
    """A sink that counts and forgets rows: for collectors used only through callbacks."""

    def __init__(self) -> None:
        self.rows_discarded = 0

    async def put(self, rows: Sequence[Row]) -> None:
        """Count the rows and drop them."""
        self.rows_discarded += len(rows)

    def stats(self) -> dict[str, Any]:
        """Same keys as the writer's stats that health checks read."""
        return {"rows_discarded": self.rows_discarded, "queue_rows": 0, "queue_capacity": 0}
