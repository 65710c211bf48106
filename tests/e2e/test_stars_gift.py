"""Gifting Telegram Stars by @username, end to end through the fake Bot API and the sandbox."""

from __future__ import annotations

import pytest

from bot.offline import OfflineShop
from sandboxes.gamesdrop import STARS_OFFER_IDS
from storage.orders import OrderStatus


async def _choose_pack(offline: OfflineShop, user, amount: int = 100) -> None:
    await user.send("/stars")
    await user.wait_for_text("Choose how many Stars")
    await user.press(f"{amount} Stars")
    await user.wait_for_text("Who gets")


async def _change_recipient(offline: OfflineShop, user) -> None:
    asked = sum("Who gets" in text for text in user.texts())
    await user.press("Change recipient")
    await offline.telegram.wait_until(lambda: sum("Who gets" in t for t in user.texts()) > asked)


async def _pay_and_wait(offline: OfflineShop, user, since: int = 0) -> None:
    await user.wait_for_text("You are gifting", since=since)
    await user.press("Pay")
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in user.messages[-2:]))
    paid, error = await user.pay()
    assert paid, error


@pytest.mark.parametrize(
    "typed", ["@alice_gamer", "alice_gamer", "t.me/alice_gamer", "https://t.me/alice_gamer"]
)
async def test_gift_by_username_in_every_format(offline: OfflineShop, typed: str) -> None:
    vera = offline.telegram.user(2001, "Vera")
    await _choose_pack(offline, vera)
    await vera.send(typed)
    found = await vera.wait_for_text("Recipient:")
    assert "Alice (@alice_gamer)" in found["text"]
    await _pay_and_wait(offline, vera)

    delivered = await vera.wait_for_text("Telegram Stars were sent")

    assert "100 Telegram Stars" in delivered["text"] and "@alice_gamer" in delivered["text"]
    [order] = offline.sandbox.orders.values()
    assert order.offer.offer_id == STARS_OFFER_IDS[100]
    assert order.game_user_id == "1000002"  # the numeric id the supplier resolved


async def test_gift_by_numeric_id_forward_and_contact_picker(offline: OfflineShop) -> None:
    vera = offline.telegram.user(2002, "Vera")
    await _choose_pack(offline, vera, 50)
    await vera.send("1000003")
    await vera.wait_for_text("to 1000003")
    await _change_recipient(offline, vera)
    mark = vera.mark()
    await vera.forward_from(
        {"id": 1000001, "is_bot": False, "first_name": "Pavel", "username": "durov"}
    )
    await vera.wait_for_text("to Pavel (@durov)", since=mark)
    await _change_recipient(offline, vera)
    mark = vera.mark()
    await vera.share_user(1000002, "Alice", "alice_gamer")
    await _pay_and_wait(offline, vera, since=mark)
    await vera.wait_for_text("Telegram Stars were sent")
    [order] = offline.sandbox.orders.values()
    assert order.game_user_id == "1000002"


async def test_hidden_forward_and_gibberish_are_explained(offline: OfflineShop) -> None:
    vera = offline.telegram.user(2003, "Vera")
    await _choose_pack(offline, vera)
    await vera.forward_from(None)
    await vera.wait_for_text("hides their account")
    await vera.send("hello world")
    await vera.wait_for_text("does not look like")
    assert not offline.sandbox.orders


async def test_a_username_without_id_tells_exactly_what_to_do_and_can_be_retried(
    offline: OfflineShop,
) -> None:
    vera = offline.telegram.user(2004, "Vera")
    await _choose_pack(offline, vera)
    await vera.send("@shy_sam")
    told = await vera.wait_for_text("Ask them to open this link")
    assert "t.me/game_shop_bot?start=gift_" in told["text"]
    assert "gamesdrop" not in told["text"].lower()  # never the supplier's bot
    offline.sandbox.config.telegram_accounts[6].user_id = 1_000_077  # shy_sam starts the bot
    await vera.send("@shy_sam")
    await vera.wait_for_text("Recipient: @shy_sam")


async def test_gift_to_myself(offline: OfflineShop) -> None:
    vera = offline.telegram.user(2005, "Vera", username="vera")
    await _choose_pack(offline, vera)
    await vera.send("🙋 Myself")
    await _pay_and_wait(offline, vera)
    await vera.wait_for_text("Telegram Stars were sent")
    [order] = offline.sandbox.orders.values()
    assert order.game_user_id == "2005"


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("blocked_bob", "has blocked the delivery bot"),
        ("restricted_rita", "cannot receive Stars"),
    ],
)
async def test_each_delivery_failure_is_explained_and_refunded(
    offline: OfflineShop, username: str, reason: str
) -> None:
    vera = offline.telegram.user(2006, "Vera")
    await _choose_pack(offline, vera)
    await vera.send(f"@{username}")
    await _pay_and_wait(offline, vera)

    failed = await vera.wait_for_text("could not be completed")
    await vera.wait_for_text("were refunded")

    assert reason in failed["text"]
    [charge] = offline.telegram.charges.values()
    assert charge.refunded
    assert offline.shop is not None
    orders, _ = await offline.shop.orders.orders.list_for_user(vera.id, 0, 5)
    assert orders[0].status is OrderStatus.REFUNDED


async def test_user_not_found_by_numeric_id_is_refunded(offline: OfflineShop) -> None:
    vera = offline.telegram.user(2007, "Vera")
    await _choose_pack(offline, vera)
    await vera.send("999000001")
    await _pay_and_wait(offline, vera)
    failed = await vera.wait_for_text("could not be completed")
    assert "account was not found" in failed["text"]
    await vera.wait_for_text("were refunded")


async def test_stars_price_follows_the_ton_rate_and_is_rechecked(offline: OfflineShop) -> None:
    from decimal import Decimal

    vera = offline.telegram.user(2008, "Vera")
    await _choose_pack(offline, vera, 1000)
    await vera.send("@alice_gamer")
    confirm = await vera.wait_for_text("You are gifting")
    offline.sandbox.set_ton_rate(Decimal("4.00"))  # Stars got dearer after the confirmation
    await vera.press("Pay")
    invoice = await offline.telegram.wait_until(
        lambda: next((m for m in vera.messages[::-1] if "invoice" in m), None)
    )
    # the invoice carries the price refreshed at "Pay", not the one shown before
    assert invoice["invoice"]["total_amount"] > int(
        confirm["text"].split("Price: ")[1].split(" ")[0]
    )
    paid, _ = await vera.pay()
    assert paid
    await vera.wait_for_text("Telegram Stars were sent")


async def test_typing_while_a_confirmation_waits_for_a_button_gets_a_reminder(
    offline: OfflineShop,
) -> None:
    vera = offline.telegram.user(2009, "Vera")
    await _choose_pack(offline, vera)
    await vera.send("@alice_gamer")
    await vera.wait_for_text("You are gifting")
    await vera.send("hello?")
    await vera.wait_for_text("Use the buttons above")
    assert not offline.sandbox.orders
