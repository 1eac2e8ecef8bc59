"""The `spool` section of config/database.json: where rows go when the writer's queue is full."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ingest.config.base import StrictModel

MIB = 1 << 20
GIB = 1 << 30


class SpoolSettings(StrictModel):
    """The writer's bounded local spool on disk (ingest.storage.spool; docs/spool.md)."""

    enabled: bool = True
    # Relative paths resolve from the working directory of `tcpd run` (like logs/).
    directory: Annotated[str, Field(min_length=1)] = "spool"
    max_bytes: Annotated[int, Field(ge=MIB)] = GIB
    segment_bytes: Annotated[int, Field(ge=64 * 1024)] = 4 * MIB
    fsync_interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    # How long a put waits for room in a full memory queue before it spools: a database
    # that commits keeps up within that, and its rows skip the spool's encoding.
    spill_after: Annotated[float, Field(ge=0, le=60)] = 1.0

    @model_validator(mode="after")
    def _segment_fits(self) -> SpoolSettings:
        if self.segment_bytes * 2 > self.max_bytes:
            raise ValueError(
                f"spool.segment_bytes ({self.segment_bytes}) must be at most half of "
                f"spool.max_bytes ({self.max_bytes})"
            )
        return self
