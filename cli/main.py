"""Entry point of the `tcpd` command.

Each command lives in its own module, and main() imports only the one named on the
command line: `tcpd run` is a long-lived process, and every module it imports stays in
its memory for good (the other commands' modules, with the rich tables they print, cost
it ~3.5 MB). `tcpd`, `tcpd --help` or an unknown command get the full app, so the help
lists every command and a typo still gets "did you mean".

`from cli.main import app` (tests, tooling) also gives the full app.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from functools import cache

import typer

# Command name -> what module cli.<name> registers: a function of that name is one command,
# its `app` a command group. In the order `tcpd --help` lists them (typer puts commands
# before groups anyway).
COMMANDS: dict[str, str] = {
    "run": "run",
    "status": "status",
    "gaps": "gaps",
    "backfill": "backfill",
    "simulate": "simulate",
    "db": "app",
    "candles": "app",
    "book": "app",
}


def _register(app: typer.Typer, name: str) -> None:
    target = getattr(importlib.import_module(f"cli.{name}"), COMMANDS[name])
    if isinstance(target, typer.Typer):
        app.add_typer(target, name=name)
    else:
        app.command(name)(target)


def _root() -> None:
    # No docstring: the help text is the one given to typer.Typer() below.
    pass


def build_app(commands: Iterable[str] = COMMANDS) -> typer.Typer:
    """The `tcpd` app with only `commands` registered (default: all of them)."""
    app = typer.Typer(
        name="tcpd",
        help="Collect exchange market data into TimescaleDB; candles live in SQL views.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=False,
    )
    # A callback keeps `tcpd` a group when one command is registered: without it typer
    # would make that command the whole program (`tcpd --config x` instead of `tcpd run ...`).
    app.callback()(_root)
    for name in commands:
        _register(app, name)
    return app


@cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    # Built on first use, so that importing this module (the entry point) imports no command.
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run `tcpd`, importing only the command named by the first argument when there is one."""
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    app = build_app([first]) if first in COMMANDS else _full_app()
    app()


if __name__ == "__main__":
    main()
