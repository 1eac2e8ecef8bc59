"""Storage: the path from parsed rows to committed rows in TimescaleDB (COPY writer)."""

from ingest.storage.queue import QueueClosedError
from ingest.storage.status import CollectorStatusRow
from ingest.storage.writer import CopyWriter, WriterStateError

__all__ = ["CollectorStatusRow", "CopyWriter", "QueueClosedError", "WriterStateError"]
