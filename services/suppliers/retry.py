"""Reads that are safe to repeat, the same for every vendor: retried on timeouts,
connection errors, HTTP 429 and 5xx with capped exponential backoff, waiting a
``Retry-After`` in full (and giving up at once when it is longer than the caller may
wait). Orders are never sent through here: a create-order is never repeated.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from services.suppliers.errors import (
    RetryLaterError,
    SupplierAPIError,
    SupplierConnectionError,
    SupplierTimeout,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Read retries: ``attempts`` in all, delays ``base_delay * 2**n`` capped at
    ``max_delay`` seconds with up to 25 % jitter. A ``Retry-After`` is waited in full when
    it is at most ``max_retry_after`` seconds; a longer one makes the read give up at once
    (the caller decides; never ask sooner than the supplier said)."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry ``attempt`` (0-based): ``retry_after`` when given, else the
        capped backoff with jitter."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff + random.uniform(0, backoff / 4)


def parse_retry_after(headers: httpx.Headers | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or ``None``."""
    value = (headers or {}).get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


async def read_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    to_error: Callable[[httpx.Response], SupplierAPIError],
    *,
    what: str,
    timeout: float,
    retry: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]],
    waited_elsewhere: Callable[[httpx.Response, float | None], bool] | None = None,
) -> httpx.Response:
    """``send()`` until an answer that is neither 429 nor 5xx, which is returned (the
    caller reads its body or its error). ``what`` names the call in logs and errors
    (``"<vendor> <path>"``); ``timeout`` is the read timeout in seconds, for messages.
    ``to_error`` maps a 429/5xx answer to its typed error: one that is not a
    :class:`RetryLaterError` (a request error such as a failed field validation) is
    raised at once. ``waited_elsewhere(response, retry_after)``: ``True`` when a rate
    limiter already waits that answer out, so no sleep is added here.

    Raises :class:`SupplierTimeout`, :class:`SupplierConnectionError` or the typed
    error of the last answer.
    """
    attempts = max(1, retry.attempts)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = await send()
        except httpx.TimeoutException as exc:
            if last:
                raise SupplierTimeout(f"{what} did not answer within {timeout}s") from exc
            logger.warning("%s timed out, retry %d", what, attempt + 1)
            await sleep(retry.delay(attempt))
            continue
        except httpx.TransportError as exc:
            if last:
                raise SupplierConnectionError(f"{what}: {type(exc).__name__}: {exc}") from exc
            logger.warning("%s connection error %s, retry", what, type(exc).__name__)
            await sleep(retry.delay(attempt))
            continue
        if response.status_code != 429 and response.status_code < 500:
            return response
        error = to_error(response)
        if not isinstance(error, RetryLaterError):
            raise error  # a request error: repeating cannot help
        retry_after = error.retry_after
        if last or (retry_after is not None and retry_after > retry.max_retry_after):
            raise error
        logger.warning("%s answered %s, retry", what, error)
        if waited_elsewhere is None or not waited_elsewhere(response, retry_after):
            await sleep(retry.delay(attempt, retry_after))
    raise AssertionError("unreachable")  # pragma: no cover
