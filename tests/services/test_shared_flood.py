"""One flood budget for several workers (``REDIS_URL``): two budget objects, each on its
own Redis connection like two bot processes, share a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.flood import BULK_MARGIN, SharedFloodBudget, SharedUserLimit
from services.shared_state import connect
from tests.servers import free_port


@pytest.fixture
async def workers(clean_redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two independent connections to one Redis database (two workers)."""
    first, second = connect(clean_redis_url), connect(clean_redis_url)
    yield first, second
    await first.aclose()
    await second.aclose()


async def _send_for(budget: SharedFloodBudget, seconds: float, sent: list[float]) -> None:
    """A broadcast loop: take a turn, 'send' (record the time), until ``seconds`` pass."""
    end = time.monotonic() + seconds
    while True:
        await budget.bulk_turn()
        now = time.monotonic()
        if now >= end:
            return
        sent.append(now)


async def test_two_workers_sending_at_once_stay_under_the_rate_together(
    workers: tuple[Redis, Redis],
) -> None:
    rate, window = 40.0, 1.5
    budgets = [SharedFloodBudget(client, rate) for client in workers]
    sent: list[list[float]] = [[], []]
    await asyncio.gather(*(_send_for(b, window, s) for b, s in zip(budgets, sent, strict=True)))
    times = sorted(sent[0] + sent[1])
    # both workers got turns, and together they kept to the one budget: at most one
    # message per 1/rate s over the window (and not far below it either)
    assert sent[0] and sent[1]
    assert len(times) <= rate * window + 1
    assert len(times) >= rate * window * 0.7
    # no second anywhere in the window held more than ``rate`` messages
    busiest = max(
        sum(1 for t in times if start <= t < start + 1.0)
        for start in times
        if start + 1.0 <= times[0] + window
    )
    assert busiest <= rate + 1


async def test_a_worker_whose_timer_fires_first_does_not_take_every_turn(
    workers: tuple[Redis, Redis],
) -> None:
    """Two broadcasts at once (two workers): the one whose timers fire a little early (a
    busier or a faster machine) asked first at every slot's time and took them all; the
    other sent nothing for seconds. Turns go in the order asked."""

    async def early(seconds: float) -> None:
        await asyncio.sleep(seconds * 0.8)

    eager = SharedFloodBudget(workers[0], 40.0, sleep=early)
    patient = SharedFloodBudget(workers[1], 40.0)
    sent: list[list[float]] = [[], []]
    await asyncio.gather(_send_for(eager, 1.0, sent[0]), _send_for(patient, 1.0, sent[1]))
    assert len(sent[1]) >= 0.3 * (len(sent[0]) + len(sent[1])), [len(s) for s in sent]


async def test_a_429_in_one_worker_pauses_bulk_sending_in_the_other(
    workers: tuple[Redis, Redis],
) -> None:
    first = SharedFloodBudget(workers[0], 100.0)
    second = SharedFloodBudget(workers[1], 100.0)
    await second.bulk_turn()  # sending freely before the 429
    first.pause(0.2)  # Telegram said retry_after=0.2 to the first worker
    await first.settled()
    started = time.monotonic()
    await asyncio.wait_for(second.bulk_turn(), 5.0)
    waited = time.monotonic() - started
    assert 0.2 + BULK_MARGIN - 0.1 <= waited < 0.2 + BULK_MARGIN + 0.5


async def test_a_shorter_pause_never_cuts_a_longer_one_short(
    workers: tuple[Redis, Redis],
) -> None:
    first = SharedFloodBudget(workers[0], 100.0)
    first.pause(0.5)
    first.pause(0.0)
    await first.settled()
    remaining_ms = await workers[1].pttl("flood:bulk:pause")
    assert remaining_ms > (0.5 + BULK_MARGIN - 0.2) * 1000


async def test_the_per_user_throttle_counts_a_users_updates_across_workers(
    workers: tuple[Redis, Redis],
) -> None:
    first = SharedUserLimit(workers[0], rate=1.0, burst=3)
    second = SharedUserLimit(workers[1], rate=1.0, burst=3)
    answers = [await limit.allow(7) for limit in (first, second, first, second)]
    assert answers == [True, True, True, False]  # a burst of 3 in all, not 3 per worker
    assert await second.allow(8)  # another user has a bucket of their own
    await asyncio.sleep(1.05)  # one token back at 1 per second
    assert await second.allow(7)
    assert not await first.allow(7)


async def test_bulk_sending_holds_while_the_shared_budget_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    budget = SharedFloodBudget(client, 100.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(budget.bulk_turn(), 0.5)  # never sends past the budget
    assert "shared flood budget unreachable" in caplog.text
    await client.aclose()
