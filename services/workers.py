"""The loop every outbox-style worker runs (orders to check, refunds, customer messages):
do what is due, then sleep until the next due time or a wake-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


async def run_due_loop(
    name: str,
    process_due: Callable[[], Awaitable[object]],
    next_due: Callable[[], Awaitable[float | None]],
    wake: asyncio.Event,
    clock: Callable[[], float],
    *,
    idle: float,
    max_wait: float,
) -> None:
    """Forever: ``process_due()``, then wait for ``wake`` or the next due time (Unix
    seconds from ``next_due()``), at most ``max_wait`` seconds, ``idle`` when nothing is
    scheduled. A pass that fails is logged and the loop goes on. ``wake`` is cleared
    before each pass, so a wake-up during a pass is never lost."""
    logger.info("%s started", name)
    while True:
        wake.clear()
        try:
            await process_due()
            next_ts = await next_due()
        except Exception:
            logger.exception("%s pass failed", name)
            next_ts = None
        delay = idle if next_ts is None else min(max_wait, max(0.0, next_ts - clock()))
        try:
            async with asyncio.timeout(delay):
                await wake.wait()
        except TimeoutError:
            pass
