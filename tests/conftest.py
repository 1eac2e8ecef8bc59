"""Test fixtures for real databases (see docs/testing.md and tests/engines.py).

Fixtures: db_dsn, migrated_db_dsn (native role), tsl_dsn, migrated_tsl_dsn (TSL role),
native_engine (start/stop/restart of the native server, for fault tests).

Environment: TCPD_TEST_DSN, TCPD_TEST_TSL_DSN (servers to use), TCPD_TEST_NATIVE_CTL and
TCPD_TEST_TSL_CTL (commands controlling those servers), TCPD_REQUIRE_TSL=1 (a TSL test that cannot run fails
the run instead of skipping), TCPD_REQUIRE_NATIVE_CONTROL=1 (same for fault tests),
TCPD_TEST_NO_DOCKER=1 (do not try testcontainers).

Where the repository's engines would serve but were never built, the session stops after
collection with the command that builds them (pytest_collection_finish).

tests/ is deliberately not a package: pytest puts it on sys.path, so `import engines` is
tests/engines.py (with a tests/__init__.py it would find the repo's engines/ folder instead).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_control import NativeControl

import engines

TSL_FIXTURES = frozenset({"tsl_dsn", "migrated_tsl_dsn"})
DB_FIXTURES = frozenset({"db_dsn", "migrated_db_dsn", "native_engine", "engine_broker"}) | TSL_FIXTURES

_broker = engines.EngineBroker()
ENGINES_NOT_BUILT = pytest.ExitCode.USAGE_ERROR  # the machine is not set up, no test ran
_skipped_tsl: list[str] = []


def _require(name: str) -> bool:
    return engines.env_flag(name)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the fixtures they use, so `-m tsl` / `-m "not db"` select them."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & TSL_FIXTURES and item.get_closest_marker("tsl") is None:
            item.add_marker(pytest.mark.tsl)
        # a TSL test needs a database too (some get theirs with request.getfixturevalue)
        needs_db = names & DB_FIXTURES or item.get_closest_marker("tsl") is not None
        if needs_db and item.get_closest_marker("db") is None:
            item.add_marker(pytest.mark.db)


def pytest_collection_finish(session: pytest.Session) -> None:
    """On a machine where the repository's engines were never built, stop at once with the
    command that builds them, instead of erroring every database test."""
    items = session.items
    # a TSL test needs only the TSL engine, which skips it when missing (unless required)
    native = any(item.get_closest_marker("db") and not item.get_closest_marker("tsl") for item in items)
    roles = ["native"] if native else []
    if _require("TCPD_REQUIRE_TSL") and any(item.get_closest_marker("tsl") for item in items):
        roles.append("tsl")
    unbuilt = _broker.unbuilt_engines(roles)
    if unbuilt:
        pytest.exit(engines.build_advice(unbuilt), returncode=ENGINES_NOT_BUILT)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember skipped TSL tests: with TCPD_REQUIRE_TSL=1 any of them fails the session."""
    if report.skipped and "tsl" in report.keywords and report.nodeid not in _skipped_tsl:
        _skipped_tsl.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop engines we started; fail the run when required TSL tests were skipped."""
    _broker.close()
    if _require("TCPD_REQUIRE_TSL") and _skipped_tsl and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which server served which role, and enforce TCPD_REQUIRE_TSL."""
    write = terminalreporter.write_line
    terminalreporter.section("database engines")
    for line in _broker.summary():
        write(line)
    if _require("TCPD_REQUIRE_TSL") and _skipped_tsl:
        write(
            f"TCPD_REQUIRE_TSL=1 but {len(_skipped_tsl)} tsl test(s) were skipped: the run FAILS",
            red=True,
            bold=True,
        )
        for nodeid in _skipped_tsl:
            write(f"  skipped: {nodeid}", red=True)


def _native() -> engines.Engine:
    try:
        return _broker.native()
    except engines.EngineUnavailable as exc:
        pytest.fail(f"no native database engine: {exc}", pytrace=False)


def _tsl() -> engines.Engine:
    try:
        return _broker.tsl()
    except engines.EngineUnavailable as exc:
        reason = f"no TimescaleDB TSL engine: {exc}"
        if _require("TCPD_REQUIRE_TSL"):
            pytest.fail(f"{reason} (TCPD_REQUIRE_TSL=1)", pytrace=False)
        pytest.skip(reason)


def _migrate(dsn: str) -> None:
    # imported late: a broken migrations module must only break the tests that migrate
    from ingest.db.migrations import migrate

    migrate(dsn)


@pytest.fixture(scope="session")
def engine_broker() -> engines.EngineBroker:
    """The session's engine broker (for tests of the fixture layer itself)."""
    return _broker


@pytest.fixture
def db_dsn() -> Iterator[str]:
    """A fresh, empty database with timescaledb on the native engine; dropped afterwards."""
    with _native().fresh_database() as dsn:
        yield dsn


@pytest.fixture
def migrated_db_dsn(db_dsn: str) -> str:
    """db_dsn after ingest.db.migrations.migrate()."""
    _migrate(db_dsn)
    return db_dsn


@pytest.fixture
def tsl_dsn() -> Iterator[str]:
    """A fresh, empty database with timescaledb's TSL edition; dropped afterwards."""
    with _tsl().fresh_database() as dsn:
        yield dsn


@pytest.fixture
def migrated_tsl_dsn(tsl_dsn: str) -> str:
    """tsl_dsn after ingest.db.migrations.migrate()."""
    _migrate(tsl_dsn)
    return tsl_dsn


@pytest.fixture
def native_engine() -> Iterator[NativeControl]:
    """Start/stop/restart the native server (fault tests); it is running again afterwards."""
    _native()
    try:
        control = _broker.native_control()
    except engines.EngineUnavailable as exc:
        if _require("TCPD_REQUIRE_NATIVE_CONTROL"):
            pytest.fail(f"{exc} (TCPD_REQUIRE_NATIVE_CONTROL=1)", pytrace=False)
        pytest.skip(str(exc))
    yield control
    control.start()
