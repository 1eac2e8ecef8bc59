"""What a one-collector `tcpd run` keeps in memory before it connects (the spec's < 50 MB per
collector; benchmarks/rss_baseline.py measures it).

The HTTP client (httpcore, h11, anyio, certifi: ~1.5 MB) is needed only once the gap filler
and the instrument loaders start, inside IngestService.start(); the modules imported before
it must not bring it. Import checks run in a fresh interpreter, as in tests/test_cli_imports.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cli.run
from cli.main import build_app
from tests import test_cli_imports
from tests.test_cli_imports import PROBE, loaded_modules, run_probe

run_args = test_cli_imports.run_args  # the same fixture: tcpd run's arguments with config/okx.json

HTTP_CLIENT = ("httpcore", "h11", "anyio", "certifi")

# ingest/instruments/__init__.py re-exports InstrumentRefresher, whose module imports the HTTP
# client; the exchange registry imports the package for its model. With that re-export made
# lazy, nothing else before IngestService.start() may import the HTTP client: this probe stands
# the package in without running its __init__, then imports what `tcpd run` imports.
WITHOUT_PACKAGE_INIT = """
import json, os, sys, types
import ingest
package = types.ModuleType("ingest.instruments")
package.__path__ = [os.path.join(os.path.dirname(ingest.__file__), "instruments")]
sys.modules["ingest.instruments"] = package
import cli.run, ingest.history.from_config, ingest.history.gapfill, ingest.history.walk, ingest.service
print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
"""


def http_client_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HTTP_CLIENT)


def test_gap_filler_and_service_modules_do_not_import_the_http_client(tmp_path: Path) -> None:
    done = run_probe(WITHOUT_PACKAGE_INIT, [], tmp_path)
    assert done.returncode == 0, done.stderr
    modules = loaded_modules(done.stdout)
    assert {"ingest.service", "ingest.history.gapfill", "ingest.instruments.model"} <= modules
    assert http_client_modules(modules) == []
    assert "ingest.instruments.http" not in modules
    assert "ingest.instruments.refresher" not in modules


def test_tcpd_run_loads_no_http_client_before_connecting(tmp_path: Path, run_args: list[str]) -> None:
    done = run_probe(PROBE, run_args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert http_client_modules(loaded_modules(done.stdout)) == []


def test_tcpd_run_returns_the_freed_heap_after_loading_the_configs(
    tmp_path: Path, run_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []

    async def serve(database: Any, exchanges: list[Any]) -> int:
        events.append(f"serve {len(exchanges)} exchange file(s)")
        return 0

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.run, "release_freed_heap", lambda: events.append("release"))
    monkeypatch.setattr(cli.run, "_serve", serve)
    result = CliRunner().invoke(build_app(["run"]), run_args)
    assert result.exit_code == 0, result.output
    assert events == ["release", "serve 1 exchange file(s)"]


def test_release_freed_heap_runs_anywhere() -> None:
    cli.run.release_freed_heap()  # glibc: malloc_trim(0); elsewhere nothing, and no error
