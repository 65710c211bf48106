"""Loyalty in real Telegram Stars, through the real bot, the fake Bot API and the
GamesDrop sandbox: referrals, cashback, withdrawals in Stars packs, refunds that take
rewards back, promo codes, failed deliveries and restarts mid-payout."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import SandboxConfig
from sandboxes.telegram import FakeUser
from storage.orders import OrderStatus
from tests.e2e.journeys import reach_invoice

STEAM_5 = 10_034  # Steam Wallet 5 USD: a key, no player ID
STEAM_10 = 10_035
STEAM_20 = 10_036
PUBG_325 = 10_002  # a top-up: player ID, then the confirmation step
CASHBACK, REFERRAL = 10, 12
CREATE_ORDER = "/api/v1/offers/create-order"


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    offline = OfflineShop(
        tmp_path / "loyalty.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.6),
        telegram_options={"precheckout_deadline": 5.0},
        settings_overrides={
            "loyalty": {"cashback_percent": CASHBACK, "referral_percent": REFERRAL}
        },
    )
    await offline.start()
    yield offline
    await offline.stop()


async def _buy(offline: OfflineShop, user: FakeUser, offer_id: int) -> dict:
    """Buy a key offer; returns the invoice paid."""
    invoice = await reach_invoice(offline, user, offer_id)
    mark = user.mark()
    paid, error = await user.pay(invoice)
    assert paid, error
    await user.wait_for_text("Your key", since=mark)
    return invoice


async def _rewards(offline: OfflineShop, user: FakeUser) -> str:
    await offline.settle()
    mark = user.mark()
    await user.send("/rewards")
    screen = await user.wait_for_text("Rewards", since=mark)
    return str(screen["text"])


def _balance(screen: str) -> int:
    match = re.search(r"Balance: (\d+) ⭐", screen)
    assert match, screen
    return int(match.group(1))


async def _refund(offline: OfflineShop, order_id: int, customer: FakeUser) -> None:
    """An admin refunds a delivered order; the customer hears Telegram confirmed it."""
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    mark = admin.mark()
    await admin.send(f"/refund {order_id}")
    await admin.wait_for_text(f"Refund order #{order_id}", since=mark)
    await admin.press("Yes, refund")
    await customer.wait_for_text("were refunded")


async def _withdraw(offline: OfflineShop, user: FakeUser) -> dict:
    """Open the Rewards screen and press Withdraw; returns the bot's answer."""
    await _rewards(offline, user)
    mark = user.mark()
    await user.press("Withdraw")
    return await user.wait_for_text("Withdrawal of", since=mark)


def _stars_orders(offline: OfflineShop, user: FakeUser) -> list:
    return [o for o in offline.sandbox.orders.values() if o.game_user_id == str(user.id)]


async def test_a_referred_customer_buys_and_the_referrer_withdraws_real_stars(
    shop: OfflineShop,
) -> None:
    ann = shop.telegram.user(1_000_101, "Ann")
    screen = await _rewards(shop, ann)
    code = re.search(r"start=ref_([a-z0-9]+)", screen)
    assert code, screen
    assert _balance(screen) == 0
    bob = shop.telegram.user(1_000_102, "Bob")
    await bob.send(f"/start ref_{code.group(1)}")
    await bob.wait_for_text("You came with a friend's invitation")

    invoice = await _buy(shop, bob, STEAM_5)

    paid = invoice["invoice"]["total_amount"]
    share = paid * REFERRAL // 100
    assert share >= 50  # enough for the smallest Stars pack
    screen = await _rewards(shop, ann)
    assert _balance(screen) == share
    assert "Friends invited: 1" in screen
    assert _balance(await _rewards(shop, bob)) == paid * CASHBACK // 100
    started = await _withdraw(shop, ann)
    assert "50 ⭐" in started["text"]
    await ann.wait_for_text("50 Telegram Stars from your rewards were sent", timeout=15)

    [order] = _stars_orders(shop, ann)
    assert order.offer.stars_amount == 50 and order.transaction_id == "shop-y1-p0"
    assert _balance(await _rewards(shop, ann)) == share - 50
    mark = ann.mark()
    await ann.press("Withdraw")  # what is left is under the smallest pack: nothing is ordered
    refused = await ann.wait_for_text("withdrawals start from 50", since=mark)
    assert f"Your balance is {share - 50} ⭐" in refused["text"]
    assert len(_stars_orders(shop, ann)) == 1


