"""One flood budget for everything the bot sends (Telegram allows about 30 messages per
second in bulk and answers 429 with ``retry_after`` past it).

Customer deliveries come first: while one is being sent, bulk senders (broadcasts) hold
back, and a 429 seen by any sender pauses bulk sending for its ``retry_after`` (plus a
second, so a delivery due at the same moment goes before them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

BULK_MARGIN = 1.0  # seconds bulk senders wait past a retry_after, after deliveries


class FloodBudget:
    """Shared by the delivery outbox (urgent) and broadcasts (bulk)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll: float = 0.05,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._poll = poll
        self._urgent = 0
        self._paused_until = 0.0

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Hold bulk sending while an urgent message is being sent."""
        self._urgent += 1
        try:
            yield
        finally:
            self._urgent -= 1

    def pause(self, seconds: float) -> None:
        """A 429 asked to wait ``seconds``: bulk senders wait that long and a margin."""
        self._paused_until = max(self._paused_until, self._clock() + seconds + BULK_MARGIN)

    @property
    def bulk_blocked(self) -> bool:
        return self._urgent > 0 or self._paused_until > self._clock()

    async def bulk_turn(self) -> None:
        """Return when a bulk message may go: no pause in force, no delivery under way."""
        while True:
            wait = self._paused_until - self._clock()
            if wait > 0:
                await self._sleep(wait)
            elif self._urgent:
                await self._sleep(self._poll)
            else:
                return
