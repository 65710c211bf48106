"""The order log: transitions, payments keyed by charge id, the refund outbox."""

from __future__ import annotations

from decimal import Decimal

import pytest

from storage.db import Database
from storage.orders import InvalidTransition, NewOrder, OrdersRepository, OrderStatus
from storage.users import UsersRepository


async def _order(db: Database, repo: OrdersRepository, user_id: int = 1):
    await UsersRepository(db).touch(user_id, "u", "U", "en")
    return await repo.create(
        NewOrder(user_id=user_id, chat_id=user_id, supplier="gamesdrop", offer_id=999, product_id=999,
                 product_name="Steam US", offer_name="TEST OFFER GROUP", returns_key=True,
                 supplier_price=Decimal("23.090"), supplier_currency="KZT", cost_usd=Decimal("0.04618"), stars=5)
    )  # fmt: skip


async def test_migrations_are_applied_once(db: Database) -> None:
    from storage.db import _migrations

    latest = _migrations()[-1][0]
    assert latest >= 2
    assert await db.migrate() == latest  # nothing left to apply the second time
    assert await db.fetchval("PRAGMA user_version") == latest
    assert await db.fetchval("PRAGMA journal_mode") == "wal"


async def test_a_new_order_gets_its_transaction_id_and_first_event(db: Database) -> None:
    repo = OrdersRepository(db, "myshop")
    order = await _order(db, repo)
    assert order.transaction_id == f"myshop-{order.id}"
    assert order.supplier_price == Decimal("23.090") and str(order.supplier_price) == "23.090"
    assert [e.to_status for e in await repo.events(order.id)] == ["awaiting_payment"]


async def test_a_payment_is_recorded_once_per_charge_id(db: Database) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    assert await repo.record_payment(order.id, 1, "charge-1", 5, "XTR", None)
    assert not await repo.record_payment(order.id, 1, "charge-1", 5, "XTR", None)
    paid = await repo.get(order.id)
    assert paid.status is OrderStatus.PAID and paid.charge_id == "charge-1"
    assert await db.fetchval("SELECT count(*) FROM payments") == 1
    assert [e.to_status for e in await repo.events(order.id)] == ["awaiting_payment", "paid"]


async def test_forbidden_transitions_change_nothing(db: Database) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    with pytest.raises(InvalidTransition):
        await repo.transition(
            order.id, OrderStatus.COMPLETED, "skipping payment", delivered_key="K"
        )
    unchanged = await repo.get(order.id)
    assert unchanged.status is OrderStatus.AWAITING_PAYMENT and unchanged.delivered_key is None
    assert len(await repo.events(order.id)) == 1


async def test_failure_queues_exactly_one_refund_in_the_same_transaction(db: Database) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    await repo.record_payment(order.id, 1, "charge-2", 5, "XTR", None)
    failed = await repo.fail_and_queue_refund(order.id, "OUT_OF_STOCK", "OUT_OF_STOCK", 0.0)
    assert failed.status is OrderStatus.FAILED
    [refund] = await repo.due_refunds(now_ts=1.0)
    assert (refund.order_id, refund.charge_id, refund.stars) == (order.id, "charge-2", 5)
    done = await repo.refund_done(order.id, "refunded")
    assert done.status is OrderStatus.REFUNDED
    assert await repo.due_refunds(now_ts=1e12) == []
    with pytest.raises(InvalidTransition):
        await repo.fail_and_queue_refund(order.id, "again", None, 0.0)
    assert await db.fetchval("SELECT count(*) FROM refunds") == 1


async def test_a_customer_sees_only_their_paid_orders(db: Database) -> None:
    repo = OrdersRepository(db)
    mine = await _order(db, repo, user_id=1)
    await repo.record_payment(mine.id, 1, "c-1", 5, "XTR", None)
    await _order(db, repo, user_id=1)  # never paid
    theirs = await _order(db, repo, user_id=2)
    orders, total = await repo.list_for_user(1, 0, 10)
    assert [o.id for o in orders] == [mine.id] and total == 1
    assert await repo.get_for_user(theirs.id, 1) is None


async def test_due_checks_and_unpaid_expiry(db: Database) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    await repo.record_payment(order.id, 1, "c-3", 5, "XTR", None)
    await repo.update(order.id, next_check_at_ts=100.0)
    assert await repo.due_for_check(now_ts=99.0) == []
    assert [o.id for o in await repo.due_for_check(now_ts=100.0)] == [order.id]
    stale = await _order(db, repo)
    assert await repo.expire_unpaid("9999-01-01") == 1
    assert (await repo.get(stale.id)).status is OrderStatus.EXPIRED
