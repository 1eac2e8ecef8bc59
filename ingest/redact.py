"""Keep secrets out of logs, errors and reprs.

Two tools: `redact_dsn` for a connection string we hold, and `redact_text` for any
message that might quote one (exception texts from libraries, for instance).
Secrets registered with `register_secret` (API keys read from the environment) are
masked wherever they appear, and so is any piece of one of at least FRAGMENT_CHARS
characters: a log line cut short (websockets shows a frame's first and last bytes, a login
frame's among them) must not show the first half of a key either.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)
FRAGMENT_CHARS = 8
_registered: dict[str, re.Pattern[str] | None] = {}


def register_secret(value: str | None) -> None:
    """Mask `value`, and any piece of it of FRAGMENT_CHARS or more characters, in every
    later call to redact_text (ignored when empty or very short)."""
    if value and len(value) >= 4 and value not in _registered:
        windows = {value[i : i + FRAGMENT_CHARS] for i in range(len(value) - FRAGMENT_CHARS + 1)}
        _registered[value] = re.compile("|".join(map(re.escape, sorted(windows)))) if windows else None


def _mask_pieces(text: str, secret: str, pieces: re.Pattern[str]) -> str:
    """`text` with every run of FRAGMENT_CHARS or more consecutive characters of `secret` masked."""
    out: list[str] = []
    at = 0
    while (found := pieces.search(text, at)) is not None:
        start, end = found.span()
        while end < len(text) and text[start : end + 1] in secret:
            end += 1
        out.append(text[at:start])
        out.append(MASK)
        at = end
    if not out:
        return text
    out.append(text[at:])
    return "".join(out)


def redact_dsn(dsn: str) -> str:
    """Return the DSN with its password replaced by ***; works for URLs and key=value strings."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            host = parts.hostname or ""
            if parts.port is not None:
                host = f"{host}:{parts.port}"
            user = parts.username or ""
            netloc = f"{user}:{MASK}@{host}"
            dsn = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, dsn)
    return _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, dsn)


def redact_text(text: str) -> str:
    """Mask passwords in any URLs or key=value pairs in `text`, and every registered secret."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)
    text = _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    for secret, pieces in _registered.items():
        text = text.replace(secret, MASK) if pieces is None else _mask_pieces(text, secret, pieces)
    return text
