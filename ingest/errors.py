"""The exception tree. Every error the service raises on purpose derives from TcpdError.

    TcpdError
    ├── ConfigError          a config file or environment value is wrong (names file, key, fix)
    ├── DatabaseError        the database could not be reached or refused a statement
    │   └── MigrationError   the migration ledger and sql/ disagree, or a migration failed
    ├── SpoolError           the local spool directory cannot be used (missing rights, locked)
    ├── BackupError          `tcpd db backup` / `restore` failed (tool missing, pg_dump, target)
    │   └── BackupKeyError   the backup cannot be decrypted: wrong key, or not a tcpd backup
    ├── ExchangeError        an exchange refused us (bad subscription, protocol error)
    │   └── LoginRefused     a private endpoint refused our credentials: retrying cannot help
    ├── FrameError           one frame could not be parsed; it is dead-lettered, not fatal
    └── BookError            a stored order book cannot be rebuilt at the time asked (no
                             snapshot before it, or a sequence gap between them)

Messages say what was wrong and what to do about it, and never contain a secret:
build them from redacted values (see ingest.redact).
"""


class TcpdError(Exception):
    """Root of every error raised on purpose by this package."""


class ConfigError(TcpdError):
    """A configuration file or environment variable is invalid."""


class DatabaseError(TcpdError):
    """The database is unreachable or refused a statement."""


class MigrationError(DatabaseError):
    """Applied migrations and the files in sql/ disagree, or a migration failed."""


class SpoolError(TcpdError):
    """The writer's local spool directory cannot be created, written or locked."""


class BackupError(TcpdError):
    """A backup could not be made or restored (docs/backup.md)."""


class BackupKeyError(BackupError):
    """A backup file could not be decrypted: the key is wrong or the file is not a tcpd backup."""


class ExchangeError(TcpdError):
    """The exchange answered with an error we cannot recover from by retrying."""


class LoginRefused(ExchangeError):
    """A venue refused the login of a private connection (wrong key, signature, passphrase,
    or a timestamp outside its window). The collector stops with status error instead of
    reconnecting: the same credentials would be refused again. The message names the
    venue's code and the cause, never a credential."""


class FrameError(TcpdError):
    """A frame could not be parsed. Carries the reason that goes to the dead-letter table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BookError(TcpdError):
    """An order book cannot be rebuilt at the time asked: no full snapshot is stored at or
    before it, or a sequence gap lies between that snapshot and the time (ingest.books)."""
