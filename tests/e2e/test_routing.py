"""One good, two sources: GamesDrop's "Steam Wallet / 5 USD" (offer 10034) and CodeGames'
(offer 2062) are linked by name and amount. The real bot buys at the cheapest source in
stock, falls over to the other when the first refuses after payment, never while an
outcome is unknown, and refunds once when nobody can deliver."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from storage.orders import Order, OrderStatus
from tests.e2e.journeys import buy_offer_ref, only_order, open_offer_ref

GD_OFFER = 10034  # GamesDrop: Steam Wallet / 5 USD, a key at once
CG_OFFER = "2062"  # CodeGames: the same good; PROCESSING, then the key from /offers/keys
CENT = Decimal("0.01")


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    offline = OfflineShop(
        tmp_path / "shop.sqlite3",
        vendors=("gamesdrop", "codegames"),
        sandbox_options={"codegames": {"process_seconds": 0.3}},
    )
    await offline.start()
    yield offline
    await offline.stop()


def _gd(shop: OfflineShop):
    return shop.sandboxes["gamesdrop"]


def _cg(shop: OfflineShop):
    return shop.sandboxes["codegames"]


def same_stars_prices(shop: OfflineShop) -> tuple[Decimal, Decimal]:
    """Two USD prices a cent apart that sell for the same Stars: GamesDrop stays the cheaper
    source, and CodeGames can still deliver what a customer paid for at GamesDrop's price."""
    assert shop.shop is not None
    book = shop.shop.orders.pricing.book
    price = Decimal("5.00")
    while book.stars(price, "USD") != book.stars(price + CENT, "USD"):
        price += CENT
    return price, price + CENT


def price_both(shop: OfflineShop) -> tuple[Decimal, Decimal]:
    cheap, dear = same_stars_prices(shop)
    _gd(shop).set_price(GD_OFFER, cheap)
    _cg(shop).set_price(CG_OFFER, dear)
    return cheap, dear


async def _events(shop: OfflineShop, order: Order) -> str:
    assert shop.shop is not None
    return "\n".join(e.detail or "" for e in await shop.shop.orders.orders.events(order.id))


def _cg_orders(shop: OfflineShop) -> int:
    return len(_cg(shop).orders)


async def test_the_cheapest_source_in_stock_sells_whichever_offer_was_opened(
    shop: OfflineShop,
) -> None:
    """The customer opens CodeGames' offer; GamesDrop has the same good cheaper: the card
    shows GamesDrop's price and the order is bought there. No supplier is named."""
    user = shop.telegram.user(7401, "U7401")
    mark = user.mark()
    await open_offer_ref(shop, user, "c", CG_OFFER)
    assert shop.shop is not None
    cheapest = shop.shop.orders.pricing.book.stars(Decimal("5.15"), "USD")
    card = user.messages[-1]["_raw_text"]
    assert f"{cheapest} ⭐" in card or f"{cheapest}⭐" in card or str(cheapest) in card
    await user.press("Buy for")
    await shop.telegram.wait_until(lambda: any("invoice" in m for m in user.messages[mark:]))
    assert (await user.pay())[0]

    await user.wait_for_text("Your key", timeout=15)

    order = await only_order(shop, user.id)
    assert order.status is OrderStatus.COMPLETED and order.supplier == "gamesdrop"
    assert order.stars == cheapest and _cg_orders(shop) == 0
    seen = " ".join(m.get("_raw_text", "") for m in user.messages).lower()
    assert "gamesdrop" not in seen and "codegames" not in seen


@pytest.mark.parametrize("refusal", ["OUT_OF_STOCK", "OFFER_NOT_FOUND", "INSUFFICIENT_BALANCE"])
async def test_a_refusal_after_payment_sends_the_order_to_the_next_source(
    shop: OfflineShop, refusal: str
) -> None:
    price_both(shop)
    _gd(shop).faults.create_refusals.append(refusal)

    user = await buy_offer_ref(shop, 7410, "g", str(GD_OFFER))

    await user.wait_for_text("Your key", timeout=15)
    order = await only_order(shop, user.id)
    assert order.status is OrderStatus.COMPLETED and order.supplier == "codegames"
    assert order.transaction_id.endswith("-c")
    events = await _events(shop, order)
    assert f"gamesdrop:{GD_OFFER} refused ({refusal}" in events
    assert f"next source codegames:{CG_OFFER}" in events
    assert shop.telegram.method_calls["refundStarPayment"] == 0
    assert not any("refund" in text.lower() for text in user.texts())


