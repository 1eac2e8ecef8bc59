"""Symmetric encryption of a backup stream with GnuPG (AES256), the key from the environment.

The passphrase reaches gpg through a pipe (`--passphrase-fd N`), never through argv or the
environment of gpg, so `ps` and /proc/<pid>/environ of the child never show it. Each run uses
a private, temporary GnuPG home: the user's keyrings and agent are not touched, and the agent
gpg starts there is stopped afterwards (`gpgconf --kill`).

Data streams through: `encrypting()` yields gpg's stdin, `decrypting()` its stdout, so a
backup is never on disk unencrypted beyond pg_dump's own directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from ingest.backup.key import PASSPHRASE_ENV, child_env
from ingest.errors import BackupError, BackupKeyError
from ingest.redact import redact_text

KEY_PROBLEM = "wrong backup key or not a tcpd backup"


def gpg_program() -> str:
    """Path of gpg; BackupError naming the package when it is missing."""
    found = shutil.which("gpg")
    if not found:
        raise BackupError("gpg not found on PATH: install GnuPG (Debian: apt-get install gnupg)")
    return found


def encrypt_command(gpg: str, home: Path, passphrase_fd: int, output: Path) -> list[str]:
    """gpg's argv to encrypt stdin into `output` (no secret in it)."""
    return [
        *_common(gpg, home, passphrase_fd),
        "--symmetric",
        "--cipher-algo",
        "AES256",
        "--s2k-digest-algo",
        "SHA512",
        "--compress-algo",
        "none",  # pg_dump's directory format is compressed already
        "--output",
        str(output),
    ]


def decrypt_command(gpg: str, home: Path, passphrase_fd: int, source: Path) -> list[str]:
    """gpg's argv to decrypt `source` to stdout (no secret in it)."""
    return [*_common(gpg, home, passphrase_fd), "--decrypt", str(source)]


def _common(gpg: str, home: Path, passphrase_fd: int) -> list[str]:
    return [
        gpg,
        "--batch",
        "--no-tty",
        "--quiet",
        "--homedir",
        str(home),
        "--pinentry-mode",
        "loopback",
        "--no-symkey-cache",
        "--passphrase-fd",
        str(passphrase_fd),
    ]


@contextmanager
def _passphrase_pipe(passphrase: str) -> Iterator[int]:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, passphrase.encode())
    finally:
        os.close(write_end)
    try:
        yield read_end
    finally:
        os.close(read_end)


@contextmanager
def _gpg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="tcpd-gnupg-"))  # mode 0700, as gpg wants
    try:
        yield home
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run(
                [gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=child_env(),
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _stderr_line(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    text = stderr.read().decode(errors="replace")
    return " ".join(redact_text(text).split())[:300] or "no message"


@contextmanager
def encrypting(output: Path, passphrase: str, commands: list[list[str]]) -> Iterator[IO[bytes]]:
    """Yield a binary stream; what is written to it lands encrypted in `output`.

    The argv run is appended to `commands` (so callers and tests can see what was spawned)."""
    gpg = gpg_program()
    with _gpg_home() as home, _passphrase_pipe(passphrase) as fd, tempfile.TemporaryFile() as err:
        argv = encrypt_command(gpg, home, fd, output)
        commands.append(argv)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=err, pass_fds=(fd,), env=child_env())
        assert proc.stdin is not None
        try:
            yield proc.stdin
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if not proc.stdin.closed:
                with suppress(BrokenPipeError):  # gpg died: its exit code says why
                    proc.stdin.close()
        if proc.wait() != 0:
            raise BackupError(f"gpg could not encrypt the backup: {_stderr_line(err)}")


class Decryption:
    """gpg decrypting one file: read `stream`, then `finish()` says whether the key was right."""

    def __init__(self, proc: subprocess.Popen[bytes], source: Path, stderr: IO[bytes]) -> None:
        assert proc.stdout is not None
        self.stream: IO[bytes] = proc.stdout
        self._proc = proc
        self._source = source
        self._stderr = stderr

    def finish(self) -> None:
        """Wait for gpg; BackupKeyError when it failed (wrong key, damaged or foreign file)."""
        self.stream.read()  # drain: gpg checks the integrity tag (MDC) only at the end
        if self._proc.wait() != 0:
            raise BackupKeyError(
                f"cannot decrypt {self._source.name}: {KEY_PROBLEM} (check {PASSPHRASE_ENV}; "
                f"gpg said: {_stderr_line(self._stderr)})"
            )


@contextmanager
def decrypting(source: Path, passphrase: str, commands: list[list[str]]) -> Iterator[Decryption]:
    """Yield the decrypted stream of `source`; call `finish()` before trusting what was read."""
    gpg = gpg_program()
    with _gpg_home() as home, _passphrase_pipe(passphrase) as fd, tempfile.TemporaryFile() as err:
        argv = decrypt_command(gpg, home, fd, source)
        commands.append(argv)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            pass_fds=(fd,),
            env=child_env(),
        )
        try:
            yield Decryption(proc, source, err)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
