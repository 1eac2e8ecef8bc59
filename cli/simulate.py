"""tcpd simulate: placeholder until its owner lands it."""


def simulate() -> None:
    """Not built yet."""
    raise SystemExit("tcpd simulate is not built yet")