async def test_a_price_rise_at_one_source_routes_the_order_to_another(shop: OfflineShop) -> None:
    """GamesDrop's price rises past what the customer paid between pre-checkout and the
    order: WRONG_PRICE, re-priced beyond the fit, bought at CodeGames instead."""
    price_both(shop)
    _gd(shop).faults.price_rises[GD_OFFER] = Decimal("9.99")

    user = await buy_offer_ref(shop, 7420, "g", str(GD_OFFER))

    await user.wait_for_text("Your key", timeout=15)
    order = await only_order(shop, user.id)
    assert order.status is OrderStatus.COMPLETED and order.supplier == "codegames"
    assert "refused (WRONG_PRICE" in await _events(shop, order)
    assert shop.telegram.method_calls["refundStarPayment"] == 0


async def test_an_unknown_outcome_is_resolved_before_any_other_source_is_tried(
    shop: OfflineShop,
) -> None:
    """GamesDrop makes the order but the answer is a 500: the outcome is unknown. The
    shop asks GamesDrop, finds the order and delivers it; CodeGames is never asked to
    make a second one."""
    price_both(shop)
    _gd(shop).faults.create_unavailable_after_making = 1

    user = await buy_offer_ref(shop, 7430, "g", str(GD_OFFER))

    await user.wait_for_text("Your key", timeout=15)
    order = await only_order(shop, user.id)
    assert order.status is OrderStatus.COMPLETED and order.supplier == "gamesdrop"
    assert _cg_orders(shop) == 0
    assert shop.telegram.method_calls["refundStarPayment"] == 0


async def test_only_an_attempt_proven_absent_frees_the_order_for_the_next_source(
    tmp_path: Path,
) -> None:
    """Every create-order at GamesDrop answers 500 without making anything. While the
    outcome is unknown no other source is tried; once GamesDrop has said for
    ``absent_for`` that it has no such order, CodeGames delivers it."""
    from bot.offline import fast_timings

    timings = fast_timings()
    object.__setattr__(timings, "absent_for", 4.0)
    shop = OfflineShop(
        tmp_path / "shop.sqlite3",
        vendors=("gamesdrop", "codegames"),
        sandbox_options={"codegames": {"process_seconds": 0.3}},
        timings=timings,
    )
    await shop.start()
    try:
        price_both(shop)
        _gd(shop).faults.create_unavailable = 1000

        user = await buy_offer_ref(shop, 7440, "g", str(GD_OFFER))

        await shop.telegram.wait_until(lambda: _gd(shop).calls.get("/api/v1/offers/order-status"))
        order = await only_order(shop, user.id)
        assert order.status is OrderStatus.UNKNOWN and _cg_orders(shop) == 0

        await user.wait_for_text("Your key", timeout=20)
        order = await only_order(shop, user.id)
        assert order.status is OrderStatus.COMPLETED and order.supplier == "codegames"
        assert not _gd(shop).orders
        assert f"gamesdrop:{GD_OFFER} absent (NOT_PLACED" in await _events(shop, order)
    finally:
        await shop.stop()


async def test_when_every_source_refuses_the_charge_is_refunded_once(shop: OfflineShop) -> None:
    price_both(shop)
    _gd(shop).faults.create_refusals.append("OUT_OF_STOCK")
    _cg(shop).remove_offer(CG_OFFER)  # gone by the time the order fails over

    user = await buy_offer_ref(shop, 7450, "g", str(GD_OFFER))

    await user.wait_for_text("were refunded", timeout=15)
    await shop.settle()
    order = await only_order(shop, user.id)
    assert order.status is OrderStatus.REFUNDED and _cg_orders(shop) == 0
    assert shop.telegram.method_calls["refundStarPayment"] == 1


