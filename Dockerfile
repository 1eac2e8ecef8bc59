# The ingest service image: `tcpd` on PATH, SQL migrations packaged inside the wheel.
# Debian trixie, named: its postgresql-client-17 gives `tcpd db backup` a pg_dump of the same
# major version as the compose server (timescale/timescaledb:latest-pg17); pg_dump must be at
# least the server's major version, and bookworm's client is 15 (docs/backup.md).
FROM python:3.11-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump / pg_restore 17 and GnuPG for `tcpd db backup` / `tcpd db restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-17 gnupg \
    && rm -rf /var/lib/apt/lists/*

# Build from /src and delete it: the running code is the installed package only.
COPY pyproject.toml README.md /src/
COPY ingest /src/ingest
COPY cli /src/cli
COPY sql /src/sql
RUN pip install /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /app tcpd \
    && mkdir -p /app/logs /app/config /app/spool /app/backups \
    && chown tcpd /app/logs /app/spool /app/backups

USER tcpd
# config/ is mounted read-only at /app/config (docker-compose.yml): relative defaults such as
# config/database.json and config/logging.json resolve from here.
WORKDIR /app
STOPSIGNAL SIGTERM
CMD ["tcpd", "--help"]