async def test_self_referral_and_loops_are_refused_and_a_referral_is_forever(
    shop: OfflineShop,
) -> None:
    ann, bob, cid = (shop.telegram.user(1_000_111 + i, name) for i, name in enumerate("ABC"))
    codes = {}
    for user in (ann, bob, cid):
        codes[user.id] = re.search(r"start=ref_([a-z0-9]+)", await _rewards(shop, user)).group(1)  # type: ignore[union-attr]
    for user, link, answer in (
        (ann, codes[ann.id], "your own invitation link"),
        (bob, codes[ann.id], "You came with a friend's invitation"),
        (ann, codes[bob.id], "cannot be invited by a friend you invited"),
        (bob, codes[cid.id], "already came with an invitation"),
        (cid, "nosuchcode", "not valid"),
    ):
        mark = user.mark()
        await user.send(f"/start ref_{link}")
        await user.wait_for_text(answer, since=mark)
    member = await shop.shop.loyalty.repo.member(bob.id)
    assert member is not None and member.referrer_id == ann.id


async def test_a_refund_takes_the_cashback_and_the_referral_share_back(
    shop: OfflineShop,
) -> None:
    ann = shop.telegram.user(1_000_121, "Ann")
    code = re.search(r"start=ref_([a-z0-9]+)", await _rewards(shop, ann)).group(1)  # type: ignore[union-attr]
    carl = shop.telegram.user(1_000_122, "Carl")
    await carl.send(f"/start ref_{code}")
    await carl.wait_for_text("friend's invitation")
    invoice = await _buy(shop, carl, STEAM_5)
    assert _balance(await _rewards(shop, carl)) == invoice["invoice"]["total_amount"] // 10
    assert _balance(await _rewards(shop, ann)) > 0
    [order] = (await shop.shop.orders.orders.list_for_user(carl.id, 0, 5))[0]

    await _refund(shop, order.id, carl)

    assert _balance(await _rewards(shop, carl)) == 0
    assert _balance(await _rewards(shop, ann)) == 0
    ledger = await shop.shop.loyalty.repo.ledger()
    kinds = Counter(entry.kind for entry in ledger)
    assert kinds == {"cashback": 1, "referral": 1, "reversal": 2}
    await shop.settle()
    assert len(await shop.shop.loyalty.repo.ledger()) == 4  # taken back once


async def test_a_promo_code_is_applied_exhausted_refused_and_released_by_a_refund(
    shop: OfflineShop,
) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/promo_new SAVE10 10% uses=1")
    await admin.wait_for_text("Promo code SAVE10 created")
    dan = shop.telegram.user(1_000_131, "Dan")
    await dan.send("/start promo_SAVE10")
    await dan.wait_for_text("Promo code SAVE10 applied: 10% off")
    eve = shop.telegram.user(1_000_132, "Eve")
    await eve.send("/promo SAVE10")  # kept for her next invoice; Dan pays first
    await eve.wait_for_text("Promo code SAVE10 applied")

    invoice = await _buy(shop, dan, STEAM_5)

    stars = invoice["invoice"]["total_amount"]
    [order] = (await shop.shop.orders.orders.list_for_user(dan.id, 0, 5))[0]
    assert order.promo_code == "SAVE10" and order.discount_stars == order.list_stars // 10
    assert stars == order.list_stars - order.discount_stars
    assert f"discount −{order.discount_stars} ⭐ (SAVE10)" in invoice["invoice"]["description"]
    mark = eve.mark()
    full = await reach_invoice(shop, eve, STEAM_5)
    await eve.wait_for_text("Promo code SAVE10 has been used up", since=mark)
    assert full["invoice"]["total_amount"] == order.list_stars
    mark = eve.mark()
    await eve.send("/promo save10")
    await eve.wait_for_text("Promo code SAVE10 has been used up", since=mark)
    member = await shop.shop.loyalty.repo.member(eve.id)
    assert member is not None and member.promo_code is None  # a refused code is not kept
    mark = eve.mark()
    await eve.send("/promo NOPE")
    await eve.wait_for_text("There is no promo code NOPE", since=mark)

    await _refund(shop, order.id, dan)
    mark = eve.mark()
    await eve.send("/promo SAVE10")
    await eve.wait_for_text("Promo code SAVE10 applied", since=mark)


