"""Payment reconciliation when Telegram lists Star transactions newest first: each pass
reads back only to where the last one reached, and a lost payment at the head is found."""

from __future__ import annotations

from typing import Any

from aiogram.types import StarTransaction, StarTransactions, TransactionPartnerUser, User

from services.payments import PaymentReconciler
from storage.orders import IncomingCharge, RecordedCharge


class NewestFirstBot:
    """``getStarTransactions`` over ``ledger`` (oldest first), answered newest first."""

    def __init__(self, count: int) -> None:
        self.ledger = [self._payment(n) for n in range(count)]
        self.reads: list[int] = []

    @staticmethod
    def _payment(n: int) -> StarTransaction:
        user = User(id=1000 + n, is_bot=False, first_name="u")
        source = TransactionPartnerUser(
            transaction_type="invoice_payment", user=user, invoice_payload=f"order:{n + 1}"
        )
        return StarTransaction(id=f"ch-{n}", amount=5, date=1_800_000_000 + 60 * n, source=source)

    async def get_star_transactions(self, offset: int, limit: int) -> StarTransactions:
        self.reads.append(offset)
        newest_first = list(reversed(self.ledger))
        return StarTransactions(transactions=newest_first[offset : offset + limit])


class Orders:
    """Stands in for OrderService: remembers recorded charge ids."""

    def __init__(self, recorded: set[str], broken: set[str] | None = None) -> None:
        self.orders = self
        self.recorded = recorded
        self.broken = broken or set()
        self.handled: list[str] = []

    async def payment_recorded(self, charge_id: str) -> bool:
        return charge_id in self.recorded

    async def handle_payment(self, charge: IncomingCharge) -> RecordedCharge:
        if charge.charge_id in self.broken:
            raise RuntimeError("database is locked")
        self.handled.append(charge.charge_id)
        self.recorded.add(charge.charge_id)
        return RecordedCharge(True, None, charge.order_id)


class Cursor(dict):
    async def get(self, key: str) -> Any:
        return super().get(key)

    async def set(self, key: str, value: str, updated_by: int | None = None) -> None:
        self[key] = value


async def test_newest_first_passes_read_back_only_to_the_last_pass() -> None:
    bot = NewestFirstBot(250)
    orders = Orders({t.id for t in bot.ledger})
    cursor = Cursor()
    reconciler = PaymentReconciler(bot, orders, cursor, page_size=100, margin=120)  # type: ignore[arg-type]
    await reconciler.reconcile()  # the first pass reads everything once
    bot.reads.clear()
    bot.ledger.append(bot._payment(250))  # a payment whose update was lost

    assert await reconciler.reconcile() == 1

    assert orders.handled == ["ch-250"]
    assert bot.reads == [0], bot.reads  # the newest page reached the last pass's newest


async def test_a_failed_transaction_keeps_the_watermark_behind_it() -> None:
    bot = NewestFirstBot(5)
    orders = Orders(set(), broken={"ch-1"})
    cursor = Cursor()
    reconciler = PaymentReconciler(bot, orders, cursor, page_size=2, margin=0)  # type: ignore[arg-type]

    await reconciler.reconcile()
    orders.broken.clear()
    await reconciler.reconcile()

    assert sorted(orders.handled) == [f"ch-{n}" for n in range(5)]  # ch-1 retried, once
