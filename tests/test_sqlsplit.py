"""Statement splitting for no-transaction migrations."""

from __future__ import annotations

import pytest

from ingest.db.sqlsplit import split_statements


def test_splits_on_semicolons_outside_quotes_and_comments() -> None:
    script = (
        "-- header; still a comment\n"
        "SELECT ';' AS a, 'it''s;' AS b;\n"
        'SELECT 1 AS "odd;name";\n'
        "/* block; /* nested; */ still; */ SELECT 2;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n"
        "SELECT $$a;b$$;\n"
        "-- trailing comment only;\n"
    )
    assert split_statements(script) == [
        "-- header; still a comment\nSELECT ';' AS a, 'it''s;' AS b",
        'SELECT 1 AS "odd;name"',
        "/* block; /* nested; */ still; */ SELECT 2",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$",
        "SELECT $$a;b$$",
    ]


def test_last_statement_without_semicolon_kept() -> None:
    assert split_statements("SELECT 1;\nSELECT 2\n") == ["SELECT 1", "SELECT 2"]


@pytest.mark.parametrize("script", ["SELECT 'open", "SELECT $x$ never closed", "/* open", 'SELECT "x'])
def test_unterminated_quote_or_comment_is_an_error(script: str) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_statements(script)
