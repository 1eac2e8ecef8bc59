"""Dead-letter retention (sql/0107): tcpd_prune_dead_letters on both editions, and the
service pruning at start with the configured retention_days."""

from __future__ import annotations

import psycopg
import pydantic
import pytest

from ingest.config import DatabaseFile
from ingest.service import IngestService
from ingest.storage.dead_letter_retention import DeadLetterRetention
from tests.collector_support import btc_trades_config, simulator, wait_for

AGES_DAYS = (0, 1, 29, 31, 45, 400)


def _insert_letters(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        for days in AGES_DAYS:
            conn.execute(
                "INSERT INTO dead_letters (exchange, received_at, reason, raw_text) "
                "VALUES ('okx', now() - make_interval(days => %s), %s, 'x')",
                (days, f"{days} days old"),
            )


def _reasons(dsn: str) -> list[str]:
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        rows = conn.execute("SELECT reason FROM dead_letters ORDER BY received_at DESC").fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    "engine", [pytest.param("native", marks=pytest.mark.db), pytest.param("tsl", marks=pytest.mark.tsl)]
)
async def test_prune_deletes_only_dead_letters_older_than_the_retention(
    engine: str, request: pytest.FixtureRequest
) -> None:
    dsn = request.getfixturevalue("migrated_db_dsn" if engine == "native" else "migrated_tsl_dsn")
    _insert_letters(dsn)
    retention = DeadLetterRetention(dsn, "dead_letters", days=30)
    assert await retention.prune_once() == 3
    assert _reasons(dsn) == ["0 days old", "1 days old", "29 days old"]
    assert await retention.prune_once() == 0
    assert (retention.deleted, retention.runs) == (3, 2)


def test_prune_refuses_a_retention_that_is_not_positive(migrated_db_dsn: str) -> None:
    with psycopg.connect(migrated_db_dsn, autocommit=True, prepare_threshold=None) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="must be a positive interval"):
            conn.execute("SELECT tcpd_prune_dead_letters(INTERVAL '0 days')")
        assert conn.execute("SELECT tcpd_prune_dead_letters(INTERVAL '1 day')").fetchone() == (0,)


async def test_the_service_prunes_with_the_configured_retention_at_start(migrated_db_dsn: str) -> None:
    _insert_letters(migrated_db_dsn)
    async with simulator(total=10) as sim:
        database = DatabaseFile.model_validate(
            {
                "database": {"url": migrated_db_dsn},
                "dead_letters": {"retention_days": 7},
                "http": {"listen": None},
            }
        )
        exchange = btc_trades_config(sim)
        service = IngestService(database, [exchange])
        await service.start()
        try:
            await wait_for(lambda: service.dead_letter_retention.runs >= 1, what="the first prune")
        finally:
            assert await service.stop()
    assert service.dead_letter_retention.deleted == 4
    assert _reasons(migrated_db_dsn) == ["0 days old", "1 days old"]


def test_retention_days_must_be_positive() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"dead_letters\.retention_days"):
        DatabaseFile.model_validate({"database": {"url": "host=x"}, "dead_letters": {"retention_days": 0}})
    assert DatabaseFile.model_validate({"database": {"url": "host=x"}}).dead_letters.retention_days == 30
