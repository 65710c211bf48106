"""The delivery outbox on one database shared by two workers: a due message is claimed by
one of them only, and the next outbox to start makes an interrupted claim due again."""

from __future__ import annotations

import asyncio
import json

from storage.db import Database, utcnow_iso
from storage.deliveries import DeliveriesRepository
from storage.users import UsersRepository
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


async def test_after_a_crash_untold_outcomes_are_queued_once(db: Database) -> None:
    """A completed order and a refunded unattached charge whose messages were never queued
    (the process died in between) are queued at the next start, each once."""
    now = utcnow_iso()
    await UsersRepository(db).touch(7, "u", "U", "en")
    await db.execute(
        """INSERT INTO orders (user_id, chat_id, supplier, offer_id, product_id, product_name,
               offer_name, returns_key, supplier_price, supplier_currency, cost_usd, stars,
               status, transaction_id, created_at, updated_at)
           VALUES (7, 7, 'gamesdrop', '1', '1', 'Steam', '5 USD', 1, '5.00', 'USD', '5.00',
                   400, 'completed', 'shop-1', ?, ?)""",
        (now, now),
    )
    await db.execute(
        """INSERT INTO payments (charge_id, order_id, user_id, stars, currency, received_at,
               attached, reject_reason)
           VALUES ('late-charge', 1, 7, 400, 'XTR', ?, 0, 'paid twice')""",
        (now,),
    )
    await db.execute(
        """INSERT INTO refunds (charge_id, order_id, settles_order, user_id, stars, status,
               next_attempt_at_ts, created_at)
           VALUES ('late-charge', 1, 0, 7, 400, 'done', 0, ?)""",
        (now,),
    )
    repo = DeliveriesRepository(db)

    assert await repo.recover_missing(NOW) == 2
    assert await repo.recover_missing(NOW) == 0  # once
    rows = await db.fetchall("SELECT kind, order_id, params FROM deliveries ORDER BY id")
    assert [(r["kind"], r["order_id"]) for r in rows] == [
        ("completed", 1), ("charge_refunded", 1)
    ]  # fmt: skip
    assert json.loads(rows[1]["params"]) == {"stars": 400, "reason": "paid twice", "order": 1}
