"""The migration runner against real servers: ledger, checksums, variants, lock, failures."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest import paths
from ingest.db.migrations import LOCK_KEY, migrate, status, verify
from ingest.errors import MigrationError

pytestmark = pytest.mark.db


def query(dsn: str, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        return conn.execute(text.encode(), params or None).fetchall()


def exists(dsn: str, relation: str) -> bool:
    return bool(query(dsn, "SELECT to_regclass(%s) IS NOT NULL", (relation,))[0][0])


def ledger(dsn: str) -> list[tuple[Any, ...]]:
    if not exists(dsn, "public.tcpd_schema_migrations"):
        return []
    return query(dsn, "SELECT version, file, checksum, edition FROM tcpd_schema_migrations ORDER BY version")


def sql_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "sql"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def license_of(dsn: str) -> str:
    return str(query(dsn, "SELECT current_setting('timescaledb.license')")[0][0])


def expected_files(edition: str) -> list[str]:
    """What the real sql/ should apply on an edition, worked out from the file names."""
    folder = paths.sql_dir()
    mains = sorted(p.name for p in folder.glob("*.sql") if not p.name.endswith(".apache.sql"))
    if edition != "apache":
        return mains
    return [m[:-4] + ".apache.sql" if (folder / (m[:-4] + ".apache.sql")).exists() else m for m in mains]


def check_full_migration(dsn: str) -> None:
    edition = license_of(dsn)
    applied = migrate(dsn)
    assert applied == expected_files(edition)
    rows = ledger(dsn)
    assert [row[1] for row in rows] == applied
    for version, file, checksum, row_edition in rows:
        data = (paths.sql_dir() / file).read_bytes()
        assert checksum == hashlib.sha256(data).hexdigest()
        assert row_edition == edition
        assert file.startswith(f"{version:04d}_")
    hypertables = {
        r[0] for r in query(dsn, "SELECT hypertable_name FROM timescaledb_information.hypertables")
    }
    assert {"raw_trades", "market_data"} <= hypertables
    assert exists(dsn, "collector_status")
    assert exists(dsn, "dead_letters")
    assert migrate(dsn) == []
    assert len(ledger(dsn)) == len(rows)
    assert verify(dsn).ok


def test_migrate_native_applies_everything_once(db_dsn: str) -> None:
    check_full_migration(db_dsn)


@pytest.mark.tsl
def test_migrate_tsl_applies_everything_once(tsl_dsn: str) -> None:
    check_full_migration(tsl_dsn)


def test_dry_run_changes_nothing(db_dsn: str) -> None:
    would = migrate(db_dsn, dry_run=True)
    assert would == expected_files("apache")
    assert not exists(db_dsn, "public.tcpd_schema_migrations")
    assert not exists(db_dsn, "raw_trades")


def test_core_tables_take_spec_rows(migrated_db_dsn: str) -> None:
    query(
        migrated_db_dsn,
        'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")'
        " VALUES ('okx', 'BTC-USDT', '1', '97000.123456789012', '0.000000001', 'buy', '2026-01-01T00:00:00Z')"
        " RETURNING id",
    )
    price, size = query(migrated_db_dsn, "SELECT price::text, size::text FROM raw_trades")[0]
    assert (price, size) == ("97000.123456789012", "0.000000001")
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(
            migrated_db_dsn,
            'INSERT INTO raw_trades (exchange, symbol, trade_id, price, size, side, "timestamp")'
            " VALUES ('okx', 'BTC-USDT', '1', 1, 1, 'buy', '2026-01-01T00:00:00Z')",
        )


def test_edited_applied_file_refused_by_migrate_and_verify(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(tmp_path, {"0001_first.sql": "CREATE TABLE first_t (x int);\n"})
    assert migrate(db_dsn, sql_dir=folder) == ["0001_first.sql"]
    (folder / "0001_first.sql").write_text("CREATE TABLE first_t (x bigint);\n")
    (folder / "0002_second.sql").write_text("CREATE TABLE second_t (x int);\n")
    with pytest.raises(MigrationError, match=r"0001_first\.sql was edited after it was applied"):
        migrate(db_dsn, sql_dir=folder)
    assert not exists(db_dsn, "second_t")
    report = verify(db_dsn, sql_dir=folder)
    assert not report.ok
    assert len(report.problems) == 1
    assert "0001_first.sql" in report.problems[0]


def test_applied_file_missing_on_disk_refused(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(tmp_path, {"0001_first.sql": "CREATE TABLE first_t (x int);\n"})
    migrate(db_dsn, sql_dir=folder)
    (folder / "0001_first.sql").unlink()
    (folder / "0002_second.sql").write_text("CREATE TABLE second_t (x int);\n")
    with pytest.raises(MigrationError, match=r"0001_first\.sql was applied .* missing"):
        migrate(db_dsn, sql_dir=folder)
    assert not exists(db_dsn, "second_t")


def test_new_file_below_latest_applied_refused(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(
        tmp_path, {"0001_a.sql": "CREATE TABLE a (x int);\n", "0010_c.sql": "CREATE TABLE c (x int);\n"}
    )
    assert migrate(db_dsn, sql_dir=folder) == ["0001_a.sql", "0010_c.sql"]
    (folder / "0005_b.sql").write_text("CREATE TABLE b (x int);\n")
    with pytest.raises(MigrationError, match=r"0005_b\.sql is new but numbered below .*0010"):
        migrate(db_dsn, sql_dir=folder)
    assert not exists(db_dsn, "b")
    assert status(db_dsn, sql_dir=folder).problems


PICK = {
    "0001_pick.sql": "CREATE TABLE picked_main (x int);\n",
    "0001_pick.apache.sql": "CREATE TABLE picked_apache (x int);\n",
}


def test_apache_variant_applied_on_apache(db_dsn: str, tmp_path: Path) -> None:
    assert license_of(db_dsn) == "apache"
    assert migrate(db_dsn, sql_dir=sql_folder(tmp_path, PICK)) == ["0001_pick.apache.sql"]
    assert exists(db_dsn, "picked_apache")
    assert not exists(db_dsn, "picked_main")
    assert ledger(db_dsn)[0][1:] == (
        "0001_pick.apache.sql",
        hashlib.sha256(PICK["0001_pick.apache.sql"].encode()).hexdigest(),
        "apache",
    )


@pytest.mark.tsl
def test_main_file_applied_on_tsl(tsl_dsn: str, tmp_path: Path) -> None:
    assert migrate(tsl_dsn, sql_dir=sql_folder(tmp_path, PICK)) == ["0001_pick.sql"]
    assert exists(tsl_dsn, "picked_main")
    assert not exists(tsl_dsn, "picked_apache")
    assert ledger(tsl_dsn)[0][3] == "timescale"


def test_requires_tsl_refused_on_apache_before_anything_runs(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(
        tmp_path,
        {
            "0001_a.sql": "CREATE TABLE a (x int);\n",
            "0002_tsl_only.sql": "-- tcpd:requires-tsl\nCREATE TABLE b (x int);\n",
        },
    )
    with pytest.raises(MigrationError, match=r"0002_tsl_only\.sql needs TimescaleDB's TSL edition"):
        migrate(db_dsn, sql_dir=folder)
    assert not exists(db_dsn, "a")


def test_no_transaction_file_runs_statement_by_statement(db_dsn: str, tmp_path: Path) -> None:
    body = (
        "CREATE TABLE t (x int);\n"
        "-- a comment; with a semicolon\n"
        "CREATE INDEX CONCURRENTLY t_x_idx ON t (x);\n"
    )
    plain = sql_folder(tmp_path, {"0001_idx.sql": body})
    with pytest.raises(MigrationError, match=r"0001_idx\.sql failed.*rolled back.*CONCURRENTLY"):
        migrate(db_dsn, sql_dir=plain)
    assert not exists(db_dsn, "t")
    (plain / "0001_idx.sql").write_text("-- tcpd:no-transaction\n" + body)
    assert migrate(db_dsn, sql_dir=plain) == ["0001_idx.sql"]
    assert exists(db_dsn, "t_x_idx")


def test_failed_migration_rolls_back_and_names_file_and_line(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(
        tmp_path, {"0001_bad.sql": "CREATE TABLE ok_t (x int);\n\nSELECT * FROM no_such_table;\n"}
    )
    with pytest.raises(MigrationError, match=r"0001_bad\.sql failed near line 3 and was rolled back") as info:
        migrate(db_dsn, sql_dir=folder)
    assert "no_such_table" in str(info.value)
    assert not exists(db_dsn, "ok_t")
    assert ledger(db_dsn) == []


def test_concurrent_migrators_apply_once(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(tmp_path, {"0001_slow.sql": "CREATE TABLE slow_t (x int);\nSELECT pg_sleep(0.5);\n"})
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrate(db_dsn, sql_dir=folder))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [[], ["0001_slow.sql"]]
    assert [row[1] for row in ledger(db_dsn)] == ["0001_slow.sql"]


def test_lock_held_elsewhere_times_out_with_clear_error(db_dsn: str, tmp_path: Path) -> None:
    folder = sql_folder(tmp_path, {"0001_a.sql": "CREATE TABLE a (x int);\n"})
    with psycopg.connect(db_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(MigrationError, match="another migrator"):
            migrate(db_dsn, sql_dir=folder, lock_wait=0.3)
    assert migrate(db_dsn, sql_dir=folder) == ["0001_a.sql"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"001_short.sql": ""}, "named NNNN_snake_name.sql"),
        ({"0001_CamelCase.sql": ""}, "named NNNN_snake_name.sql"),
        ({"0001_a.sql": "", "0001_b.sql": ""}, "share version 0001"),
        ({"0002_only.apache.sql": ""}, "apache variant without 0002_only.sql"),
        ({"0001_a.sql": "-- tcpd:no-transacton\nSELECT 1;\n"}, "unknown header"),
    ],
)
def test_bad_folder_refused_before_connecting(tmp_path: Path, files: dict[str, str], message: str) -> None:
    folder = sql_folder(tmp_path, files)
    with pytest.raises(MigrationError, match=message):
        migrate("host=127.0.0.1 port=1 dbname=unused", sql_dir=folder)


def test_status_reports_server_facts(migrated_db_dsn: str) -> None:
    report = status(migrated_db_dsn)
    version, ts_version = query(
        migrated_db_dsn,
        "SELECT current_setting('server_version'),"
        " (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')",
    )[0]
    assert report.server_version == version.split(" ")[0]
    assert report.timescaledb_version == ts_version
    assert report.edition == "apache"
    assert [row.file for row in report.applied] == expected_files("apache")
    assert report.pending == []
    assert report.problems == []


def test_real_sql_folder_copy_detects_edit(db_dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(paths.sql_dir(), folder)
    migrate(db_dsn, sql_dir=folder)
    target = folder / "0001_core_tables.sql"
    target.write_bytes(target.read_bytes() + b"\n-- harmless looking edit\n")
    report = verify(db_dsn, sql_dir=folder)
    assert not report.ok
    assert any("0001_core_tables.sql was edited" in p for p in report.problems)


@pytest.mark.tsl
def test_no_transaction_file_can_refresh_a_continuous_aggregate(tsl_dsn: str, tmp_path: Path) -> None:
    setup = (
        "CREATE TABLE ticks (ts timestamptz NOT NULL, v int NOT NULL);\n"
        "SELECT create_hypertable('ticks', by_range('ts', INTERVAL '1 day'));\n"
        "INSERT INTO ticks VALUES ('2026-01-01T00:10:00Z', 1), ('2026-01-01T00:20:00Z', 2);\n"
        "CREATE MATERIALIZED VIEW ticks_hourly\n"
        "WITH (timescaledb.continuous, timescaledb.materialized_only = TRUE) AS\n"
        "SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket, sum(v) AS total FROM ticks GROUP BY 1\n"
        "WITH NO DATA;\n"
    )
    refresh = "-- tcpd:no-transaction\nCALL refresh_continuous_aggregate('ticks_hourly', NULL, NULL);\n"
    folder = sql_folder(tmp_path, {"0001_setup.sql": setup, "0002_refresh.sql": "SELECT 1;\n" + refresh})
    # Inside a transaction the refresh is refused ...
    with pytest.raises(MigrationError, match=r"0002_refresh\.sql failed"):
        migrate(tsl_dsn, sql_dir=folder)
    assert query(tsl_dsn, "SELECT count(*) FROM ticks_hourly") == [(0,)]
    # ... outside one it runs, and the aggregate is materialized.
    (folder / "0002_refresh.sql").write_text(refresh)
    assert migrate(tsl_dsn, sql_dir=folder) == ["0002_refresh.sql"]
    assert query(tsl_dsn, "SELECT total FROM ticks_hourly") == [(3,)]
