"""Trade history over the exchanges' REST APIs: what fills the gaps that live streams leave
(reconnects, restarts, crashes) and what `tcpd backfill` loads (docs/gaps.md)."""
