"""The delivery outbox on one database shared by two workers: a due message is claimed by
one of them only, and the next outbox to start makes an interrupted claim due again."""

from __future__ import annotations

import asyncio

from storage.deliveries import DeliveriesRepository
from tests.conftest import DatabaseFactory

NOW = 1_800_000_000.0


async def _queued(database_factory: DatabaseFactory) -> tuple[DeliveriesRepository, ...]:
    first = DeliveriesRepository(await database_factory())
    second = DeliveriesRepository(await database_factory())
    assert await first.enqueue("order:1:completed", 42, 42, "completed", NOW - 1)
    return first, second


async def test_a_due_message_is_claimed_by_one_outbox_only(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _queued(database_factory)
    [due] = await first.due(NOW)
    assert [d.id for d in await second.due(NOW)] == [due.id]  # both read it as due

    won = await asyncio.gather(first.claim(due.id, "a", NOW), second.claim(due.id, "b", NOW))

    assert sorted(won) == [False, True]
    assert await first.due(NOW) == []  # held: nobody else sends it meanwhile
    assert await first.next_ts() == NOW + 90


async def test_a_settled_message_cannot_be_claimed_again(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _queued(database_factory)
    [due] = await first.due(NOW)
    assert await first.claim(due.id, "a", NOW)
    await first.sent(due.id)

    assert not await second.claim(due.id, "b", NOW + 1000)
    assert await second.release_claims(NOW + 1000) == 0


async def test_the_next_outbox_to_start_makes_an_interrupted_claim_due_at_once(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _queued(database_factory)
    [due] = await first.due(NOW)
    assert await first.claim(due.id, "a", NOW)  # then a dies mid-send

    assert await second.release_claims(NOW + 5) == 1

    assert [d.id for d in await second.due(NOW + 5)] == [due.id]
    assert await second.claim(due.id, "b", NOW + 5)


async def test_a_retry_is_not_made_due_early_by_a_restart(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _queued(database_factory)
    [due] = await first.due(NOW)
    assert await first.claim(due.id, "a", NOW)
    await first.retry(due.id, "429: retry after 30", NOW + 30)  # a flood wait

    assert await second.release_claims(NOW + 1) == 0
    assert await second.due(NOW + 1) == []
    assert await second.next_ts() == NOW + 30
