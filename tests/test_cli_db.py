"""`tcpd db ...` through typer's CliRunner: exit codes, messages, no secrets, no tracebacks."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from ingest import paths

PASSWORD = "cli-Pa55-w0rd-xyz"
NO_ENV: dict[str, str | None] = {"TCPD_DATABASE_URL": None}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=NO_ENV)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_misspelt_key_exits_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"database": {"url": "postgresql://tcpd@127.0.0.1:1/tcpd", "pool_sise": 5}}))
    result = run("db", "status", "--config", str(bad))
    assert result.exit_code == 2
    assert "database.pool_sise" in result.stderr
    assert "did you mean 'pool_size'?" in result.stderr
    assert str(bad) in result.stderr
    assert "Traceback" not in result.output


def test_connection_refused_names_host_and_db_but_not_password(tmp_path: Path) -> None:
    port = closed_port()
    config = tmp_path / "database.json"
    config.write_text(
        json.dumps({"database": {"url": f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{port}/tcpd_live"}})
    )
    for command in ("status", "migrate", "verify"):
        result = run("db", command, "--config", str(config))
        assert result.exit_code == 1, result.output
        assert f"host=127.0.0.1 port={port} dbname=tcpd_live" in result.stderr
        assert PASSWORD not in result.output
        assert "Traceback" not in result.output


def test_password_in_env_url_never_printed() -> None:
    port = closed_port()
    url = f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{port}/tcpd_live"
    result = CliRunner().invoke(
        app,
        ["db", "migrate", "--config", str(Path(__file__).parent.parent / "config/database.json")],
        env={"TCPD_DATABASE_URL": url},
    )
    assert result.exit_code == 1
    assert f"port={port}" in result.stderr
    assert PASSWORD not in result.output


@pytest.mark.db
def test_migrate_status_verify_cycle(db_dsn: str, tmp_path: Path) -> None:
    dry = run("db", "migrate", "--dry-run", "--database-url", db_dsn)
    assert dry.exit_code == 0, dry.output
    assert "would apply 0001_core_tables.sql" in dry.stdout
    first = run("db", "migrate", "--database-url", db_dsn)
    assert first.exit_code == 0, first.output
    assert "applied 0001_core_tables.sql" in first.stdout
    again = run("db", "migrate", "--database-url", db_dsn)
    assert again.exit_code == 0
    assert "Nothing to apply" in again.stdout
    with psycopg.connect(db_dsn) as conn:
        version, ts_version = conn.execute(
            "SELECT current_setting('server_version'),"
            " (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')"
        ).fetchone() or ("", "")
    shown = run("db", "status", "--database-url", db_dsn)
    assert shown.exit_code == 0, shown.output
    assert f"PostgreSQL {version.split(' ')[0]}" in shown.stdout
    assert f"TimescaleDB {ts_version} (apache edition)" in shown.stdout
    assert "0001_core_tables.sql" in shown.stdout
    assert "applied" in shown.stdout
    ok = run("db", "verify", "--database-url", db_dsn)
    assert ok.exit_code == 0
    assert ok.stdout.startswith("OK: ")


@pytest.mark.db
def test_edited_file_makes_verify_and_migrate_fail(db_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "0001_core_tables.sql").write_bytes((paths.sql_dir() / "0001_core_tables.sql").read_bytes())
    assert run("db", "migrate", "--database-url", db_dsn, "--sql-dir", str(folder)).exit_code == 0
    with (folder / "0001_core_tables.sql").open("a") as handle:
        handle.write("-- an edit\n")
    verify = run("db", "verify", "--database-url", db_dsn, "--sql-dir", str(folder))
    assert verify.exit_code == 1
    assert "0001_core_tables.sql was edited after it was applied" in verify.stdout
    migrate = run("db", "migrate", "--database-url", db_dsn, "--sql-dir", str(folder))
    assert migrate.exit_code == 1
    assert "refusing to migrate" in migrate.stderr
    assert "0001_core_tables.sql" in migrate.stderr


@pytest.mark.tsl
def test_status_shows_tsl_edition(migrated_tsl_dsn: str) -> None:
    shown = run("db", "status", "--database-url", migrated_tsl_dsn)
    assert shown.exit_code == 0, shown.output
    assert "(timescale edition)" in shown.stdout
    with psycopg.connect(migrated_tsl_dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    assert f"PostgreSQL {row[0].split()[0]}" in shown.stdout


def test_url_alone_is_enough_without_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config/database.json here
    missing = run("db", "status")
    assert missing.exit_code == 2
    assert "config/database.json: (file): expected an existing file" in missing.stderr
    port = closed_port()
    refused = run("db", "status", "--database-url", f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{port}/solo")
    assert refused.exit_code == 1
    assert f"port={port} dbname=solo" in refused.stderr
    assert PASSWORD not in refused.output


def test_wrong_password_exits_non_zero_without_printing_it(db_dsn: str) -> None:
    """A real password check: the test engine's pg_hba asks this one role for a password."""
    role, right, wrong = "tcpd_password_check", "Right-Pa55-4-check", "Wr0ng-Pa55-never-shown"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"ALTER ROLE {role} PASSWORD '{right}'")
        info = conn.info
        host, port, dbname = info.host, info.port, info.dbname
    result = run("db", "status", "--database-url", f"postgresql://{role}:{wrong}@{host}:{port}/{dbname}")
    assert result.exit_code == 1, (
        "a wrong password was not refused: the server trusts loopback for every role; add "
        f"'host all {role} 127.0.0.1/32 scram-sha-256' before its trust line (engines/native.sh does)\n"
        + result.output
    )
    assert "password authentication failed" in result.output
    assert f"user={role}" in result.output
    assert f"dbname={dbname}" in result.output
    assert wrong not in result.output
    assert "Traceback" not in result.output


def test_password_on_the_command_line_is_warned_about_and_never_printed() -> None:
    url = f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{closed_port()}/tcpd_live"
    result = run("db", "status", "--database-url", url)
    assert result.exit_code == 1
    assert "--database-url carries a password" in result.stderr
    assert "TCPD_DATABASE_URL" in result.stderr
    assert PASSWORD not in result.output


def test_no_warning_for_the_environment_or_a_url_without_password() -> None:
    port = closed_port()
    from_env = CliRunner().invoke(
        app, ["db", "status"], env={"TCPD_DATABASE_URL": f"postgresql://tcpd:{PASSWORD}@127.0.0.1:{port}/x"}
    )
    no_password = run("db", "status", "--database-url", f"postgresql://tcpd@127.0.0.1:{port}/x")
    for result in (from_env, no_password):
        assert result.exit_code == 1
        assert f"port={port}" in result.stderr
        assert "carries a password" not in result.stderr
