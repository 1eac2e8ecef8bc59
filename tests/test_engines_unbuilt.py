"""A machine without Docker, TCPD_TEST_DSN or built engines: pytest stops at once and says how to
build them, instead of erroring every database test (tests/conftest.py, engines/cluster.sh check).

"Not built" is simulated without touching the machine's installation: engines/native.sh looks
for its build under DESTDIR and engines/tsl.sh under TCPD_TSL_PREFIX, both pointed at empty
directories here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# one module with a plain test, a native database test and TSL tests
MODULE = "tests/test_candles_cli.py"
# Collecting the module is all that runs before the stop: seconds on an idle machine; the bound
# leaves room for a busy one (an unbuilt run without the stop would error, not time out).
QUICK = 60.0


def fresh_machine_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCPD_")}
    (tmp_path / "no-native").mkdir()
    (tmp_path / "no-tsl").mkdir()
    env.update(
        TCPD_TEST_NO_DOCKER="1",  # as if no Docker engine answered
        DESTDIR=str(tmp_path / "no-native"),
        TCPD_TSL_PREFIX=str(tmp_path / "no-tsl"),
        **extra,
    )
    return env


def run_pytest(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", MODULE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, time.monotonic() - started


def test_check_says_what_to_run_when_the_engine_is_not_built(tmp_path: Path) -> None:
    env = fresh_machine_env(tmp_path)
    for script in ("native.sh", "tsl.sh"):
        done = subprocess.run(
            [str(REPO / "engines" / script), "check"], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 1
        assert f"run 'engines/{script} build' once" in done.stdout


def test_database_tests_stop_the_run_at_once_with_the_build_command(tmp_path: Path) -> None:
    done, seconds = run_pytest(fresh_machine_env(tmp_path))
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert seconds < QUICK, output
    assert "run `engines/native.sh build` once" in output
    assert "tsl.sh build" not in output  # TSL tests skip without their engine unless required
    assert "no tests ran" in output
    assert " passed" not in output
    assert " error" not in output


def test_required_tsl_tests_name_both_builds(tmp_path: Path) -> None:
    done, seconds = run_pytest(fresh_machine_env(tmp_path, TCPD_REQUIRE_TSL="1"))
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert seconds < QUICK, output
    assert "run `engines/native.sh build && engines/tsl.sh build` once" in output


def test_tests_without_a_database_still_run(tmp_path: Path) -> None:
    done, _ = run_pytest(fresh_machine_env(tmp_path), "-m", "not db")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output
