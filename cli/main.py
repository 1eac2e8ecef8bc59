"""Entry point of the `tcpd` command.

Each command lives in its own module, and main() imports only the one named on the
command line: `tcpd run` is a long-lived process, and every module it imports stays in
its memory for good (the other commands' modules, with the rich tables they print, cost
it ~3.5 MB). `tcpd`, `tcpd --help` or an unknown command get the full app, so the help
lists every command and a typo still gets "did you mean".

`from cli.main import app` (tests, tooling) also gives the full app.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import cache

import typer


def _add_run(app: typer.Typer) -> None:
    from cli import run

    app.command("run")(run.run)


def _add_status(app: typer.Typer) -> None:
    from cli import status

    app.command("status")(status.status)


def _add_simulate(app: typer.Typer) -> None:
    from cli import simulate

    app.command("simulate")(simulate.simulate)


def _add_db(app: typer.Typer) -> None:
    from cli import db

    app.add_typer(db.app, name="db")


def _add_candles(app: typer.Typer) -> None:
    from cli import candles

    app.add_typer(candles.app, name="candles")


# In the order `tcpd --help` lists them (typer puts commands before groups anyway).
COMMANDS: dict[str, Callable[[typer.Typer], None]] = {
    "run": _add_run,
    "status": _add_status,
    "simulate": _add_simulate,
    "db": _add_db,
    "candles": _add_candles,
}


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
        COMMANDS[name](app)
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
