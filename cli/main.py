"""Entry point of the `tcpd` command."""

from __future__ import annotations

import typer

from cli import candles, db, run, simulate, status

app = typer.Typer(
    name="tcpd",
    help="Collect exchange market data into TimescaleDB; candles live in SQL views.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(candles.app, name="candles")
app.command("run")(run.run)
app.command("status")(status.status)
app.command("simulate")(simulate.simulate)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
