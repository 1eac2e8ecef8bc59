"""Where the package finds files it ships: the SQL migrations."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import TcpdError

_PACKAGE_DIR = Path(__file__).resolve().parent


def sql_dir() -> Path:
    """The migrations folder: inside the installed wheel, or sql/ beside the package in a checkout."""
    for candidate in (_PACKAGE_DIR / "sql", _PACKAGE_DIR.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise TcpdError(f"no sql/ folder next to {_PACKAGE_DIR}: reinstall the package with pip")