async def test_a_code_paused_after_the_invoice_is_refused_at_pre_checkout(
    shop: OfflineShop,
) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/promo_new FIXED20 20")
    await admin.wait_for_text("Promo code FIXED20 created")
    fay = shop.telegram.user(1_000_141, "Fay")
    await fay.send("/promo FIXED20")
    await fay.wait_for_text("20 ⭐ off")
    invoice = await reach_invoice(shop, fay, STEAM_5)
    await admin.send("/promo_pause FIXED20")
    await admin.wait_for_text("paused")

    paid, error = await fay.pay(invoice)

    assert not paid and error is not None and "paused" in error
    assert not shop.sandbox.orders


async def test_the_balance_is_spent_as_a_discount_and_comes_back_when_refunded(
    shop: OfflineShop,
) -> None:
    gus = shop.telegram.user(1_000_151, "Gus")
    first = await _buy(shop, gus, STEAM_5)
    earned = first["invoice"]["total_amount"] * CASHBACK // 100
    assert _balance(await _rewards(shop, gus)) == earned
    await gus.press("Spend balance")
    await gus.wait_for_text("taken off your next purchase")

    second = await _buy(shop, gus, STEAM_5)

    assert second["invoice"]["total_amount"] == first["invoice"]["total_amount"] - earned
    orders = (await shop.shop.orders.orders.list_for_user(gus.id, 0, 5))[0]
    latest = orders[0]
    assert latest.discount_stars == earned
    assert _balance(await _rewards(shop, gus)) == latest.stars * CASHBACK // 100
    await _refund(shop, latest.id, gus)
    assert _balance(await _rewards(shop, gus)) == earned  # the spent balance came back


async def test_a_payout_whose_delivery_fails_is_returned_to_the_balance(
    shop: OfflineShop,
) -> None:
    hal = shop.telegram.user(1_000_004, "Hal")  # the sandbox fails Stars to this id
    invoice = await _buy(shop, hal, STEAM_10)
    earned = invoice["invoice"]["total_amount"] * CASHBACK // 100
    assert earned >= 50

    await _withdraw(shop, hal)

    failed = await hal.wait_for_text("could not be delivered", timeout=15)
    assert "blocked the delivery bot" in failed["text"] and "back on your rewards" in failed["text"]
    assert _balance(await _rewards(shop, hal)) == earned
    kinds = Counter(e.kind for e in await shop.shop.loyalty.repo.ledger(hal.id))
    assert kinds == {"cashback": 1, "payout": 1, "payout_return": 1}
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    alert = await admin.wait_for_text("Loyalty payout #1")
    assert "50 Stars not delivered" in alert["text"] and "bot was blocked" in alert["text"]


async def test_restarting_mid_payout_never_pays_twice(shop: OfflineShop) -> None:
    ivy = shop.telegram.user(1_000_161, "Ivy")
    invoice = await _buy(shop, ivy, STEAM_20)
    earned = invoice["invoice"]["total_amount"] * CASHBACK // 100
    assert earned >= 150
    shop.sandbox.faults.create_latency = 0.5  # the crash comes while create-order is answered

    creates = shop.sandbox.calls.get(CREATE_ORDER, 0)

    await _withdraw(shop, ivy)
    await shop.sandbox.wait_calls(CREATE_ORDER, creates + 1)  # the supplier has it
    assert not any("rewards were sent" in t for t in ivy.texts())  # the crash is mid-payout
    await shop.stop_bot(crash=True)
    shop.sandbox.faults.create_latency = 0
    await shop.start_bot()
    done = await ivy.wait_for_text("from your rewards were sent", timeout=20)

    orders = _stars_orders(shop, ivy)
    per_transaction = Counter(o.transaction_id for o in orders)
    assert set(per_transaction.values()) == {1}
    paid = sum(o.offer.stars_amount for o in orders)
    assert f"{paid} Telegram Stars" in done["text"]
    assert paid == earned // 50 * 50  # packs of 50, 100, 500, 1000
    assert _balance(await _rewards(shop, ivy)) == earned - paid
    parts = await shop.shop.db.fetchall("SELECT status FROM loyalty_payout_parts")
    assert {row["status"] for row in parts} == {"completed"}
    assert sum("from your rewards were sent" in t for t in ivy.texts()) == 1, ivy.texts()


