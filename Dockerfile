# The ingest service image: `tcpd` on PATH, SQL migrations packaged inside the wheel.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build from /src and delete it: the running code is the installed package only.
COPY pyproject.toml README.md /src/
COPY ingest /src/ingest
COPY cli /src/cli
COPY sql /src/sql
RUN pip install /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /app tcpd \
    && mkdir -p /app/logs /app/config /app/spool \
    && chown tcpd /app/logs /app/spool

USER tcpd
# config/ is mounted read-only at /app/config (docker-compose.yml): relative defaults such as
# config/database.json and config/logging.json resolve from here.
WORKDIR /app
STOPSIGNAL SIGTERM
CMD ["tcpd", "--help"]
