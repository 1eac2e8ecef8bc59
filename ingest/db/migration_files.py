"""Migration files in sql/: names, variants, header directives, checksums.

    NNNN_snake_name.sql          the migration (both editions unless an apache variant exists)
    NNNN_snake_name.apache.sql   optional variant applied when the server's license is apache

Header lines (comment lines before the first statement):
    -- tcpd:no-transaction       run statement by statement outside a transaction
    -- tcpd:requires-tsl         refuse on the apache edition when there is no apache variant
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.db.edition import Edition
from ingest.errors import MigrationError

FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)(?P<apache>\.apache)?\.sql$")
DIRECTIVE = re.compile(r"^--\s*tcpd:(?P<word>\S+)\s*$")
KNOWN_DIRECTIVES = frozenset({"no-transaction", "requires-tsl"})


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """One file on disk: its bytes' sha256 and its header directives."""

    path: Path
    checksum: str
    directives: frozenset[str]

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def transactional(self) -> bool:
        return "no-transaction" not in self.directives

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class Migration:
    """One logical schema change: a version, a name, a main file and maybe an apache variant."""

    version: int
    name: str
    main: MigrationFile
    apache: MigrationFile | None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def file_for(self, edition: Edition) -> MigrationFile:
        """The file to apply on `edition`; MigrationError if it needs TSL the server lacks."""
        if edition == "apache" and self.apache is not None:
            return self.apache
        if edition == "apache" and "requires-tsl" in self.main.directives:
            raise MigrationError(
                f"{self.main.file_name} needs TimescaleDB's TSL edition (header '-- tcpd:requires-tsl') "
                f"and this server runs the apache edition: add {self.label}.apache.sql "
                "or migrate a server with the TSL (timescale) license"
            )
        return self.main


def _directives(path: Path, data: bytes) -> frozenset[str]:
    words: set[str] = set()
    for raw in data.decode("utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        word = match.group("word")
        if word not in KNOWN_DIRECTIVES:
            raise MigrationError(
                f"{path.name}: unknown header '-- tcpd:{word}'; known: {', '.join(sorted(KNOWN_DIRECTIVES))}"
            )
        words.add(word)
    return frozenset(words)


def load_file(path: Path) -> MigrationFile:
    """Read one file's checksum and directives."""
    data = path.read_bytes()
    try:
        directives = _directives(path, data)
    except UnicodeDecodeError:
        raise MigrationError(f"{path.name}: not UTF-8 text") from None
    return MigrationFile(path=path, checksum=hashlib.sha256(data).hexdigest(), directives=directives)


def discover(sql_dir: Path) -> list[Migration]:
    """Every migration in `sql_dir`, by version; MigrationError on a bad name or a clash."""
    if not sql_dir.is_dir():
        raise MigrationError(f"migrations folder {sql_dir} does not exist")
    mains: dict[int, tuple[str, Path]] = {}
    variants: dict[int, tuple[str, Path]] = {}
    for path in sorted(sql_dir.iterdir()):
        if path.suffix != ".sql":
            continue
        match = FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named NNNN_snake_name.sql "
                "(or NNNN_snake_name.apache.sql); rename it"
            )
        version, name = int(match.group("version")), match.group("name")
        table = variants if match.group("apache") else mains
        if version in table:
            raise MigrationError(f"{path.name} and {table[version][1].name} share version {version:04d}")
        table[version] = (name, path)
    for version, (name, path) in variants.items():
        if version not in mains:
            raise MigrationError(f"{path.name} is an apache variant without {version:04d}_{name}.sql")
        if mains[version][0] != name:
            raise MigrationError(f"{path.name} does not match {mains[version][1].name}: use the same name")
    return [
        Migration(
            version=version,
            name=name,
            main=load_file(path),
            apache=load_file(variants[version][1]) if version in variants else None,
        )
        for version, (name, path) in sorted(mains.items())
    ]
