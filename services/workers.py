"""The loop every outbox-style worker runs (orders to check, refunds, customer messages):
do what is due, then sleep until the next due time or a wake-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class PassCounter:
    """How many passes a worker has finished; :meth:`wait_for` waits for a number of
    them (the positive signal that a worker has looked at everything due)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def tick(self) -> None:
        self.count += 1
        self._changed.set()

    async def wait_for(self, target: int, timeout: float = 10.0) -> None:
        """Return once ``count >= target``. Raises ``TimeoutError``."""
        async with asyncio.timeout(timeout):
            while self.count < target:
                self._changed.clear()
                await self._changed.wait()


async def run_due_loop(
    name: str,
    process_due: Callable[[], Awaitable[object]],
    next_due: Callable[[], Awaitable[float | None]],
    wake: asyncio.Event,
    clock: Callable[[], float],
    *,
    idle: float,
    max_wait: float,
    passes: PassCounter | None = None,
) -> None:
    """Forever: ``process_due()``, then wait for ``wake`` or the next due time (Unix
    seconds from ``next_due()``), at most ``max_wait`` seconds, ``idle`` when nothing is
    scheduled. A pass that fails is logged and the loop goes on. ``wake`` is cleared
    before each pass, so a wake-up during a pass is never lost; ``passes`` counts them."""
    logger.info("%s started", name)
    while True:
        wake.clear()
        try:
            await process_due()
            next_ts = await next_due()
        except Exception:
            logger.exception("%s pass failed", name)
            next_ts = None
        if passes is not None:
            passes.tick()
        delay = idle if next_ts is None else min(max_wait, max(0.0, next_ts - clock()))
        try:
            async with asyncio.timeout(delay):
                await wake.wait()
        except TimeoutError:
            pass
