"""Secret values read from the environment, with reprs that never show them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

from ingest.errors import ConfigError
from ingest.redact import MASK, redact_dsn, register_secret

DATABASE_URL_ENV = "TCPD_DATABASE_URL"


class SecretDsn(SecretStr):
    """A database URL whose str() and repr() show it with the password masked.

    Unlike a plain SecretStr, host, port and database stay visible, which is what a
    person debugging a connection needs. Use `get_secret_value()` to connect.
    """

    def _display(self) -> str:
        return redact_dsn(self.get_secret_value())


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    """API credentials for one exchange; every field is masked in repr().

    passphrase is None for a venue whose keys have none (Binance)."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"ExchangeCredentials(api_key={MASK!r}, api_secret={MASK!r}, passphrase={MASK!r})"

    __str__ = __repr__


def read_exchange_credentials(
    names: Sequence[str], environ: Mapping[str, str] | None = None
) -> ExchangeCredentials | None:
    """Read a venue's credentials from the environment variables `names` (key, secret and,
    for a venue that has one, passphrase: its Venue.credentials).

    Returns None when none is set (public channels need no credentials). Every value
    read is registered with ingest.redact so it is masked in any later log line or error.
    """
    if len(names) not in (2, 3):
        raise ValueError(f"credentials are a key, a secret and optionally a passphrase, not {list(names)}")
    env = os.environ if environ is None else environ
    values = [env.get(name, "") for name in names]
    for value in values:
        register_secret(value)
    if not any(values):
        return None
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        present = ", ".join(name for name in names if name not in missing)
        raise ConfigError(
            f"environment: {', '.join(missing)} not set while {present} is; "
            f"set all of {', '.join(names)} or none"
        )
    return ExchangeCredentials(*values)
