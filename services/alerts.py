"""Alerts to admins, rate-limited so a storm becomes one message.

Each alert has a key (``balance_low``, ``order_failed``...). The first alert of a key is
sent at once; later ones within ``min_interval`` seconds are counted and handed with the
next message of that key, which says so ("+4 more like this"). The message is whatever the
sender renders (the bot renders it per admin, in the admin's language).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


class AlertService:
    """Rate-limits alerts per key; ``send(message, folded)`` gets the message and how many
    alerts of its key were held back since the last one sent."""

    def __init__(
        self,
        send: Callable[[Any, int], Awaitable[None]],
        *,
        min_interval: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._min_interval = min_interval
        self._clock = clock
        self._last_sent: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    async def alert(self, key: str, message: Any) -> bool:
        """Send ``message`` unless ``key`` was alerted within the interval. Returns sent or not."""
        now = self._clock()
        last = self._last_sent.get(key)
        if last is not None and now - last < self._min_interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            logger.warning("alert %s suppressed: %s", key, message)
            return False
        folded = self._suppressed.pop(key, 0)
        self._last_sent[key] = now
        await self._send(message, folded)
        return True
