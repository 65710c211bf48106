"""Customer messages are queued for the customer's private chat, once per order and kind."""

from __future__ import annotations

from decimal import Decimal

from bot.i18n import create_i18n
from bot.notifier import BotNotifier
from storage.db import Database
from storage.deliveries import DeliveriesRepository
from storage.orders import NewOrder, OrdersRepository
from storage.users import UsersRepository


async def test_an_order_opened_in_a_group_is_delivered_to_the_private_chat(db: Database) -> None:
    users, orders, deliveries = UsersRepository(db), OrdersRepository(db), DeliveriesRepository(db)
    await users.touch(7, "u", "U", "en")
    order = await orders.create(
        NewOrder(user_id=7, chat_id=-100_123, supplier="gamesdrop", offer_id=999, product_id=999,
                 product_name="Steam US", offer_name="TEST OFFER GROUP", returns_key=True,
                 supplier_price=Decimal("23.09"), supplier_currency="KZT",
                 cost_usd=Decimal("0.05"), stars=5)
    )  # fmt: skip
    notifier = BotNotifier(None, create_i18n("en"), users, [], orders, deliveries)  # type: ignore[arg-type]

    await notifier.order_completed(order)
    await notifier.order_completed(order)  # told once

    [queued] = await deliveries.due(now_ts=1e12)
    assert queued.chat_id == 7 and queued.order_id == order.id and queued.kind == "completed"
