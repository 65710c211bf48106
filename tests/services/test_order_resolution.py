"""Unknown supplier outcomes: resolved by order-status, bounded in time, admin "resolve
now"; customers told. The order service over a real database and a scripted supplier,
with an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.catalogue import CatalogueService
from services.orders import OrderService, OrderTimings, ResolveOutcome
from services.pricing import PriceBook, PricingService
from services.suppliers import errors
from services.suppliers.base import Capability, OrderAttempt
from services.suppliers.models import OrderStatus as SupplierStatus
from services.suppliers.models import SupplierOrder
from storage.catalogue import CatalogueRepository
from storage.db import Database
from storage.orders import IncomingCharge, NewOrder, Order, OrdersRepository, OrderStatus
from storage.settings import ShopSettingsRepository
from storage.users import UsersRepository

MINUTE = 60.0


def unavailable() -> errors.SupplierError:
    return errors.ServiceUnavailable(None, 503, '{"error":{"code":"SERVICE_UNAVAILABLE"}}')


def not_found() -> errors.SupplierError:
    return errors.OrderNotFound(None, 404, '{"error":{"code":"ORDER_NOT_FOUND"}}')


class ScriptedSupplier:
    """``create`` and ``status`` are callables returning an order or raising; every call
    is recorded as ``(method, transaction_id or order id)``."""

    name = "gamesdrop"
    short = "g"
    capabilities = frozenset({Capability.IDEMPOTENT_CREATE})

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.create: Callable[[], SupplierOrder] = self._raise(unavailable)
        self.status: Callable[[], SupplierOrder] = self._raise(not_found)
        self.attempts: list[OrderAttempt | None] = []
        self.keys: list[str] = []

    @staticmethod
    def _raise(factory: Callable[[], Exception]) -> Callable[[], SupplierOrder]:
        def call() -> SupplierOrder:
            raise factory()

        return call

    async def create_order(self, offer_id, price, transaction_id, customer) -> SupplierOrder:
        self.calls.append(("create", transaction_id))
        return self.create()

    async def get_order(self, *, order_id=None, transaction_id=None, attempt=None) -> SupplierOrder:
        self.calls.append(("status", transaction_id or order_id))
        self.attempts.append(attempt)
        return self.status()

    async def fetch_keys(self, order: SupplierOrder, transaction_id: str) -> list[str]:
        self.calls.append(("keys", transaction_id))
        return list(self.keys)

    async def resolve_order(self, offer_id, price, transaction_id, customer) -> SupplierOrder:
        """As GamesDropClient.resolve_order: status by id, re-sent with the same id."""
        try:
            return await self.get_order(transaction_id=transaction_id)
        except errors.OrderNotFound:
            return await self.create_order(offer_id, price, transaction_id, customer)


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def __getattr__(self, name: str):
        async def record(order: Order) -> None:
            self.sent.append((name, order.id))

        return record


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _paid_order(db: Database, repo: OrdersRepository) -> Order:
    await UsersRepository(db).touch(7, "u", "U", "en")
    order = await repo.create(
        NewOrder(user_id=7, chat_id=7, supplier="gamesdrop", offer_id="999", product_id="999",
                 product_name="Steam US", offer_name="TEST OFFER GROUP", returns_key=True,
                 supplier_price=Decimal("23.09"), supplier_currency="KZT",
                 cost_usd=Decimal("0.05"), stars=5)
    )  # fmt: skip
    charge = IncomingCharge(f"charge-{order.id}", 7, 5, "XTR", f"order:{order.id}", order.id)
    recorded = await repo.record_payment(charge, 0.0)
    assert recorded.new and recorded.rejection is None
    return await repo.get(order.id)  # type: ignore[return-value]


def _service(db: Database, supplier: ScriptedSupplier, clock: Clock, **timings: float):
    repo = OrdersRepository(db)
    notifier = RecordingNotifier()
    catalogue = CatalogueService(supplier, CatalogueRepository(db))  # type: ignore[arg-type]
    book = PriceBook({"KZT": Decimal("0.002")}, Decimal("0.1"), Decimal("0.013"))
    pricing = PricingService(book, ShopSettingsRepository(db))
    service = OrderService(
        supplier, repo, catalogue, pricing, notifier,  # type: ignore[arg-type]
        timings=OrderTimings(**timings), clock=clock,
    )  # fmt: skip
    return service, repo, notifier


async def _refunds(db: Database) -> int:
    return int(await db.fetchval("SELECT count(*) FROM refunds"))


async def test_order_absent_for_the_configured_time_is_failed_and_refunded_once(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    service, repo, _ = _service(db, supplier, clock, absent_for=30 * MINUTE)
    order = await _paid_order(db, repo)
    await service._place(order)  # create-order: 503, outcome unknown
    assert (await repo.get(order.id)).status is OrderStatus.UNKNOWN

    for _ in range(6):  # order-status keeps saying "no such order" for 25 minutes
        await service.check_order(order)
        assert (await repo.get(order.id)).status is OrderStatus.UNKNOWN
        clock.now += 5 * MINUTE
    assert await _refunds(db) == 0
    assert ("create", order.transaction_id) in supplier.calls[1:]  # re-sent, same id

    clock.now += 5 * MINUTE  # 30 minutes since the first "no such order"
    await service.check_order(order)
    await service.check_order(order)  # a second look changes nothing

    failed = await repo.get(order.id)
    assert failed.status is OrderStatus.FAILED
    assert await _refunds(db) == 1
    assert {tid for _, tid in supplier.calls} == {order.transaction_id}


async def test_order_the_supplier_has_is_applied_never_refunded(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    service, repo, _ = _service(db, supplier, clock, absent_for=30 * MINUTE)
    order = await _paid_order(db, repo)
    await service._place(order)
    await service.check_order(order)  # not there yet
    clock.now += 40 * MINUTE
    supplier.status = lambda: SupplierOrder(order_id=77, status=SupplierStatus.COMPLETED, key="K-1")

    await service.check_order(order)

    done = await repo.get(order.id)
    assert (done.status, done.delivered_key, done.supplier_order_id) == (
        OrderStatus.COMPLETED, "K-1", "77",
    )  # fmt: skip
    assert await _refunds(db) == 0
    # order-status by transactionId is given what create-order sent
    attempt = supplier.attempts[-1]
    assert attempt is not None
    assert (attempt.offer_id, attempt.price, attempt.currency) == ("999", Decimal("23.09"), "KZT")


async def test_a_completed_key_order_without_keys_fetches_them_when_the_supplier_can(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.capabilities = frozenset({Capability.KEYS_SEPARATE})  # type: ignore[misc]
    supplier.keys = ["AAAA-1111", "BBBB-2222"]
    supplier.create = lambda: SupplierOrder(order_id="x-1", status=SupplierStatus.COMPLETED)
    service, repo, notifier = _service(db, supplier, clock)
    order = await _paid_order(db, repo)

    await service._place(order)

    done = await repo.get(order.id)
    assert done.status is OrderStatus.COMPLETED
    assert done.delivered_keys == ["AAAA-1111", "BBBB-2222"]
    assert ("keys", order.transaction_id) in supplier.calls
    assert ("order_completed", order.id) in notifier.sent


async def test_a_completed_key_order_without_keys_waits_when_keys_cannot_be_fetched(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()  # no KEYS_SEPARATE
    supplier.create = lambda: SupplierOrder(order_id="x-2", status=SupplierStatus.COMPLETED)
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)

    await service._place(order)

    assert (await repo.get(order.id)).status is OrderStatus.PROCESSING
    assert not any(call[0] == "keys" for call in supplier.calls)


async def test_unreachable_supplier_never_counts_as_absent(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.status = ScriptedSupplier._raise(unavailable)
    service, repo, _ = _service(db, supplier, clock, absent_for=30 * MINUTE)
    order = await _paid_order(db, repo)
    await service._place(order)
    for _ in range(5):
        clock.now += 20 * MINUTE
        await service.check_order(order)
    assert (await repo.get(order.id)).status is OrderStatus.UNKNOWN
    assert await _refunds(db) == 0


async def test_retry_after_of_a_rate_limited_create_order_sets_the_next_check(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.create = ScriptedSupplier._raise(
        lambda: errors.RateLimited("TOO_MANY_REQUESTS", 429, "{}", retry_after=120)
    )
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)

    await service._place(order)

    unknown = await repo.get(order.id)
    assert unknown.status is OrderStatus.UNKNOWN  # not failed, not refunded
    assert unknown.next_check_at_ts >= clock.now + 120
    assert await _refunds(db) == 0


async def test_customer_is_told_once_while_unknown_and_again_when_stuck(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.status = ScriptedSupplier._raise(unavailable)
    service, repo, notifier = _service(db, supplier, clock, stuck_after=90 * MINUTE)
    order = await _paid_order(db, repo)
    await service._place(order)
    for _ in range(3):
        clock.now += 10 * MINUTE
        await service.check_order(order)
    assert notifier.sent == [("order_unknown", order.id)]

    clock.now += 90 * MINUTE
    await service.check_order(order)
    await service.check_order(order)

    assert [name for name, _ in notifier.sent].count("order_unknown") == 1
    assert [name for name, _ in notifier.sent].count("order_delayed") == 1


async def test_processing_order_without_supplier_id_survives_a_failed_status_check(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.create = lambda: SupplierOrder(status=SupplierStatus.PROCESSING)  # CodeGames shape
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)
    await service._place(order)
    supplier.status = ScriptedSupplier._raise(unavailable)

    await service.check_order(order)  # used to raise InvalidTransition processing -> unknown

    still = await repo.get(order.id)
    assert still.status is OrderStatus.PROCESSING
    assert still.next_check_at_ts > clock.now


async def test_one_broken_order_does_not_stop_the_check_of_the_others(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    service, repo, _ = _service(db, supplier, clock)
    first = await _paid_order(db, repo)
    second = await _paid_order(db, repo)
    answers = iter([ValueError("supplier sent nonsense")])

    def status() -> SupplierOrder:
        for exc in answers:
            raise exc
        return SupplierOrder(order_id=5, status=SupplierStatus.COMPLETED, key="K")

    supplier.status = status

    assert await service.check_due_orders() == 2

    assert (await repo.get(second.id)).status is OrderStatus.COMPLETED
    broken = await repo.get(first.id)
    assert broken.status is OrderStatus.PAID and broken.next_check_at_ts > clock.now


async def test_admin_resolve_now_refunds_only_an_order_the_supplier_confirms_absent(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)
    await service._place(order)
    create_calls = supplier.calls.count(("create", order.transaction_id))

    supplier.status = ScriptedSupplier._raise(unavailable)
    _, outcome = await service.resolve_now(order.id)
    assert outcome is ResolveOutcome.UNREACHABLE
    assert (await repo.get(order.id)).status is OrderStatus.UNKNOWN

    supplier.status = ScriptedSupplier._raise(not_found)
    resolved, outcome = await service.resolve_now(order.id)
    assert outcome is ResolveOutcome.ABSENT_REFUNDED
    assert resolved.status is OrderStatus.FAILED
    assert await _refunds(db) == 1
    assert supplier.calls.count(("create", order.transaction_id)) == create_calls  # not re-sent

    _, outcome = await service.resolve_now(order.id)
    assert outcome is ResolveOutcome.NOT_OPEN
    assert await _refunds(db) == 1


async def test_admin_resolve_now_applies_an_order_the_supplier_has(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)
    await service._place(order)
    supplier.status = lambda: SupplierOrder(order_id=8, status=SupplierStatus.COMPLETED, key="K-8")

    resolved, outcome = await service.resolve_now(order.id)

    assert outcome is ResolveOutcome.FOUND
    assert (resolved.status, resolved.delivered_key) == (OrderStatus.COMPLETED, "K-8")
    assert await _refunds(db) == 0


async def test_a_refused_status_check_never_refunds_an_unknown_order(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)
    await service._place(order)
    supplier.status = ScriptedSupplier._raise(
        lambda: errors.InvalidToken("INVALID_TOKEN", 401, '{"error":{"code":"INVALID_TOKEN"}}')
    )

    for _ in range(3):
        clock.now += 20 * MINUTE
        await service.check_order(order)

    assert (await repo.get(order.id)).status is OrderStatus.UNKNOWN
    assert await _refunds(db) == 0


async def test_duplicate_transaction_the_status_cannot_find_yet_is_not_refunded(
    db: Database,
) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.create = ScriptedSupplier._raise(
        lambda: errors.TransactionDuplicate("TRANSACTION_DUPLICATE", 409, "{}")
    )
    service, repo, _ = _service(db, supplier, clock)
    order = await _paid_order(db, repo)

    await service._place(order)  # duplicate: an order exists, though status lags behind

    assert (await repo.get(order.id)).status is OrderStatus.UNKNOWN
    assert await _refunds(db) == 0


async def test_processing_order_is_never_counted_absent(db: Database) -> None:
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.create = lambda: SupplierOrder(status=SupplierStatus.PROCESSING)  # no orderId
    service, repo, _ = _service(db, supplier, clock, absent_for=30 * MINUTE)
    order = await _paid_order(db, repo)
    await service._place(order)

    for _ in range(4):  # order-status by transactionId lags: "no such order"
        clock.now += 20 * MINUTE
        await service.check_order(order)

    assert (await repo.get(order.id)).status is OrderStatus.PROCESSING
    assert await _refunds(db) == 0


async def test_a_vendor_schedule_sets_the_rechecks_and_its_limit_hands_the_order_to_admins(
    db: Database,
) -> None:
    """CodeGames asks merchants to re-check up to 100 times, 2 minutes apart, after a 5xx
    or a read timeout: the shop follows a supplier's own schedule when it has one."""
    supplier, clock = ScriptedSupplier(), Clock()
    supplier.recheck_interval = 120.0  # type: ignore[attr-defined]
    supplier.recheck_limit = 3  # type: ignore[attr-defined]
    supplier.status = supplier._raise(unavailable)  # no answer, ever
    service, repo, notifier = _service(db, supplier, clock, first_check=7, max_check=300)
    order = await _paid_order(db, repo)

    await service._place(order)  # create-order: 503
    for _ in range(4):
        current = await repo.get(order.id)
        assert current.status is OrderStatus.UNKNOWN
        assert current.next_check_at_ts == clock.now + 120.0
        clock.now += 120.0
        await service.check_order(current)

    assert notifier.sent.count(("order_stuck", order.id)) == 1  # handed over once
    assert (await repo.get(order.id)).stuck_flagged
    assert await _refunds(db) == 0  # nothing refunded on silence
