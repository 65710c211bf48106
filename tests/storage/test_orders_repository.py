"""The order log: transitions, payments keyed by charge id, the refund outbox."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

import pytest

from storage.db import Database
from storage.orders import (
    ChargeRejection,
    IncomingCharge,
    InvalidTransition,
    NewOrder,
    OrdersRepository,
    OrderStatus,
)
from storage.users import UsersRepository


async def _order(db: Database, repo: OrdersRepository, user_id: int = 1):
    await UsersRepository(db).touch(user_id, "u", "U", "en")
    return await repo.create(
        NewOrder(user_id=user_id, chat_id=user_id, supplier="gamesdrop", offer_id=999, product_id=999,
                 product_name="Steam US", offer_name="TEST OFFER GROUP", returns_key=True,
                 supplier_price=Decimal("23.090"), supplier_currency="KZT", cost_usd=Decimal("0.04618"), stars=5)
    )  # fmt: skip


def _charge(order_id: int | None, charge_id: str, stars: int = 5, user_id: int = 1, **kw):
    return IncomingCharge(charge_id, user_id, stars, "XTR", f"order:{order_id}", order_id, **kw)


async def _pay(repo: OrdersRepository, order_id: int, charge_id: str, user_id: int = 1):
    return await repo.record_payment(_charge(order_id, charge_id, user_id=user_id), 0.0)


async def test_migrations_are_applied_once(db: Database) -> None:
    from storage.db import migration_files

    latest = migration_files()[-1][0]
    assert latest >= 2
    assert migration_files("postgresql")[-1][0] == latest  # every migration has its pair
    assert await db.migrate() == latest  # nothing left to apply the second time
    if db.dialect == "sqlite":
        assert await db.fetchval("PRAGMA user_version") == latest
        assert await db.fetchval("PRAGMA journal_mode") == "wal"
    else:
        assert await db.fetchval("SELECT max(version) FROM schema_version") == latest


async def test_a_new_order_gets_its_transaction_id_and_first_event(db: Database) -> None:
    repo = OrdersRepository(db, "myshop")
    order = await _order(db, repo)
    assert order.transaction_id == f"myshop-{order.id}"
    assert order.supplier_price == Decimal("23.090") and str(order.supplier_price) == "23.090"
    assert [e.to_status for e in await repo.events(order.id)] == ["awaiting_payment"]


async def test_a_payment_is_recorded_once_per_charge_id(db: Database) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    first = await _pay(repo, order.id, "charge-1")
    assert first.new and first.rejection is None
    assert not (await _pay(repo, order.id, "charge-1")).new
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
    await _pay(repo, order.id, "charge-2")
    failed = await repo.fail_and_queue_refund(order.id, "OUT_OF_STOCK", "OUT_OF_STOCK", 0.0)
    assert failed.status is OrderStatus.FAILED
    [refund] = await repo.due_refunds(now_ts=1.0)
    assert (refund.order_id, refund.charge_id, refund.stars) == (order.id, "charge-2", 5)
    assert refund.settles_order
    done = await repo.refund_done(refund, "refunded")
    assert done.status is OrderStatus.REFUNDED
    assert await repo.due_refunds(now_ts=1e12) == []
    with pytest.raises(InvalidTransition):
        await repo.fail_and_queue_refund(order.id, "again", None, 0.0)
    assert await db.fetchval("SELECT count(*) FROM refunds") == 1


async def test_a_customer_sees_only_their_paid_orders(db: Database) -> None:
    repo = OrdersRepository(db)
    mine = await _order(db, repo, user_id=1)
    await _pay(repo, mine.id, "c-1")
    await _order(db, repo, user_id=1)  # never paid
    theirs = await _order(db, repo, user_id=2)
    orders, total = await repo.list_for_user(1, 0, 10)
    assert [o.id for o in orders] == [mine.id] and total == 1
    assert await repo.get_for_user(theirs.id, 1) is None


async def test_due_checks_and_unpaid_expiry(db: Database) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    await _pay(repo, order.id, "c-3")
    await repo.update(order.id, next_check_at_ts=100.0)
    assert await repo.due_for_check(now_ts=99.0) == []
    assert [o.id for o in await repo.due_for_check(now_ts=100.0)] == [order.id]
    stale = await _order(db, repo)
    assert await repo.expire_unpaid("9999-01-01") == 1
    assert (await repo.get(stale.id)).status is OrderStatus.EXPIRED


@pytest.mark.parametrize(
    ("setup", "charge", "rejection"),
    [
        ("paid", dict(), ChargeRejection.ALREADY_PAID),
        ("expired", dict(), ChargeRejection.EXPIRED),
        ("open", dict(stars=4), ChargeRejection.WRONG_AMOUNT),
        ("open", dict(user_id=2), ChargeRejection.UNKNOWN_ORDER),
        ("open", dict(order_id=None), ChargeRejection.UNKNOWN_ORDER),
        ("open", dict(refuse=ChargeRejection.BANNED), ChargeRejection.BANNED),
    ],
)
async def test_a_charge_that_fits_no_open_order_is_recorded_and_its_refund_queued(
    db: Database, setup: str, charge: dict, rejection: ChargeRejection
) -> None:
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    await UsersRepository(db).touch(2, "v", "V", "en")
    if setup == "paid":
        await _pay(repo, order.id, "first")
    elif setup == "expired":
        await repo.expire_unpaid("9999-01-01")
    before = await repo.get(order.id)
    fields = {"order_id": order.id, **charge}
    recorded = await repo.record_payment(_charge(charge_id="second", **fields), 7.0)

    assert recorded.new and recorded.rejection is rejection
    after = await repo.get(order.id)
    assert (after.status, after.charge_id) == (before.status, before.charge_id)
    row = await db.fetchone(
        "SELECT attached, reject_reason FROM payments WHERE charge_id = 'second'"
    )
    assert (row["attached"], row["reject_reason"]) == (0, rejection.value)
    [refund] = [r for r in await repo.due_refunds(now_ts=7.0) if r.charge_id == "second"]
    assert not refund.settles_order and refund.stars == fields.get("stars", 5)
    assert refund.user_id == fields.get("user_id", 1)
    assert not (await repo.record_payment(_charge(charge_id="second", **fields), 7.0)).new

    await repo.refund_done(refund, "refunded")
    assert (await repo.get(order.id)).status is before.status  # the order itself is untouched


async def test_a_read_does_not_wait_for_a_write_queued_behind_another_writer(
    sqlite_db: Database, tmp_path
) -> None:
    """A backup or the sqlite3 shell holds the write lock: our write waits for it, and
    reads (the pre-checkout's) must still answer at once."""
    import asyncio
    import sqlite3

    db = sqlite_db
    repo = OrdersRepository(db)
    order = await _order(db, repo)
    other = sqlite3.connect(tmp_path / "test.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        write = asyncio.create_task(repo.update(order.id, check_attempts=1))
        await asyncio.sleep(0.2)  # the write is now waiting for the lock
        assert not write.done()
        found = await asyncio.wait_for(repo.get(order.id), timeout=1.0)
        assert found is not None and found.id == order.id
    finally:
        other.execute("ROLLBACK")
        other.close()
    await write
    assert (await repo.get(order.id)).check_attempts == 1


async def test_an_invoice_paid_while_expiry_runs_does_not_stop_the_others(db: Database) -> None:
    repo = OrdersRepository(db)
    orders = [await _order(db, repo) for _ in range(3)]
    real_transition = repo.transition
    raced = False

    async def transition_after_a_payment(order_id, to, detail=None, **changes):
        nonlocal raced
        if not raced:  # the customer pays order 2 just as expiry reaches it
            raced = True
            await _pay(repo, orders[1].id, "paid-in-time")
        return await real_transition(order_id, to, detail, **changes)

    repo.transition = transition_after_a_payment  # type: ignore[method-assign]

    await repo.expire_unpaid("9999-01-01")

    statuses = [(await repo.get(o.id)).status for o in orders]
    assert statuses[0] is OrderStatus.EXPIRED and statuses[2] is OrderStatus.EXPIRED
    assert statuses[1] in (OrderStatus.PAID, OrderStatus.EXPIRED)
    for order, status in zip(orders, statuses, strict=True):
        assert (await repo.events(order.id))[-1].to_status == status


async def test_a_new_order_is_returned_while_other_reads_are_under_way(
    sqlite_db: Database,
) -> None:
    """Under load every read connection can be mid-statement (other customers' reads) when
    an order is created; such a statement's snapshot predates the order, and reading it
    back there failed (issue 15's mixed load: "Buy" left unanswered). It waits instead."""
    db = sqlite_db
    async with contextlib.AsyncExitStack() as reads:
        for _ in db._readers:  # other customers' reads, each still inside its statement
            reader = await reads.enter_async_context(db._reader())
            cursor = await reads.enter_async_context(reader.execute("SELECT * FROM sqlite_master"))
            assert await cursor.fetchone() is not None  # more rows follow: the snapshot is held
        creating = asyncio.create_task(_order(db, OrdersRepository(db)))
        await asyncio.sleep(0.05)
    order = await asyncio.wait_for(creating, 5)
    assert order.status is OrderStatus.AWAITING_PAYMENT
    assert order.transaction_id == f"shop-{order.id}"
