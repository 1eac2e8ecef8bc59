"""GET JSON from an exchange's public REST API with bounded, polite retries (httpcore).

Retried: connection errors and timeouts, HTTP 429 (waiting what Retry-After asks, capped) and
5xx, with jittered exponential backoff. Not retried: any other 4xx (a wrong request does not
get better). Log lines and errors name the path and the status only: a base URL may carry
credentials in its user-info and query strings can hold keys, so neither is ever printed.

httpcore, not httpx: httpx's package imports its command-line client (click, rich, pygments)
whenever those are installed, and here they always are (typer needs click, the CLI rich), which
would put about 100 modules and 6 MB into every `tcpd run` (tests/test_cli_imports.py forbids
it). httpcore is httpx's own transport, by the same maintainers, with a documented API
(AsyncConnectionPool.request, per-request timeouts as an extension, an exception tree).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import httpcore
import orjson

from ingest.errors import ExchangeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a GET is retried."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a Retry-After above this is capped (and logged)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_delay, initial * 2**attempt)]."""
    return rng.uniform(0, min(policy.max_delay, policy.initial_delay * 2**attempt))


class RestClient:
    """A small connection pool for GETs below one base URL; `async with` opens and closes it."""

    def __init__(self, base_url: str, *, timeout: float, headers: dict[str, str]) -> None:
        self._base = base_url.rstrip("/")
        self._headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        self._timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        self._pool = httpcore.AsyncConnectionPool(max_connections=2, retries=0)

    async def __aenter__(self) -> RestClient:
        await self._pool.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pool.aclose()

    async def get(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body) of GET path?params."""
        url = f"{self._base}{path}?{urlencode(params)}" if params else f"{self._base}{path}"
        response = await self._pool.request(
            "GET", url, headers=self._headers, extensions={"timeout": self._timeouts}
        )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        return response.status, headers, response.content


# Connection failures, timeouts and broken HTTP: worth another try.
TRANSIENT = (httpcore.NetworkError, httpcore.TimeoutException, httpcore.RemoteProtocolError)


async def get_json(
    client: RestClient,
    path: str,
    params: dict[str, str],
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> object:
    """GET `path` (relative to the client's base URL) and decode its JSON body."""
    rng = rng or random.Random()
    reason = "no attempt"
    for attempt in range(policy.attempts):
        wait: float | None = None
        try:
            status, headers, body = await client.get(path, params)
        except TRANSIENT as exc:
            reason = type(exc).__name__
        except httpcore.UnsupportedProtocol:
            raise ExchangeError(f"GET {path}: the REST URL is not http:// or https://") from None
        else:
            if status == 200:
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise ExchangeError(f"GET {path}: the answer is not JSON") from None
            if status != 429 and status < 500:
                raise ExchangeError(f"GET {path}: HTTP {status}, not retried (a request the server refuses)")
            reason = f"HTTP {status}"
            if status == 429:
                asked = retry_after_seconds(headers.get("retry-after"))
                if asked is not None:
                    if asked > policy.max_retry_after:
                        logger.warning(
                            "GET %s: Retry-After %.0f s capped to %.0f s", path, asked, policy.max_retry_after
                        )
                    wait = min(asked, policy.max_retry_after)
        if attempt + 1 == policy.attempts:
            break
        delay = backoff(attempt, policy, rng) if wait is None else wait
        logger.info("GET %s failed (%s); retry %d in %.2f s", path, reason, attempt + 1, delay)
        await asyncio.sleep(delay)
    raise ExchangeError(f"GET {path} failed {policy.attempts} times, last: {reason}")
