"""tcpd db backup / restore against real servers with the real pg_dump, pg_restore and gpg.

A database with trades, market data, candles and (TSL) policies and compressed chunks is
backed up, restored into a new database on the same server, and every table, every candle
view and every job is compared. gpg, pg_dump and pg_restore are run through tiny wrappers
that record their real argv and environment, then exec the real program.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner, Result

from cli.main import app
from engines import DB_PREFIX, EngineBroker, with_dbname
from ingest.backup import archive
from tests.candles_support import (
    PAST_SPAN,
    PAST_START,
    TIMEFRAMES,
    generate_trades,
    load_trades,
    open_autocommit,
    refresh_all,
)

KEY = "backup-key-" + uuid.uuid4().hex
WRONG_KEY = "not-the-key-" + uuid.uuid4().hex
PASSWORD = "db-Pa55-" + uuid.uuid4().hex  # trust auth ignores it; it must still stay out of argv
TOOLS = ("gpg", "pg_dump", "pg_restore")


# -- helpers -------------------------------------------------------------------------------


@contextmanager
def empty_database(admin_dsn: str) -> Iterator[str]:
    """A new database with nothing in it (not even timescaledb), dropped afterwards."""
    name = f"{DB_PREFIX}restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_dbname(admin_dsn, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def recording_tools(folder: Path, log: Path) -> Path:
    """Wrappers for gpg, pg_dump and pg_restore that log argv and environment, then exec the
    real program: what the test reads is what the real processes received."""
    folder.mkdir()
    log.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is needed for this test"
        script = folder / tool
        script.write_text(
            "#!/bin/sh\n"
            f'n="{log}/{tool}.$$"\n'
            'for a in "$@"; do printf "%s\\n" "$a"; done > "$n.argv"\n'
            'env > "$n.env"\n'
            f'exec {real} "$@"\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def recorded(log: Path, suffix: str) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(log.glob(f"*.{suffix}"))}


def tcpd(*args: str, url: str, key: str | None = KEY, extra_env: dict[str, str] | None = None) -> Result:
    env: dict[str, str | None] = {
        "TCPD_DATABASE_URL": url,
        "TCPD_BACKUP_PASSPHRASE": key,
        "TCPD_PG_BINDIR": None,
    }
    env.update(extra_env or {})
    return CliRunner().invoke(app, list(args), env=env)


def backup_file(result: Result) -> Path:
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("backup written: "))
    return Path(line.removeprefix("backup written: ").rsplit(" (", 1)[0])


def user_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def contents(conn: psycopg.Connection[Any], relation: str) -> list[str]:
    """Every row of a table or view as its text form, sorted: equal lists are equal data."""
    query = sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(relation))
    return sorted(str(r[0]) for r in conn.execute(query).fetchall())


def snapshot(dsn: str) -> dict[str, Any]:
    """Everything the comparison covers: tables, candle views, jobs, chunks."""
    with open_autocommit(dsn) as conn:
        shot: dict[str, Any] = {name: contents(conn, name) for name in user_tables(conn)}
        for tf in TIMEFRAMES:
            shot[f"candles_{tf}"] = contents(conn, f"candles_{tf}")
        shot["jobs"] = conn.execute(
            "SELECT proc_name, hypertable_schema, hypertable_name, config::text, schedule_interval,"
            " scheduled FROM timescaledb_information.jobs ORDER BY 1, 2, 3, 4"
        ).fetchall()
        shot["chunks"] = conn.execute(
            "SELECT hypertable_name, range_start, range_end, is_compressed"
            " FROM timescaledb_information.chunks ORDER BY 1, 2"
        ).fetchall()
    return shot


def fill(dsn: str, *, tsl: bool) -> None:
    """Trades (raw_trades, instruments), market data rows; on TSL materialized candles and
    compressed chunks as well."""
    trades = generate_trades(random.Random(12), PAST_START, PAST_SPAN, count=1500)
    with open_autocommit(dsn) as conn:
        load_trades(conn, trades)
        for n in range(50):
            conn.execute(
                'INSERT INTO market_data (exchange, symbol, data_type, "timestamp", data, trade_id)'
                " VALUES ('okx', 'BTC-USDT', %s, %s, %s::jsonb, %s)",
                (
                    "trade" if n % 2 else "orderbook",
                    PAST_START + timedelta(seconds=n),
                    f'{{"n": {n}, "px": "{n}.5"}}',
                    str(n) if n % 2 else None,
                ),
            )
        if tsl:
            refresh_all(conn, PAST_START - timedelta(days=1), PAST_START + PAST_SPAN + timedelta(days=1))
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('raw_trades') AS c")


def assert_restored_equal(source: dict[str, Any], restored: dict[str, Any]) -> None:
    assert sorted(restored) == sorted(source)
    for name in source:
        assert restored[name] == source[name], f"{name} differs after restore"


def round_trip(src: str, admin: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """Back up `src` through the CLI, restore into a new database, return both snapshots
    and the folder of recorded tool invocations."""
    log = tmp_path / "log"
    tools = recording_tools(tmp_path / "bin", log)
    env = {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    src_with_password = make_conninfo(src, password=PASSWORD)
    made = tcpd("db", "backup", "--dir", str(tmp_path / "out"), url=src_with_password, extra_env=env)
    path = backup_file(made)
    assert KEY not in made.output
    assert PASSWORD not in made.output
    with empty_database(admin) as dst:
        done = tcpd("db", "restore", str(path), url=make_conninfo(dst, password=PASSWORD), extra_env=env)
        assert done.exit_code == 0, done.output
        assert KEY not in done.output
        assert PASSWORD not in done.output
        return snapshot(src), snapshot(dst), log


# -- tests ---------------------------------------------------------------------------------


def test_tsl_round_trip_keeps_rows_candles_policies_and_compression(
    migrated_tsl_dsn: str, engine_broker: EngineBroker, tmp_path: Path
) -> None:
    fill(migrated_tsl_dsn, tsl=True)
    source, restored, _ = round_trip(migrated_tsl_dsn, engine_broker.tsl().admin_dsn, tmp_path)
    # the comparison means something: data, candles, policies and compressed chunks exist
    assert len(source["raw_trades"]) > 1500
    assert len(source["market_data"]) == 50
    assert all(source[f"candles_{tf}"] for tf in TIMEFRAMES if tf != "1d")
    procs = {job[0] for job in source["jobs"]}
    assert {"policy_refresh_continuous_aggregate", "policy_compression"} <= procs
    assert any(chunk[3] for chunk in source["chunks"]), "no compressed chunk in the source"
    assert_restored_equal(source, restored)


def test_tsl_restored_database_is_usable(
    migrated_tsl_dsn: str, engine_broker: EngineBroker, tmp_path: Path
) -> None:
    """After timescaledb_post_restore() the copy is a normal database: not in restore mode,
    it takes new trades and refreshes candles from them."""
    fill(migrated_tsl_dsn, tsl=False)
    path = backup_file(tcpd("db", "backup", "--dir", str(tmp_path), url=migrated_tsl_dsn))
    with empty_database(engine_broker.tsl().admin_dsn) as dst:
        assert tcpd("db", "restore", str(path), url=dst).exit_code == 0
        with open_autocommit(dst) as conn:
            assert conn.execute("SHOW timescaledb.restoring").fetchone() == ("off",)
            start = datetime(2025, 1, 1, tzinfo=UTC)
            load_trades(
                conn, generate_trades(random.Random(3), start, timedelta(hours=1), count=20, first_id=10**8)
            )
            refresh_all(conn, start - timedelta(days=1), start + timedelta(days=2))
            row = conn.execute(
                "SELECT count(*) FROM candles_1m WHERE bucket_start >= %s AND bucket_start < %s",
                (start, start + timedelta(hours=1)),
            ).fetchone()
            assert row is not None
            assert row[0] > 0


def test_native_round_trip_and_no_secret_in_any_argv_or_child_environment(
    migrated_db_dsn: str, engine_broker: EngineBroker, tmp_path: Path
) -> None:
    fill(migrated_db_dsn, tsl=False)
    source, restored, log = round_trip(migrated_db_dsn, engine_broker.native().admin_dsn, tmp_path)
    assert len(source["raw_trades"]) > 1500
    assert any(source[f"candles_{tf}"] for tf in TIMEFRAMES)
    assert_restored_equal(source, restored)

    argvs, envs = recorded(log, "argv"), recorded(log, "env")
    ran = {name.split(".")[0] for name in argvs}
    assert ran == set(TOOLS), f"expected every tool to run, ran {sorted(ran)}"
    for name, argv in argvs.items():
        assert KEY not in argv, f"the backup key is in the argv of {name}"
        assert PASSWORD not in argv, f"the database password is in the argv of {name}"
    for name, env in envs.items():
        assert KEY not in env, f"the backup key is in the environment of {name}"
        if name.startswith("gpg"):
            assert PASSWORD not in env, f"the database password is in the environment of {name}"
    # the password does reach pg_dump / pg_restore, through the environment
    assert any(f"PGPASSWORD={PASSWORD}" in env for name, env in envs.items() if name.startswith("pg_dump"))
    encrypt = next(argv for name, argv in argvs.items() if name.startswith("gpg") and "--symmetric" in argv)
    assert "--passphrase-fd" in encrypt
    assert "AES256" in encrypt


def test_wrong_key_fails_clearly_and_restores_nothing(
    migrated_db_dsn: str, engine_broker: EngineBroker, tmp_path: Path
) -> None:
    path = backup_file(tcpd("db", "backup", "--dir", str(tmp_path), url=migrated_db_dsn))
    foreign = tmp_path / "tcpd-foreign-20250101T000000Z.tar.gpg"
    foreign.write_bytes(b"PGDMP not encrypted at all\n" * 100)
    with empty_database(engine_broker.native().admin_dsn) as dst:
        for file in (path, foreign):
            result = tcpd("db", "restore", str(file), url=dst, key=WRONG_KEY)
            assert result.exit_code == 1, result.output
            errors = result.stderr.strip().splitlines()
            assert len(errors) == 1, result.stderr
            assert "wrong backup key or not a tcpd backup" in errors[0]
            assert file.name in errors[0]
            assert "TCPD_BACKUP_PASSPHRASE" in errors[0]
            assert "Traceback" not in result.output
            assert WRONG_KEY not in result.output
            assert KEY not in result.output
        with open_autocommit(dst) as conn:
            assert user_tables(conn) == [], "a failed decryption must not touch the target"


def test_missing_key_is_a_config_error(tmp_path: Path) -> None:
    result = tcpd("db", "backup", "--dir", str(tmp_path), url="postgresql://x@127.0.0.1:1/x", key=None)
    assert result.exit_code == 2
    assert "TCPD_BACKUP_PASSPHRASE is not set" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_keep_prunes_only_this_databases_older_backups(migrated_db_dsn: str, tmp_path: Path) -> None:
    with open_autocommit(migrated_db_dsn) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        database = str(row[0])
    old = [tmp_path / archive.backup_name(database, datetime(2024, 1, d, tzinfo=UTC)) for d in (1, 2, 3)]
    other = tmp_path / archive.backup_name("someother", datetime(2023, 1, 1, tzinfo=UTC))
    notes = tmp_path / "notes.txt"
    for path in [*old, other, notes]:
        path.write_bytes(b"x")
    result = tcpd("db", "backup", "--dir", str(tmp_path), "--keep", "2", url=migrated_db_dsn)
    new = backup_file(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [old[2].name, new.name, other.name, notes.name]
    )
    assert f"removed old backup: {old[0]}" in result.stdout
    assert stat.S_IMODE(new.stat().st_mode) == 0o600


def test_restore_refuses_a_database_that_is_not_empty(migrated_db_dsn: str, tmp_path: Path) -> None:
    path = backup_file(tcpd("db", "backup", "--dir", str(tmp_path), url=migrated_db_dsn))
    result = tcpd("db", "restore", str(path), url=migrated_db_dsn)
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
    assert "restore into a new database" in result.stderr


def test_pg_dump_older_than_the_server_is_refused(migrated_db_dsn: str, tmp_path: Path) -> None:
    bindir = tmp_path / "old"
    bindir.mkdir()
    fake = bindir / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(0o755)
    result = tcpd(
        "db", "backup", "--dir", str(tmp_path / "out"), "--pg-bindir", str(bindir), url=migrated_db_dsn
    )
    assert result.exit_code == 1
    assert "PostgreSQL 9, older than the server" in result.stderr
    assert "postgresql-client-" in result.stderr
    assert not list((tmp_path / "out").glob("*.gpg"))


def test_prune_and_names_without_a_database(tmp_path: Path) -> None:
    stamps = [datetime(2025, 5, d, 3, 4, 5, tzinfo=UTC) for d in (3, 1, 2)]
    for when in stamps:
        (tmp_path / archive.backup_name("tcpd", when)).write_bytes(b"")
    (tmp_path / "tcpd-tcpd-latest.tar.gpg").write_bytes(b"")  # not a name tcpd gives: kept
    removed = archive.prune(tmp_path, "tcpd", 1)
    assert [p.name for p in removed] == [
        "tcpd-tcpd-20250501T030405Z.tar.gpg",
        "tcpd-tcpd-20250502T030405Z.tar.gpg",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tcpd-tcpd-20250503T030405Z.tar.gpg",
        "tcpd-tcpd-latest.tar.gpg",
    ]
    assert archive.backup_name("my db/../x", stamps[0]) == "tcpd-my_db_.._x-20250503T030405Z.tar.gpg"


def test_restore_into_a_database_that_has_the_extension_already(
    migrated_db_dsn: str, engine_broker: EngineBroker, tmp_path: Path
) -> None:
    """An operator may create the extension first (a managed server): that is still empty."""
    fill(migrated_db_dsn, tsl=False)
    path = backup_file(tcpd("db", "backup", "--dir", str(tmp_path), url=migrated_db_dsn))
    with engine_broker.native().fresh_database() as dst:
        with open_autocommit(dst) as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone() == (1,)
        done = tcpd("db", "restore", str(path), url=dst)
        assert done.exit_code == 0, done.output
        with open_autocommit(dst) as new, open_autocommit(migrated_db_dsn) as old:
            assert contents(new, "raw_trades") == contents(old, "raw_trades")
