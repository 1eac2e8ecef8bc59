"""The backup key: read from the environment only, kept out of every child process.

TCPD_BACKUP_PASSPHRASE is read once; the programs tcpd runs for a backup (gpg, pg_dump,
pg_restore) get an environment without it, or TCPD_DATABASE_URL, so neither is in
/proc/<pid>/environ of any of them (gpg receives the key through a pipe, see gpg.py).
"""

from __future__ import annotations

import os

from ingest.config.secrets import DATABASE_URL_ENV
from ingest.errors import ConfigError
from ingest.redact import register_secret

PASSPHRASE_ENV = "TCPD_BACKUP_PASSPHRASE"  # noqa: S105 (the variable's name, not its value)
_NOT_INHERITED = (PASSPHRASE_ENV, DATABASE_URL_ENV)
MIN_PASSPHRASE = 12
MAX_PASSPHRASE = 4096  # one pipe buffer: writing it can never block


def passphrase_from_env(environ: dict[str, str] | None = None) -> str:
    """The backup key from TCPD_BACKUP_PASSPHRASE; ConfigError naming the fix when unusable."""
    value = (os.environ if environ is None else environ).get(PASSPHRASE_ENV, "")
    if not value:
        raise ConfigError(
            f"{PASSPHRASE_ENV} is not set: backups are always encrypted; put a long random "
            f"passphrase in it (e.g. `openssl rand -base64 32`) and keep a copy off this machine"
        )
    if len(value) < MIN_PASSPHRASE or len(value) > MAX_PASSPHRASE or "\n" in value:
        raise ConfigError(
            f"{PASSPHRASE_ENV} must be {MIN_PASSPHRASE} to {MAX_PASSPHRASE} characters on one line"
        )
    register_secret(value)  # masked in any later log line or error
    return value


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the backup key and without
    TCPD_DATABASE_URL (its password goes only to pg_dump / pg_restore, as PGPASSWORD)."""
    env = dict(os.environ if base is None else base)
    for name in _NOT_INHERITED:
        env.pop(name, None)
    return env
