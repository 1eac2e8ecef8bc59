"""A registered secret is masked whole and in pieces: a log line cut short shows none of it."""

from __future__ import annotations

from ingest.redact import MASK, redact_text, register_secret

KEY = "5b0e7c21-94d3-4a8f-b6e2-1c9d8f7a3e50"


def test_pieces_of_a_registered_secret_are_masked() -> None:
    register_secret(KEY)
    # websockets' debug line of a long frame: its first and last bytes around "..."
    cut = '> TEXT \'{"op":"login","args":[{"apiKey":"5b0e7c21-94d3-...Zx0="}]}\' [186 bytes]'
    assert redact_text(cut) == cut.replace("5b0e7c21-94d3-", MASK)
    assert redact_text(f"tail {KEY[-12:]} whole {KEY}.") == f"tail {MASK} whole {MASK}."
    # Fewer than 8 characters in a row are not a piece (nothing else would be readable).
    assert redact_text("5b0e7c2 and 3e50") == "5b0e7c2 and 3e50"


def test_a_short_secret_is_masked_whole_only() -> None:
    register_secret("s3cr")
    assert redact_text("a s3cr b") == f"a {MASK} b"
