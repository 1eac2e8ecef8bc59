"""`tcpd run` imports only what it runs: every module it loads stays in its memory for good.

Each check runs the real entry point, cli.main.main(), in a fresh interpreter and reads its
sys.modules; an in-process check would see whatever the other tests imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Modules `tcpd run` must not load: the other commands and the library they print with.
OTHER_COMMANDS = ("cli.candles", "cli.db", "cli.simulate", "cli.status")

# `tcpd ARGS` up to IngestService.run(), which is replaced by a stub printing sys.modules:
# argument parsing, config loading and logging setup happen as in production, nothing connects.
PROBE = """
import json, sys
import ingest.service

async def _stop_before_connecting(self):
    print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
    return 0

ingest.service.IngestService.run = _stop_before_connecting
sys.argv = ["tcpd", *sys.argv[1:]]
from cli.main import main
main()
"""


def run_probe(code: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("TCPD_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def loaded_modules(stdout: str) -> set[str]:
    lines = [line for line in stdout.splitlines() if line.startswith("MODULES ")]
    assert len(lines) == 1, f"the probe did not reach IngestService.run():\n{stdout}"
    return set(json.loads(lines[0].removeprefix("MODULES ")))


@pytest.fixture
def run_args(tmp_path: Path) -> list[str]:
    for name in ("okx.json", "database.json"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    logging = {"console_output": True, "file_output": False}
    (tmp_path / "logging.json").write_text(json.dumps(logging), encoding="utf-8")
    return [
        "run",
        "--config",
        "okx.json",
        "--database-config",
        "database.json",
        "--logging-config",
        "logging.json",
    ]


def test_tcpd_run_loads_neither_rich_nor_the_other_commands(tmp_path: Path, run_args: list[str]) -> None:
    done = run_probe(PROBE, run_args, tmp_path)
    assert done.returncode == 0, done.stderr
    modules = loaded_modules(done.stdout)
    assert {"cli.run", "ingest.service", "typer"} <= modules
    assert sorted(m for m in modules if m == "rich" or m.startswith("rich.")) == []
    assert sorted(modules.intersection(OTHER_COMMANDS)) == []


def test_importing_the_entry_point_loads_no_command(tmp_path: Path) -> None:
    code = "import json, sys, cli.main; print('MODULES ' + json.dumps(sorted(sys.modules)))"
    done = run_probe(code, [], tmp_path)
    assert done.returncode == 0, done.stderr
    modules = loaded_modules(done.stdout)
    assert "cli.main" in modules
    assert sorted(m for m in modules if m.startswith("cli.") and m != "cli.main") == []


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_tcpd_help_lists_every_command(tmp_path: Path, args: list[str]) -> None:
    done = run_probe("from cli.main import main; main()", args, tmp_path)
    # `tcpd` alone prints the help too, with exit code 2 (no_args_is_help)
    assert done.returncode == (0 if args else 2), done.stderr
    listed = set(re.findall(r"^│ (\S+)", done.stdout + done.stderr, flags=re.MULTILINE))
    assert {"run", "status", "simulate", "db", "candles"} <= listed
