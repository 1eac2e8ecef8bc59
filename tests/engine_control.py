"""Connections and start/stop/restart of test servers the fixture layer controls."""

from __future__ import annotations

import shlex
import subprocess
import time
from abc import ABC, abstractmethod
from typing import Any

import psycopg

from ingest.redact import redact_text

CONNECT_TIMEOUT = 10


def connect(dsn: str) -> psycopg.Connection[Any]:
    """Autocommit connection without server-side prepared statements, like ingest.db.connection."""
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None, connect_timeout=CONNECT_TIMEOUT)


class Controller(ABC):
    """Start/stop/restart a server the fixture layer controls (fault tests)."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def restart(self) -> None: ...

    @abstractmethod
    def is_running(self) -> bool: ...


class ScriptController(Controller):
    """Drives engines/native.sh (or anything taking start|stop|restart|status)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command

    def _run(self, action: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.command, action], capture_output=True, text=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join([*self.command, action])} failed ({done.returncode}): "
                + redact_text(done.stderr.strip() or done.stdout.strip())
            )
        return done

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def restart(self) -> None:
        self._run("restart")

    def is_running(self) -> bool:
        return self._run("status", check=False).returncode == 0


class DockerController(Controller):
    """Stops/starts a testcontainers container; its host port is fixed so DSNs stay valid."""

    def __init__(self, container: Any, admin_dsn: str) -> None:
        self.container = container
        self.admin_dsn = admin_dsn

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with connect(self.admin_dsn):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def start(self) -> None:
        self.container.get_wrapped_container().start()
        self._wait()

    def stop(self) -> None:
        self.container.get_wrapped_container().stop(timeout=30)

    def restart(self) -> None:
        self.container.get_wrapped_container().restart(timeout=30)
        self._wait()

    def is_running(self) -> bool:
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        return bool(wrapped.status == "running")


def run_script(command: list[str]) -> str:
    """Run an engines/*.sh command; return its last stdout line (the DSN)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} failed ({done.returncode}): "
            + redact_text(done.stderr.strip() or done.stdout.strip())
        )
    return done.stdout.strip().splitlines()[-1]


class NativeControl:
    """What the native_engine fixture hands to fault tests."""

    def __init__(self, admin_dsn: str, controller: Controller) -> None:
        self._admin_dsn = admin_dsn
        self.controller = controller

    @property
    def admin_dsn(self) -> str:
        """DSN of the server's maintenance database."""
        return self._admin_dsn

    def start(self) -> None:
        """Start the server (no-op when running); returns once it accepts connections."""
        if not self.controller.is_running():
            self.controller.start()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut)."""
        self.controller.stop()

    def restart(self) -> None:
        """Restart the server; open connections are cut, data stays."""
        self.controller.restart()

    def is_running(self) -> bool:
        """Whether the server process is up."""
        return self.controller.is_running()
