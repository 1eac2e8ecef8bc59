"""The base every config model shares: strict, frozen, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen pydantic model that refuses unknown keys and does not coerce types loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
