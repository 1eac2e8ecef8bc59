"""What a running `tcpd run` shows over HTTP: Prometheus metrics, liveness and readiness.

exporter.py turns the service's own counters (collector statistics, writer stats) into
Prometheus metrics when scraped, so the hot path pays nothing for them; the one histogram
(batch commit seconds) is observed once per committed batch. endpoints.py serves /metrics,
/healthz and /readyz on `http.listen` (config/database.json).
"""
