"""Encrypted logical backups of the tcpd database (docs/backup.md).

    backup:  pg_dump --format=directory -> tar stream -> gpg --symmetric (AES256)
             -> <dir>/tcpd-<database>-<UTC time>.tar.gpg, older ones pruned with keep=N
    restore: gpg --decrypt -> tar -> empty target database: CREATE EXTENSION timescaledb at
             the dumped version, timescaledb_pre_restore(), pg_restore, timescaledb_post_restore()

The key comes from TCPD_BACKUP_PASSPHRASE (`key.passphrase_from_env()`) and reaches gpg
through a pipe (no child process has it in its environment); the database password reaches
pg_dump/pg_restore through PGPASSWORD. Neither is ever in a child's argv, a log line or an
error.
"""

from ingest.backup.dump import BackupResult, backup
from ingest.backup.key import PASSPHRASE_ENV, passphrase_from_env
from ingest.backup.restore import RestoreResult, restore

__all__ = ["PASSPHRASE_ENV", "BackupResult", "RestoreResult", "backup", "passphrase_from_env", "restore"]
