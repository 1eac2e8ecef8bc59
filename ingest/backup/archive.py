"""What is inside a backup file and what it is called; retention of old files.

A backup file `tcpd-<database>-<YYYYmmddTHHMMSSZ>.tar.gpg` is, once decrypted, a tar stream:
`tcpd-backup.json` (the manifest: versions TimescaleDB needs to restore) first, then `dump/`,
pg_dump's directory-format output. Only files with this name pattern are ever pruned.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import IO

from ingest.errors import BackupError

FORMAT = 1
MANIFEST = "tcpd-backup.json"
DUMP_DIR = "dump"
SUFFIX = ".tar.gpg"
STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^tcpd-(?P<db>[A-Za-z0-9_.-]+)-(?P<stamp>\d{8}T\d{6}Z)\.tar\.gpg$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Manifest:
    """Facts about the dumped database that a restore checks before it touches the target."""

    format: int
    database: str
    created_at: str  # ISO 8601, UTC
    server_version: str
    server_major: int
    timescaledb_version: str | None
    edition: str  # "timescale" (TSL) or "apache"
    pg_dump_major: int

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            fields = json.loads(data)
            manifest = cls(**fields)
        except (ValueError, TypeError) as exc:
            raise BackupError(f"not a tcpd backup: unreadable {MANIFEST} ({exc})") from None
        if manifest.format != FORMAT:
            raise BackupError(
                f"backup format {manifest.format} is not supported by this tcpd (it reads {FORMAT})"
            )
        return manifest


def backup_name(database: str, when: datetime) -> str:
    """The file name of a backup of `database` made at `when`."""
    safe = _UNSAFE.sub("_", database) or "db"
    return f"tcpd-{safe}-{when.astimezone(UTC).strftime(STAMP)}{SUFFIX}"


def backups_of(directory: Path, database: str) -> list[Path]:
    """The backups of `database` in `directory` that tcpd named, oldest first."""
    safe = _UNSAFE.sub("_", database) or "db"
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and match["db"] == safe and path.is_file():
            found.append((match["stamp"], path))
    return [path for _, path in sorted(found)]


def prune(directory: Path, database: str, keep: int) -> list[Path]:
    """Delete the oldest backups of `database` beyond the newest `keep`; the deleted paths."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    old = backups_of(directory, database)[:-keep]
    for path in old:
        path.unlink()
    return old


def pack(sink: IO[bytes], manifest: Manifest, dump_dir: Path) -> None:
    """Write the manifest, then pg_dump's directory, to `sink` as one tar stream."""
    with tarfile.open(fileobj=sink, mode="w|") as tar:
        data = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mtime = int(datetime.now(UTC).timestamp())
        tar.addfile(info, BytesIO(data))
        tar.add(dump_dir, arcname=DUMP_DIR, recursive=True)


def unpack(source: IO[bytes], into: Path) -> Manifest:
    """Read a tar stream written by `pack`: check the manifest, extract the dump into `into`."""
    if not hasattr(tarfile, "data_filter"):
        raise BackupError("restoring needs Python 3.11.4 or newer (tarfile's safe extraction filter)")
    manifest: Manifest | None = None
    with tarfile.open(fileobj=source, mode="r|") as tar:
        for member in tar:
            if manifest is None:
                if member.name != MANIFEST or not member.isfile():
                    raise BackupError(f"not a tcpd backup: it does not start with {MANIFEST}")
                extracted = tar.extractfile(member)
                assert extracted is not None
                manifest = Manifest.from_json(extracted.read())
                continue
            if member.name != DUMP_DIR and not member.name.startswith(DUMP_DIR + "/"):
                raise BackupError(f"not a tcpd backup: unexpected member {member.name!r}")
            # "data" filter: no absolute paths, no links out of `into`, no devices
            tar.extract(member, into, filter="data")
    if manifest is None:
        raise BackupError("not a tcpd backup: the archive is empty")
    return manifest
