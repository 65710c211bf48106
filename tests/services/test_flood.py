"""The shared flood budget: customer deliveries before broadcasts, a 429 pauses bulk."""

from __future__ import annotations

import asyncio

from services.flood import BULK_MARGIN, FloodBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_bulk_waits_while_a_delivery_is_being_sent() -> None:
    clock = Clock()
    flood = FloodBudget(clock, clock.sleep, poll=0.05)
    with flood.urgent():
        turn = asyncio.create_task(flood.bulk_turn())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not turn.done() and flood.bulk_blocked
    await asyncio.wait_for(turn, 1.0)
    assert not flood.bulk_blocked


async def test_a_429_pauses_bulk_past_its_retry_after() -> None:
    clock = Clock()
    flood = FloodBudget(clock, clock.sleep)
    flood.pause(30)
    flood.pause(5)  # a shorter pause never cuts a longer one
    await flood.bulk_turn()
    assert clock.now == 100.0 + 30 + BULK_MARGIN


async def test_nothing_waits_when_nothing_is_under_way() -> None:
    clock = Clock()
    flood = FloodBudget(clock, clock.sleep)
    await flood.bulk_turn()
    assert clock.slept == []