async def test_admins_see_liabilities_and_get_every_ledger_row_as_csv(shop: OfflineShop) -> None:
    jo = shop.telegram.user(1_000_171, "Jo")
    invoice = await _buy(shop, jo, STEAM_10)
    await _withdraw(shop, jo)
    await jo.wait_for_text("from your rewards were sent", timeout=15)
    earned = invoice["invoice"]["total_amount"] * CASHBACK // 100

    admin = shop.telegram.user(ADMIN_ID, "Owner")
    mark = admin.mark()
    await admin.send("/loyalty")
    screen = await admin.wait_for_text("Loyalty liabilities", since=mark)

    assert f"Owed: {earned - 50} ⭐" in screen["text"]
    assert "Paid out: 50 ⭐" in screen["text"] and "supplier cost" in screen["text"]
    await admin.press("CSV")
    report = await shop.telegram.wait_until(
        lambda: next(
            (b for n, b in shop.telegram.documents.items() if b.startswith(b"\xef\xbb\xbfid,")),
            None,
        )
    )
    text = report.decode("utf-8-sig")
    assert "cashback" in text and "payout" in text
    orders = await shop.shop.orders.orders.list_for_user(jo.id, 0, 5)
    assert orders[0][0].status is OrderStatus.COMPLETED


async def test_a_code_typed_at_the_confirmation_step_discounts_that_invoice(
    shop: OfflineShop,
) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await admin.send('/promo_new GIFTS 10% category="Gift Cards"')
    await admin.wait_for_text("Promo code GIFTS created")
    await admin.send('/promo_new TOPUP 10% category="Top Up" per_user=1')
    await admin.wait_for_text("Promo code TOPUP created")
    kim = shop.telegram.user(1_000_181, "Kim")
    mark = kim.mark()
    await kim.send(f"/start offer_{PUBG_325}")
    await kim.wait_for_text("⭐", since=mark)
    await kim.press("Buy for")
    await kim.wait_for_text("Send your player ID", since=mark)
    await kim.send("12345678")
    await kim.wait_for_text("Please check your order", since=mark)
    await kim.press("Promo code")
    await kim.wait_for_text("it applies to this order", since=mark)
    await kim.send("gifts")
    await kim.wait_for_text("Promo code GIFTS does not apply to this product", since=mark)
    await kim.send("topup")
    applied = await kim.wait_for_text("Promo code TOPUP applied", since=mark)
    old, new = map(int, re.findall(r"(\d+) ⭐", applied["text"]))
    assert new == old - old * 10 // 100

    await kim.press("Pay")
    invoice = await shop.telegram.wait_until(
        lambda: next((m for m in kim.messages[mark:] if "invoice" in m), None)
    )
    assert invoice["invoice"]["total_amount"] == new
    assert "(TOPUP)" in invoice["invoice"]["description"]
    paid, error = await kim.pay(invoice)
    assert paid, error
    await kim.wait_for_text("is complete", timeout=15)
    mark = kim.mark()
    await kim.send("/promo TOPUP")
    await kim.wait_for_text("You have already used promo code TOPUP", since=mark)


async def test_rewards_are_paid_out_automatically_when_the_owner_says_so(tmp_path: Path) -> None:
    offline = OfflineShop(
        tmp_path / "auto.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.6),
        settings_overrides={"loyalty": {"cashback_percent": CASHBACK, "auto_payout": True}},
    )
    await offline.start()
    try:
        lou = offline.telegram.user(1_000_191, "Lou")
        await _buy(offline, lou, STEAM_10)
        await lou.wait_for_text("50 Telegram Stars from your rewards were sent", timeout=15)
        assert [o.offer.stars_amount for o in _stars_orders(offline, lou)] == [50]
        payout = await offline.shop.loyalty.repo.payout(1)
        assert payout is not None and payout.trigger == "auto"
    finally:
        await offline.stop()


async def test_two_customers_cannot_both_be_invoiced_for_the_last_use_of_a_code(
    shop: OfflineShop,
) -> None:
    """An unpaid invoice holds its code's use: a second customer is told the code is used
    up and invoiced at full price, so the code never goes past its limit."""
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/promo_new LAST1 10% uses=1")
    await admin.wait_for_text("Promo code LAST1 created")
    dan, eve = shop.telegram.user(1_000_151, "Dan"), shop.telegram.user(1_000_152, "Eve")
    for user in (dan, eve):
        await user.send("/promo LAST1")
        await user.wait_for_text("Promo code LAST1 applied")

    dans = await reach_invoice(shop, dan, STEAM_5)
    mark = eve.mark()
    eves = await reach_invoice(shop, eve, STEAM_5)

    await eve.wait_for_text("Promo code LAST1 has been used up", since=mark)
    assert eves["invoice"]["total_amount"] > dans["invoice"]["total_amount"]
    assert (await dan.pay(dans))[0] and (await eve.pay(eves))[0]
    await shop.settle()
    assert shop.shop is not None
    assert await shop.shop.loyalty.repo.promo_uses("LAST1") == 1
