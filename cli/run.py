"""tcpd run: placeholder until its owner lands it."""


def run() -> None:
    """Not built yet."""
    raise SystemExit("tcpd run is not built yet")
