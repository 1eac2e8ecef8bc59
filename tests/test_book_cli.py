"""`tcpd book show`'s layout and `tcpd status`'s book-gap note, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from cli.book import book_json, book_lines
from cli.status import render
from ingest.books.book import Book
from ingest.books.rebuild import RebuiltBook

T = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def rebuilt() -> RebuiltBook:
    book = Book()
    book.load(
        [["63913.5", "0.00240857"], ["63913.4", "12"], ["0.000000000000000001", "123456789012345.123456"]],
        [["63913.6", "1.5"]],
    )
    return RebuiltBook("okx", "BTC-USDT", T, T, 7, 42, book)


def test_side_by_side_exact_and_within_80_columns() -> None:
    lines = book_lines(rebuilt(), 20)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0] == "okx BTC-USDT at 2026-12-01T10:00:00Z (seqId 42)"
    assert lines[1] == "from the snapshot at 2026-12-01T10:00:00Z + 7 update(s)"
    assert lines[4].split() == ["0.00240857", "63913.5", "|", "63913.6", "1.5"]
    assert lines[5].split() == ["12", "63913.4", "|"]
    assert lines[6].split()[0].endswith("…")  # a size wider than its column is cut, visibly
    assert book_json(rebuilt(), 1)["bids"] == [["63913.5", "0.00240857"]]
    assert book_json(rebuilt(), 1)["asks"] == [["63913.6", "1.5"]]


def test_status_names_book_gaps() -> None:
    row = {
        "collector": "okx-BTC-USDT",
        "status": "running",
        "status_json": {"statistics": {"book_gaps": 2, "book_updates_dropped": 9}},
        "health_json": {"is_healthy": True},
        "updated_at": T,
    }
    console = Console(width=200, record=True)
    console.print(render([row]))
    text = " ".join(console.export_text().split())  # the caption wraps to the table's width
    assert "okx-BTC-USDT: 2 order book sequence gap(s)" in text
    assert "9 update(s) between a gap and its snapshot not stored" in text
