"""tcpd candles: placeholder until its owner lands it."""

import typer

app = typer.Typer(help="candles commands", no_args_is_help=True)