async def test_a_disabled_supplier_gets_no_new_orders_and_admins_switch_it_back(
    shop: OfflineShop,
) -> None:
    price_both(shop)
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/sources")
    await admin.wait_for_text("Sources")
    await admin.press("⛔ gamesdrop")
    await admin.wait_for_text("disabled")

    user = await buy_offer_ref(shop, 7460, "g", str(GD_OFFER))

    await user.wait_for_text("Your key", timeout=15)
    assert (await only_order(shop, user.id)).supplier == "codegames"
    assert not _gd(shop).orders

    await admin.press("✅ gamesdrop")
    await admin.wait_for_text("✅ gamesdrop: enabled")
    buyer = await buy_offer_ref(shop, 7461, "g", str(GD_OFFER))
    await buyer.wait_for_text("Your key", timeout=15)
    assert (await only_order(shop, buyer.id)).supplier == "gamesdrop"


async def test_admins_link_and_unlink_offers_and_the_link_survives_a_sync(
    shop: OfflineShop,
) -> None:
    """CodeGames' "PUBG / 60 UC" top-up and GamesDrop's "PUBG Mobile / 60 UC" are alike but not
    matched automatically: /links shows the pair, /link joins them, a re-sync keeps the
    link, /unlink parts them again."""
    assert shop.shop is not None
    routing = shop.shop.orders.routing
    gd_pubg = next(
        o for o in _gd(shop).offers.values()
        if o.product_name == "PUBG Mobile" and o.offer_name == "60 UC"
    )  # fmt: skip
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    mark = admin.mark()
    await admin.send("/links")
    review = await admin.wait_for_text("Matches to review", since=mark)
    assert f"/link c:2071 g:{gd_pubg.offer_id}" in review["_raw_text"]

    await admin.send(f"/link c:2061 g:{gd_pubg.offer_id}")  # CodeGames' 2061 is a key
    await admin.wait_for_text("not the same kind of good", since=mark)
    await admin.send(f"/link c:2071 g:{gd_pubg.offer_id}")
    await admin.wait_for_text("Linked", since=mark)
    assert len(await routing.linked("codegames", "2071")) == 2

    await shop.shop.catalogue.sync_all()
    assert len(await routing.linked("codegames", "2071")) == 2
    assert len(await routing.linked("gamesdrop", str(gd_pubg.offer_id))) == 2

    await admin.send("/unlink c:2071")
    await admin.wait_for_text("a good of its own", since=mark)
    assert len(await routing.linked("codegames", "2071")) == 1
    assert len(await routing.linked("gamesdrop", "10034")) == 2  # others untouched

    await admin.send("/link c:2071 c:2062")
    await admin.wait_for_text("of one supplier", since=mark)


async def test_stats_and_the_export_show_the_supplier_cost_and_margin_of_every_order(
    shop: OfflineShop,
) -> None:
    price_both(shop)
    _gd(shop).faults.create_refusals.append("OUT_OF_STOCK")
    first = await buy_offer_ref(shop, 7470, "g", str(GD_OFFER))  # fails over to CodeGames
    await first.wait_for_text("Your key", timeout=15)
    second = await buy_offer_ref(shop, 7471, "g", str(GD_OFFER))  # GamesDrop
    await second.wait_for_text("Your key", timeout=15)
    assert shop.shop is not None
    orders = {o.supplier: o for o in [await only_order(shop, 7470), await only_order(shop, 7471)]}
    assert set(orders) == {"codegames", "gamesdrop"}
    star_usd = shop.shop.orders.pricing.book.star_usd

    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Stats")
    stats = (await admin.wait_for_text("Stats: today"))["_raw_text"]
    for name, order in orders.items():
        cost = order.cost_usd.quantize(CENT, ROUND_HALF_UP)
        revenue = (order.stars * star_usd).quantize(CENT, ROUND_HALF_UP)
        assert (
            f"{name}: 1 · cost {cost} USD · revenue {revenue} USD · margin {revenue - cost} USD"
            in stats
        )

    await admin.press("Back")
    await admin.wait_for_text("What do you want")
    await admin.press("Export CSV")
    await shop.telegram.wait_until(lambda: shop.telegram.documents)
    [content] = shop.telegram.documents.values()
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert {(int(r["order_id"]), r["supplier"]) for r in rows} == {
        (o.id, name) for name, o in orders.items()
    }
