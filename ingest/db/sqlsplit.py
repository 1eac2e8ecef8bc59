"""Split a SQL script into statements, for files that must run outside a transaction.

PostgreSQL runs a multi-statement query string as one implicit transaction, so
`CALL refresh_continuous_aggregate(...)` and friends must be sent one by one. The
splitter knows quotes, quoted identifiers, dollar quoting and both comment styles.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(script: str) -> list[str]:
    """The statements of `script`, stripped, without their `;`, comment-only pieces dropped."""
    statements: list[str] = []
    start = 0
    i = 0
    n = len(script)
    while i < n:
        ch = script[i]
        if ch == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and script.startswith("/*", i):
            i = _skip_block_comment(script, i)
        elif ch in ("'", '"'):
            i = _skip_quoted(script, i, ch)
        elif ch == "$" and (match := _DOLLAR_TAG.match(script, i)) and not _in_word(script, i):
            end = script.find(match.group(), match.end())
            if end < 0:
                raise ValueError(f"unterminated dollar quote {match.group()}")
            i = end + len(match.group())
        elif ch == ";":
            statements.append(script[start:i])
            i += 1
            start = i
        else:
            i += 1
    statements.append(script[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _in_word(script: str, i: int) -> bool:
    # `a$1$` is an identifier, not a dollar quote.
    return i > 0 and (script[i - 1].isalnum() or script[i - 1] == "_")


def _skip_quoted(script: str, i: int, quote: str) -> int:
    j = i + 1
    while True:
        j = script.find(quote, j)
        if j < 0:
            raise ValueError(f"unterminated {quote} quote")
        if script.startswith(quote * 2, j):
            j += 2
            continue
        return j + 1


def _skip_block_comment(script: str, i: int) -> int:
    depth = 0
    j = i
    while j < len(script):
        if script.startswith("/*", j):
            depth += 1
            j += 2
        elif script.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise ValueError("unterminated /* comment")


def _has_code(piece: str) -> bool:
    without_lines = re.sub(r"--[^\n]*", "", piece)
    without_blocks = re.sub(r"/\*.*?\*/", "", without_lines, flags=re.S)
    return bool(without_blocks.strip())
