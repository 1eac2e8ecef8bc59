"""CollectorManager: starts, stops and reports a set of collectors as one unit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ingest.collector.base import BaseDataCollector
from ingest.errors import ConfigError

logger = logging.getLogger(__name__)


class CollectorManager:
    """Holds collectors by name; start/stop run them concurrently."""

    def __init__(self) -> None:
        self._collectors: dict[str, BaseDataCollector] = {}

    def add_collector(self, collector: BaseDataCollector) -> None:
        """Register a collector; names must be unique (ConfigError otherwise)."""
        if collector.name in self._collectors:
            raise ConfigError(
                f"two collectors are named {collector.name!r}: each trading pair may appear once per exchange"
            )
        self._collectors[collector.name] = collector

    def list_collectors(self) -> list[str]:
        """Names of the registered collectors, in the order they were added."""
        return list(self._collectors)

    def collectors(self) -> list[BaseDataCollector]:
        """The registered collectors, in the order they were added."""
        return list(self._collectors.values())

    async def start(self) -> bool:
        """Start every collector; True only if all of them started."""
        results = await asyncio.gather(*(c.start() for c in self._collectors.values()))
        started = sum(results)
        logger.info("started %d of %d collector(s)", started, len(results))
        return all(results)

    async def stop(self) -> None:
        """Stop every collector (each one closes gracefully, with its own timeouts)."""
        await asyncio.gather(*(c.stop() for c in self._collectors.values()))
        logger.info("stopped %d collector(s)", len(self._collectors))

    def get_status(self) -> dict[str, Any]:
        """Totals plus every collector's status dictionary, keyed by collector name."""
        statuses = {name: c.get_status() for name, c in self._collectors.items()}
        return {
            "total_collectors": len(statuses),
            "running_collectors": sum(1 for s in statuses.values() if s["status"] == "running"),
            "collectors": statuses,
        }
