"""Supplier trouble on create-order, end to end through the real bot: a 429 or a 5xx is
retried with the same transaction id, never refunded; unknown orders are told to the
customer, resolved by an admin, and failed orders show a customer-safe reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.offline import ADMIN_ID, OfflineShop, fast_timings
from sandboxes.gamesdrop import TEST_OFFER_ID, SandboxConfig
from services.orders import parse_invoice_payload
from storage.orders import Order, OrderStatus
from tests.e2e.journeys import reach_invoice

PUBG_60 = 10_001  # a top-up: player ID only
FAILING_PLAYER = "77777777"  # the sandbox ends this player's top-ups FAILED


async def _buy(offline: OfflineShop, user, offer_id: int = TEST_OFFER_ID, player=None) -> Order:
    """Reach the invoice and pay it; returns the order the invoice carries."""
    invoice = await reach_invoice(offline, user, offer_id, player)
    paid, error = await user.pay()
    assert paid, error
    order_id = parse_invoice_payload(invoice["_payload"])
    assert offline.shop is not None and order_id is not None
    order = await offline.shop.orders.orders.get(order_id)
    assert order is not None
    return order


async def _status(offline: OfflineShop, order_id: int) -> OrderStatus:
    assert offline.shop is not None
    order = await offline.shop.orders.orders.get(order_id)
    assert order is not None
    return order.status


async def test_429_on_create_order_is_retried_with_the_same_id_and_completes(
    offline: OfflineShop,
) -> None:
    offline.sandbox.faults.create_rate_limited = 1  # {"error":{"code":"TOO_MANY_REQUESTS"}}
    alice = offline.telegram.user(4001, "Alice")

    order = await _buy(offline, alice)

    delivery = await alice.wait_for_text("Your key", timeout=15)
    [made] = offline.sandbox.orders.values()
    assert made.key in delivery["text"]
    assert made.transaction_id == order.transaction_id
    assert offline.sandbox.create_order_calls == 2
    assert offline.telegram.method_calls["refundStarPayment"] == 0
    assert not any("could not be completed" in t for t in alice.texts())
    assert await _status(offline, order.id) is OrderStatus.COMPLETED


async def test_unknown_order_is_told_once_then_again_when_stuck(tmp_path: Path) -> None:
    shop = OfflineShop(
        tmp_path / "stuck.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.6),
        timings=replace(fast_timings(), stuck_after=2.0),
    )
    await shop.start()
    try:
        shop.sandbox.faults.create_unavailable = 10_000  # an outage: every create-order 500
        bob = shop.telegram.user(4002, "Bob")
        order = await _buy(shop, bob)

        await bob.wait_for_text("is paid. The supplier has not confirmed it yet")
        await bob.wait_for_text("is taking longer than usual", timeout=15)

        assert sum("has not confirmed it yet" in t for t in bob.texts()) == 1
        assert sum("taking longer than usual" in t for t in bob.texts()) == 1
        assert shop.sandbox.create_order_calls >= 2  # kept trying, same id
        assert set(shop.sandbox.orders_by_transaction) == set()
        assert await _status(shop, order.id) is OrderStatus.UNKNOWN
        assert shop.telegram.method_calls["refundStarPayment"] == 0
    finally:
        shop.sandbox.faults.create_unavailable = 0
        await shop.stop()


async def _resolve_now(offline: OfflineShop, order_id: int) -> dict:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send(f"/order {order_id}")
    await admin.wait_for_text(f"Order #{order_id} · ")
    await admin.press("Resolve now")
    return await admin.wait_for_text("Resolve now:")  # the order screen, edited in place


async def test_admin_resolve_now_refunds_an_order_the_supplier_never_made(
    offline: OfflineShop,
) -> None:
    offline.sandbox.faults.retry_after = 3600  # the worker is told to wait: the admin acts
    offline.sandbox.faults.create_unavailable = 1
    carol = offline.telegram.user(4003, "Carol")
    order = await _buy(offline, carol)
    await carol.wait_for_text("has not confirmed it yet")
    assert await _status(offline, order.id) is OrderStatus.UNKNOWN

    answer = await _resolve_now(offline, order.id)

    assert "no such order" in answer["text"]
    await carol.wait_for_text("were refunded")
    assert offline.telegram.method_calls["refundStarPayment"] == 1
    assert await _status(offline, order.id) is OrderStatus.REFUNDED
    assert offline.sandbox.orders == {}


async def test_admin_resolve_now_completes_an_order_the_supplier_made(
    offline: OfflineShop,
) -> None:
    offline.sandbox.faults.retry_after = 3600
    offline.sandbox.faults.create_unavailable_after_making = 1
    dave = offline.telegram.user(4004, "Dave")
    order = await _buy(offline, dave)
    await dave.wait_for_text("has not confirmed it yet")
    assert await _status(offline, order.id) is OrderStatus.UNKNOWN

    answer = await _resolve_now(offline, order.id)

    assert "the supplier has it" in answer["text"]
    [made] = offline.sandbox.orders.values()
    delivery = await dave.wait_for_text("Your key")
    assert made.key in delivery["text"]
    assert await _status(offline, order.id) is OrderStatus.COMPLETED
    await offline.settle()
    assert offline.telegram.method_calls["refundStarPayment"] == 0
    assert offline.sandbox.create_order_calls == 1


async def test_failed_order_shows_a_customer_safe_reason_and_admins_the_raw_one(
    offline: OfflineShop,
) -> None:
    raw = offline.sandbox.config.failed_players[FAILING_PLAYER]  # "Provider internal error"
    erin = offline.telegram.user(4005, "Erin")
    await _buy(offline, erin, PUBG_60, player=FAILING_PLAYER)
    failed = await erin.wait_for_text("could not be completed", timeout=15)
    assert raw not in failed["text"]
    assert "the supplier could not complete it" in failed["text"]

    ivan = offline.telegram.user(4006, "Иван", language_code="ru")
    mark = ivan.mark()
    await ivan.send(f"/start offer_{PUBG_60}")
    await ivan.wait_for_text("⭐", since=mark)
    await ivan.press("Купить за")
    await ivan.wait_for_text("Отправьте ваш ID игрока")
    await ivan.send(FAILING_PLAYER)
    await ivan.wait_for_text("Проверьте заказ")
    await ivan.press("Оплатить")
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in ivan.messages))
    paid, _ = await ivan.pay()
    assert paid
    failed_ru = await ivan.wait_for_text("не удалось", timeout=15)
    assert raw not in failed_ru["text"]
    assert "поставщик не смог его выполнить" in failed_ru["text"]

    assert offline.shop is not None
    [order] = (await offline.shop.orders.orders.list_for_user(erin.id, 0, 1))[0]
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send(f"/order {order.id}")
    view = await admin.wait_for_text(f"Order #{order.id} · ")
    assert raw in view["text"]
