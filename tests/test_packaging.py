"""`pip install .` (not only editable) must ship the migrations inside the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_ships_every_migration_and_the_console_script(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    (wheel,) = tmp_path.glob("tcpd_ingest-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    shipped = {Path(n).name for n in names if n.startswith("ingest/sql/")}
    on_disk = {p.name for p in (REPO / "sql").glob("*.sql")}
    assert on_disk, "sql/ has no migrations"
    assert shipped == on_disk
    assert "tcpd = cli.main:main" in scripts
    assert "cli/main.py" in names
