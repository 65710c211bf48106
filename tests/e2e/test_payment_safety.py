"""Every charge ends delivered or refunded: payments that fit no open order, payment
updates that middlewares must not drop, recovery that a bad transaction must not jam,
key messages that a flood limit must not lose, a database that must not make a
pre-checkout miss Telegram's deadline, and prices that change before the invoice.

All through the real bot long-polling the fake Bot API, ordering from the sandbox."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID, SandboxConfig
from sandboxes.telegram import FakeUser
from services.payments import PaymentReconciler
from storage.orders import Order, OrderStatus
from storage.settings import ShopSettingsRepository
from tests.e2e.journeys import open_offer, reach_invoice


async def _orders(offline: OfflineShop, user: FakeUser) -> list[Order]:
    assert offline.shop is not None
    orders, _ = await offline.shop.orders.orders.list_for_user(user.id, 0, 50)
    return orders


async def _refunded(offline: OfflineShop, charge_id: str) -> None:
    await offline.telegram.wait_until(lambda: offline.telegram.charges[charge_id].refunded)


# -- 1. a charge that cannot be attached to an open order is recorded and refunded ------


async def test_a_second_payment_for_one_order_is_refunded_and_the_customer_told(
    offline: OfflineShop,
) -> None:
    """The customer taps Pay twice (or pays on two devices): both pre-checkouts are
    answered ok before either payment arrives."""
    ann = offline.telegram.user(5001, "Ann")
    invoice = await reach_invoice(offline, ann, TEST_OFFER_ID)

    results = await asyncio.gather(ann.pay(invoice), ann.pay(invoice))

    assert all(paid for paid, _ in results)
    await ann.wait_for_text("Your key")
    await ann.wait_for_text("already paid, so this second payment")
    await ann.wait_for_text("were returned to your Telegram Stars balance")
    [order] = await _orders(offline, ann)
    assert order.status is OrderStatus.COMPLETED
    charges = list(offline.telegram.charges.values())
    assert len(charges) == 2 and len(offline.sandbox.orders) == 1
    second = next(c for c in charges if c.charge_id != order.charge_id)
    await _refunded(offline, second.charge_id)
    assert not offline.telegram.charges[order.charge_id].refunded
    assert offline.shop is not None
    events = await offline.shop.orders.orders.events(order.id)
    assert any("already_paid" in (e.detail or "") for e in events)


async def test_a_payment_in_another_currency_does_not_complete_the_order(
    offline: OfflineShop,
) -> None:
    bea = offline.telegram.user(5002, "Bea")
    invoice = await reach_invoice(offline, bea, TEST_OFFER_ID)
    stars = invoice["invoice"]["total_amount"]

    charge_id = await bea.send_payment(invoice["_payload"], stars, currency="USD")

    await bea.wait_for_text("takes Telegram Stars only")
    await _refunded(offline, charge_id)
    [order] = await _orders(offline, bea) or [None]
    assert order is None  # the order never became paid
    assert not offline.sandbox.orders


@pytest.mark.parametrize("payload", ["order:999999", "not-ours", "order:"])
async def test_a_payment_naming_no_order_of_ours_is_refunded(
    offline: OfflineShop, payload: str
) -> None:
    cid = offline.telegram.user(5003, "Cid")
    await cid.send("/start")
    await cid.wait_for_text("Welcome")

    charge_id = await cid.send_payment(payload, 50)

    await cid.wait_for_text("could not match your payment of 50 ⭐")
    await _refunded(offline, charge_id)
    assert offline.shop is not None
    assert await offline.shop.orders.orders.payment_recorded(charge_id)


async def test_a_payment_for_another_customers_order_is_refunded_and_changes_nothing(
    offline: OfflineShop,
) -> None:
    dan = offline.telegram.user(5004, "Dan")
    invoice = await reach_invoice(offline, dan, TEST_OFFER_ID)
    eve = offline.telegram.user(5005, "Eve")
    await eve.send("/start")
    await eve.wait_for_text("Welcome")

    charge_id = await eve.send_payment(invoice["_payload"], invoice["invoice"]["total_amount"])

    await eve.wait_for_text("could not match your payment")
    await _refunded(offline, charge_id)
    assert offline.shop is not None
    order = await offline.shop.orders.orders.get(int(invoice["_payload"].split(":")[1]))
    assert order is not None and order.status is OrderStatus.AWAITING_PAYMENT
    paid, _ = await dan.pay(invoice)  # Dan can still pay his own order
    assert paid
    await dan.wait_for_text("Your key")


async def test_a_payment_for_an_expired_invoice_is_refunded(offline: OfflineShop) -> None:
    fay = offline.telegram.user(5006, "Fay")
    invoice = await reach_invoice(offline, fay, TEST_OFFER_ID)
    assert offline.shop is not None
    await offline.shop.orders.orders.expire_unpaid("9999-01-01")

    charge_id = await fay.send_payment(invoice["_payload"], invoice["invoice"]["total_amount"])

    await fay.wait_for_text("had expired")
    await _refunded(offline, charge_id)
    assert not offline.sandbox.orders


async def test_a_banned_customers_payment_is_refunded_and_pre_checkout_answered(
    offline: OfflineShop,
) -> None:
    gus = offline.telegram.user(5007, "Gus", username="gus_g")
    invoice = await reach_invoice(offline, gus, TEST_OFFER_ID)
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/user @gus_g")
    await admin.wait_for_text("User 5007")
    await admin.press("Ban")
    await admin.wait_for_text("Banned: yes")

    paid, error = await gus.pay(invoice)
    assert not paid and error is not None and "restricted" in error  # answered, not dropped

    charge_id = await gus.send_payment(invoice["_payload"], invoice["invoice"]["total_amount"])
    await _refunded(offline, charge_id)
    assert not offline.sandbox.orders


# -- 3. middlewares never drop payment updates ---------------------------------------


async def test_a_customer_who_clicks_fast_still_gets_the_payment_through(
    tmp_path: Path,
) -> None:
    shop = OfflineShop(
        tmp_path / "throttle.sqlite3",
        settings_overrides={"throttle_rate": 0.2, "throttle_burst": 3},
        telegram_options={"precheckout_deadline": 5.0},
    )
    await shop.start()
    try:
        hal = shop.telegram.user(5008, "Hal")
        invoice = await reach_invoice(shop, hal, TEST_OFFER_ID)
        for _ in range(5):  # over the burst: these are throttled
            await hal.send("/start")
        await hal.wait_for_text("Too many requests")

        paid, error = await hal.pay(invoice)

        assert paid, error
        await hal.wait_for_text("Your key")
    finally:
        await shop.stop()


# -- 2. one bad Star transaction never jams payment recovery ----------------------------


async def test_recovery_goes_on_past_a_transaction_it_cannot_attach(offline: OfflineShop) -> None:
    """A second charge for a paid order, then a later payment whose update was lost: a
    restart recovers the later one and refunds the second charge."""
    ivy = offline.telegram.user(5009, "Ivy")
    invoice = await reach_invoice(offline, ivy, TEST_OFFER_ID)
    await asyncio.gather(ivy.pay(invoice), ivy.pay(invoice, lose_update=True))
    await ivy.wait_for_text("Your key")
    jon = offline.telegram.user(5010, "Jon")
    await reach_invoice(offline, jon, TEST_OFFER_ID)
    paid, _ = await jon.pay(lose_update=True)
    assert paid

    await offline.restart_bot()  # reconciliation runs at start

    await jon.wait_for_text("Your key")
    lost_second = [c for c in offline.telegram.charges.values() if c.user_id == ivy.id]
    [order] = await _orders(offline, ivy)
    [extra] = [c for c in lost_second if c.charge_id != order.charge_id]
    await _refunded(offline, extra.charge_id)
    assert len(offline.sandbox.orders) == 2


async def test_reconciliation_pages_on_from_where_the_last_pass_stopped(
    offline: OfflineShop,
) -> None:
    for n in range(3):
        user = offline.telegram.user(5020 + n, f"P{n}")
        await reach_invoice(offline, user, TEST_OFFER_ID)
        await user.pay()
        await user.wait_for_text("Your key")
    assert offline.shop is not None
    reconciler = PaymentReconciler(
        offline.shop.bot,
        offline.shop.orders,
        ShopSettingsRepository(offline.shop.db),
        page_size=2,
        overlap=1,
    )
    await reconciler.reconcile()  # the saved offset may already stand past these
    reads = offline.telegram.star_transaction_reads
    reads.clear()
    kim = offline.telegram.user(5030, "Kim")
    await reach_invoice(offline, kim, TEST_OFFER_ID)
    await kim.pay(lose_update=True)

    assert await reconciler.reconcile() == 1

    await kim.wait_for_text("Your key")
    # the newest page tells the order; then on from the saved offset, not the whole history
    assert reads[0][0] == 0 and all(offset >= 2 for offset, _ in reads[1:]), reads
    assert reads[-1][0] + 2 > len(offline.telegram.ledger) >= reads[-1][0]


# -- 4. a key message is never lost to a flood limit -----------------------------------


async def test_the_key_reaches_the_customer_through_a_storm_of_429s(offline: OfflineShop) -> None:
    liv = offline.telegram.user(5011, "Liv")
    await reach_invoice(offline, liv, TEST_OFFER_ID)
    offline.telegram.flood_chat(liv.id, sends=6, retry_after=1)

    await liv.pay()

    delivery = await liv.wait_for_text("Your key", timeout=15)
    [order] = await _orders(offline, liv)
    assert order.delivered_key and order.delivered_key in delivery["text"]
    assert offline.telegram.forced_floods[liv.id][0] == 0


async def test_a_key_message_waiting_out_a_flood_limit_survives_a_crash(
    offline: OfflineShop,
) -> None:
    max_ = offline.telegram.user(5012, "Max")
    await reach_invoice(offline, max_, TEST_OFFER_ID)
    offline.telegram.flood_chat(max_.id, sends=1, retry_after=3)
    await max_.pay()
    await offline.telegram.wait_until(lambda: offline.telegram.forced_floods[max_.id][0] == 0)
    [order] = await _orders(offline, max_)
    assert order.status is OrderStatus.COMPLETED

    await offline.restart_bot(crash=True)

    await max_.wait_for_text("Your key", timeout=10)
    assert sum("Your key" in t for t in max_.texts()) == 1


# -- 9. the database never makes a pre-checkout miss Telegram's deadline ----------------


@pytest.mark.sqlite_only
async def test_pre_checkout_is_answered_while_another_process_holds_the_write_lock(
    offline: OfflineShop,
) -> None:
    """The sqlite3 shell (or a backup) holds the write lock and one of the bot's writes
    waits for it: the pre-checkout still reads the order and answers in time."""
    nia = offline.telegram.user(5013, "Nia")
    await reach_invoice(offline, nia, TEST_OFFER_ID)
    assert offline.shop is not None
    shell = sqlite3.connect(offline.database_path, isolation_level=None)
    shell.execute("BEGIN IMMEDIATE")
    try:
        waiting = asyncio.create_task(offline.shop.users.set_blocked(ADMIN_ID, False))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = time.monotonic()
        paid, error = await nia.pay()
        assert paid, error
        assert time.monotonic() - started < 4.0
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    await waiting
    await nia.wait_for_text("Your key")


async def test_pre_checkout_answers_busy_within_its_deadline_when_the_decision_hangs(
    offline: OfflineShop,
) -> None:
    ola = offline.telegram.user(5014, "Ola")
    await reach_invoice(offline, ola, TEST_OFFER_ID)
    assert offline.shop is not None
    release = asyncio.Event()
    real = offline.shop.orders.pre_checkout

    async def stuck(*args, **kwargs):
        await release.wait()  # storage or the supplier not answering at all
        return await real(*args, **kwargs)

    offline.shop.orders.pre_checkout = stuck  # type: ignore[method-assign]
    started = time.monotonic()
    paid, error = await ola.pay()
    release.set()

    assert not paid and error is not None and "busy" in error  # answered, not timed out
    assert time.monotonic() - started < offline.timings.precheck_deadline + 1.0
    assert not offline.telegram.charges


# -- 10. a price change before the invoice is said ---------------------------------------


async def test_a_price_rise_between_the_card_and_the_invoice_is_said_first(
    offline: OfflineShop,
) -> None:
    pam = offline.telegram.user(5015, "Pam")
    await open_offer(offline, pam, 10_035)
    card = pam.messages[-1]
    shown = int(card["text"].split("Price: ")[1].split(" ⭐")[0])
    offer = offline.sandbox.offers[10_035]
    offline.sandbox.set_price(10_035, offer.price * 2)
    mark = pam.mark()

    await pam.press("Buy for")

    notice = await pam.wait_for_text("The price has changed", since=mark)
    invoice = await offline.telegram.wait_until(
        lambda: next((m for m in pam.messages[mark:] if "invoice" in m), None)
    )
    new = invoice["invoice"]["total_amount"]
    assert new > shown
    assert f"{new} ⭐" in notice["text"] and f"{shown} ⭐" in notice["text"]
    assert pam.messages.index(notice) < pam.messages.index(invoice)


async def test_an_unchanged_price_goes_straight_to_the_invoice(offline: OfflineShop) -> None:
    quy = offline.telegram.user(5016, "Quy")
    mark = quy.mark()
    await reach_invoice(offline, quy, 10_035)
    assert not any("price has changed" in t for t in quy.texts()[mark:])


@pytest.fixture
async def slow_topups(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    shop = OfflineShop(tmp_path / "shop.sqlite3", sandbox_config=SandboxConfig(topup_seconds=0.6))
    await shop.start()
    yield shop
    await shop.stop()


async def test_a_price_change_on_the_confirmation_screen_is_said_before_the_invoice(
    slow_topups: OfflineShop,
) -> None:
    offline = slow_topups
    rex = offline.telegram.user(5017, "Rex")
    await open_offer(offline, rex, 10_010)
    await rex.press("Buy for")
    await rex.wait_for_text("Send your player ID")
    await rex.send("12345678")
    await rex.wait_for_text("Choose your game server")
    await rex.press("Europe")
    await rex.wait_for_text("Please check your order")
    offline.sandbox.set_price(10_010, offline.sandbox.offers[10_010].price * Decimal(3))
    mark = rex.mark()

    await rex.press("Pay")

    await rex.wait_for_text("The price has changed", since=mark)


async def test_a_key_held_by_a_flood_limit_goes_out_before_the_broadcast_resumes(
    tmp_path: Path,
) -> None:
    from tests.e2e.test_mass_sending import _copies, _customers, _start_broadcast

    shop = OfflineShop(tmp_path / "priority.sqlite3", settings_overrides={"broadcast_rate": 10.0})
    await shop.start()
    try:
        await _customers(shop, 40)
        await _start_broadcast(shop)
        await shop.telegram.wait_until(lambda: len(_copies(shop, "Big sale")) >= 5)
        uma = shop.telegram.user(5018, "Uma")
        await reach_invoice(shop, uma, TEST_OFFER_ID)
        shop.telegram.flood_chat(uma.id, sends=1, retry_after=2)  # Telegram says: wait 2 s

        await uma.pay()
        await shop.telegram.wait_until(lambda: shop.telegram.forced_floods[uma.id][0] == 0)
        copies_at_429 = sum(_copies(shop, "Big sale").values())
        await uma.wait_for_text("Your key")
        copies_at_key = sum(_copies(shop, "Big sale").values())

        assert copies_at_key - copies_at_429 <= 1  # at most one already under way
        admin = shop.telegram.user(ADMIN_ID, "Owner")
        await admin.wait_for_text("Broadcast #1 done", timeout=30)
    finally:
        await shop.stop()


async def test_a_lost_payment_is_recovered_before_its_invoice_can_expire(tmp_path: Path) -> None:
    """The bot was down past the invoice lifetime: at start, reconciliation places the
    order before the expiry job could refuse the payment as late."""
    shop = OfflineShop(
        tmp_path / "late.sqlite3", settings_overrides={"orders": {"invoice_ttl_minutes": 0.001}}
    )
    await shop.start()
    try:
        vic = shop.telegram.user(5019, "Vic")
        await reach_invoice(shop, vic, TEST_OFFER_ID)
        paid, _ = await vic.pay(lose_update=True)
        assert paid
        await shop.stop_bot(crash=True)
        await asyncio.sleep(0.2)  # past the invoice lifetime

        await shop.start_bot()

        await vic.wait_for_text("Your key")
        assert not any(c.refunded for c in shop.telegram.charges.values())
    finally:
        await shop.stop()
