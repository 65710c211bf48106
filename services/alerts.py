"""Alerts to admins, rate-limited so a storm becomes one message.

Each alert has a key (``balance_low``, ``order_failed``...). The first alert of a key is
sent at once; later ones within ``min_interval`` seconds are counted and folded into the
next message of that key ("+4 more like this").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class AlertService:
    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        min_interval: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._min_interval = min_interval
        self._clock = clock
        self._last_sent: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    async def alert(self, key: str, text: str) -> bool:
        """Send ``text`` unless ``key`` was alerted within the interval. Returns sent or not."""
        now = self._clock()
        last = self._last_sent.get(key)
        if last is not None and now - last < self._min_interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            logger.warning("alert %s suppressed: %s", key, text)
            return False
        folded = self._suppressed.pop(key, 0)
        if folded:
            text += f"\n(+{folded} more like this since the last alert)"
        self._last_sent[key] = now
        await self._send(text)
        return True
