"""Keep secrets out of logs, errors and reprs.

Two tools: `redact_dsn` for a connection string we hold, and `redact_text` for any
message that might quote one (exception texts from libraries, for instance).
Secrets registered with `register_secret` (API keys read from the environment) are
masked wherever they appear.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask `value` in every later call to redact_text (ignored when empty or very short)."""
    if value and len(value) >= 4:
        _registered.add(value)


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
    for secret in _registered:
        text = text.replace(secret, MASK)
    return text
