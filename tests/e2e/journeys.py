"""Customer steps shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

from bot.offline import OfflineShop
from sandboxes.telegram import FakeUser
from storage.orders import Order


async def open_offer(offline: OfflineShop, user: FakeUser, offer_id: int) -> None:
    """``/start offer_<id>`` and wait for the offer card (its price in ⭐)."""
    mark = user.mark()
    await user.send(f"/start offer_{offer_id}")
    await user.wait_for_text("⭐", since=mark)


async def reach_invoice(
    offline: OfflineShop, user: FakeUser, offer_id: int, player: str | None = None
) -> dict[str, Any]:
    """Open the offer, press Buy, give the player ID and confirm (when ``player`` is
    given); returns the invoice the bot sent."""
    mark = user.mark()
    await open_offer(offline, user, offer_id)
    await user.press("Buy for")
    if player is not None:
        await user.wait_for_text("Send your player ID", since=mark)
        await user.send(player)
        await user.wait_for_text("Please check your order", since=mark)
        await user.press("Pay")
    return await offline.telegram.wait_until(  # type: ignore[no-any-return]
        lambda: next((m for m in user.messages[mark:] if "invoice" in m), None)
    )


async def open_offer_ref(offline: OfflineShop, user: FakeUser, short: str, offer_id: str) -> None:
    """``/start offer_<short>_<id>`` (any vendor's offer) and wait for the offer card."""
    mark = user.mark()
    await user.send(f"/start offer_{short}_{offer_id}")
    await user.wait_for_text("⭐", since=mark)


async def buy_offer_ref(
    shop: OfflineShop, user_id: int, short: str, offer_id: str, player: str | None = None
) -> FakeUser:
    """A new customer opens ``<short>:<offer_id>``, presses Buy (giving ``player`` and
    confirming when given) and pays the invoice; returns the customer."""
    user = shop.telegram.user(user_id, f"U{user_id}")
    mark = user.mark()
    await open_offer_ref(shop, user, short, offer_id)
    await user.press("Buy for")
    if player is not None:
        await user.wait_for_text("Send your player ID", since=mark)
        await user.send(player)
        await user.wait_for_text("Please check your order", since=mark)
        await user.press("Pay")
    await shop.telegram.wait_until(lambda: any("invoice" in m for m in user.messages[mark:]))
    paid, error = await user.pay()
    assert paid, error
    return user


async def only_order(shop: OfflineShop, user_id: int) -> Order:
    """The one order customer ``user_id`` has."""
    assert shop.shop is not None
    [order], _total = await shop.shop.orders.orders.list_for_user(user_id, 0, 5)
    return order
