"""Exchange adapters: pure subscribe-message builders and frame parsers, one package per venue."""
