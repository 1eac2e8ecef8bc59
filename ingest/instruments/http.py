"""GET JSON from an exchange's public REST API with bounded, polite retries.

Retried: connection errors and timeouts, HTTP 429 (waiting what Retry-After asks, capped) and
5xx, with jittered exponential backoff. Not retried: any other 4xx (a wrong request does not
get better). Log lines and errors name the path and the status only: a base URL may carry
credentials in its user-info and query strings can hold keys, so neither is ever printed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
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


async def get_json(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> object:
    """GET `path` (relative to the client's base_url) and decode its JSON body."""
    rng = rng or random.Random()
    reason = "no attempt"
    for attempt in range(policy.attempts):
        wait: float | None = None
        try:
            response = await client.get(path, params=params)
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            reason = f"{type(exc).__name__}"
        else:
            status = response.status_code
            if status == 200:
                try:
                    return orjson.loads(response.content)
                except orjson.JSONDecodeError:
                    raise ExchangeError(f"GET {path}: the answer is not JSON") from None
            if status != 429 and status < 500:
                raise ExchangeError(f"GET {path}: HTTP {status}, not retried (a request the server refuses)")
            reason = f"HTTP {status}"
            if status == 429:
                asked = retry_after_seconds(response.headers.get("Retry-After"))
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
