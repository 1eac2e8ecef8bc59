"""tcpd status: placeholder until its owner lands it."""


def status() -> None:
    """Not built yet."""
    raise SystemExit("tcpd status is not built yet")
