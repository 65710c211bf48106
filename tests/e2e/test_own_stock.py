"""Own stock end to end through the real bot: an admin uploads keys (pasted lines and a
.csv file), a customer buys one and gets it; two customers paying for the last key at
once: one gets it, the other is refunded."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID, SandboxConfig
from sandboxes.telegram import FakeUser
from storage.orders import OrderStatus
from tests.e2e.journeys import open_offer_ref

SECRET = "e2e-own-stock-secret-0123456789abcdef"


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    """The offline shop with own stock on (``STOCK__KEY`` set)."""
    offline = OfflineShop(
        tmp_path / "shop.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.6),
        telegram_options={"precheckout_deadline": 5.0},
        # an admin typing many commands in a row is not throttled here
        settings_overrides={
            "stock": {"key": SECRET, "low_threshold": 0},
            "throttle_burst": 100,
        },
    )
    await offline.start()
    yield offline
    await offline.stop()


def _database_bytes(folder: Path) -> bytes:
    """The shop's database file with its WAL and shared memory, as a dump would copy them."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("shop.sqlite3"))


async def _upload(shop: OfflineShop, admin: FakeUser, text: str) -> str:
    """Send ``/addkeys ...`` and return the bot's report; waits until the own-stock offer
    it names is in the catalogue (refreshed in the background after an upload)."""
    mark = admin.mark()
    await admin.send(text)
    report = await admin.wait_for_text("Keys added", since=mark)
    offer_id = re.search(r"o:(\d+)", report["text"])
    assert offer_id is not None
    assert shop.shop is not None
    catalogue = shop.shop.catalogue.repo
    own_stock = shop.shop.own_stock
    assert own_stock is not None
    await own_stock.catalogue_settled()
    offer = await catalogue.get("own_stock", offer_id.group(1))
    assert offer is not None and offer.active
    return str(report["text"])


async def _invoice(shop: OfflineShop, user: FakeUser, offer_id: str) -> dict[str, Any]:
    mark = user.mark()
    await open_offer_ref(shop, user, "o", offer_id)
    await user.press("Buy for")
    return await shop.telegram.wait_until(  # type: ignore[no-any-return]
        lambda: next((m for m in user.messages[mark:] if "invoice" in m), None)
    )


async def test_admin_uploads_keys_and_a_customer_buys_one(shop: OfflineShop) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    report = await _upload(
        shop, admin, f"/addkeys g:{TEST_OFFER_ID} 0.01 USD\nOWN-KEY-1\nOWN-KEY-2\nOWN-KEY-1"
    )
    assert "Keys added: 2 to o:1" in report
    assert "Repeated within the upload, not added: 1 (lines 3)" in report

    mark = admin.mark()
    await admin.send_document(
        "more.csv", b"key\nOWN-KEY-2\nOWN-KEY-3\n", caption=f"/addkeys g:{TEST_OFFER_ID} 0.01 USD"
    )
    more = await admin.wait_for_text("Keys added: 1", since=mark)
    assert "Already held, not added: 1 (lines 2)" in more["text"]
    assert shop.shop is not None
    steam = await shop.shop.catalogue.repo.get("gamesdrop", str(TEST_OFFER_ID))
    own = await shop.shop.catalogue.repo.get("own_stock", "1")
    assert steam is not None and own is not None
    assert (own.product_name, own.offer_name, own.category) == (
        steam.product_name, steam.offer_name, steam.category,
    )  # fmt: skip

    # own stock competes on cost with the linked supplier offer: at 0.01 USD it is cheaper
    alice = shop.telegram.user(5001, "Alice")
    await _invoice(shop, alice, "1")
    paid, error = await alice.pay()
    assert paid, error

    delivery = await alice.wait_for_text("Your key", timeout=15)
    assert "OWN-KEY-1" in delivery["text"]
    assert sum("OWN-KEY-1" in t for t in alice.texts()) == 1
    [order] = await shop.shop.orders.orders.latest(None, 5)
    assert (order.status, order.supplier) == (OrderStatus.COMPLETED, "own_stock")

    mark = admin.mark()
    await admin.send("/stock")
    screen = await admin.wait_for_text("Own stock", since=mark)
    assert "free 2 · sold 1" in screen["text"]
    assert "OWN-KEY" not in screen["text"]
    await admin.send("/admin")
    await admin.wait_for_text("What do you want to look at?", since=mark)
    await admin.press("Stats")
    await admin.wait_for_text("Own stock: 2 free keys in 1 products · keys sold: 1", since=mark)


async def test_two_customers_paying_for_the_last_key_one_gets_it_the_other_is_refunded(
    shop: OfflineShop,
) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await _upload(shop, admin, "/addkeys new 2 USD Indie Game | Steam key | Gift Cards\nLAST-ONE")
    alice = shop.telegram.user(5101, "Alice")
    bob = shop.telegram.user(5102, "Bob")
    alice_invoice = await _invoice(shop, alice, "1")
    bob_invoice = await _invoice(shop, bob, "1")

    paid = await asyncio.gather(alice.pay(alice_invoice), bob.pay(bob_invoice))

    assert [ok for ok, _error in paid] == [True, True]
    await shop.telegram.wait_until(lambda: shop.telegram.method_calls["refundStarPayment"] == 1)
    await shop.settle()
    texts = alice.texts() + bob.texts()
    assert sum("LAST-ONE" in t for t in texts) == 1
    assert shop.telegram.method_calls["refundStarPayment"] == 1
    assert shop.shop is not None
    statuses = sorted(o.status.value for o in await shop.shop.orders.orders.latest(None, 5))
    assert statuses == ["completed", "refunded"]


async def test_bad_uploads_are_explained_and_add_nothing(shop: OfflineShop) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    for command, answer in (
        ("/addkeys", "Upload keys for a catalogue offer"),
        ("/addkeys x:1 1 USD\nK-1", "There is no offer x:1 in the catalogue"),
        ("/addkeys g:424242 1 USD\nK-1", "There is no offer g:424242"),
        ("/addkeys new 1 XYZ Game | Key | Gift Cards\nK-1", "No USD rate is set for XYZ"),
        ("/addkeys new 1e3 USD Game | Key | Gift Cards\nK-1", "is not a plain decimal number"),
        ("/addkeys new 1 USD Game | Key | Comics\nK-1", "Unknown category"),
        ("/addkeys new 1 USD Game | Key\nK-1", "Upload keys for a catalogue offer"),
    ):
        mark = admin.mark()
        await admin.send(command)
        await admin.wait_for_text(answer, since=mark)
    mark = admin.mark()
    await admin.send_document(
        "keys.pdf", b"K-1", caption="/addkeys new 1 USD Game | Key | Gift Cards"
    )
    await admin.wait_for_text("Send keys as a UTF-8 .txt or .csv file", since=mark)

    # asked for the keys, the admin cancels: nothing is added, not even "/cancel"
    mark = admin.mark()
    await admin.send("/addkeys new 1 USD Game | Key | Gift Cards")
    await admin.wait_for_text("Send the keys now", since=mark)
    await admin.send("/cancel")
    await admin.wait_for_text("Cancelled", since=mark)
    assert shop.shop is not None and shop.shop.own_stock is not None
    assert await shop.shop.own_stock.products() == []

    # asked again, the keys come as lines; the catalogue screen counts them
    mark = admin.mark()
    await admin.send("/addkeys new 1,25 EUR Game | Key | Gift Cards")
    await admin.wait_for_text("Send the keys now", since=mark)
    await admin.send("K-1\nK-2\nK-3")
    await admin.wait_for_text("Keys added: 3 to o:1 Game — Key at 1.25 EUR each", since=mark)
    await admin.send("/admin")
    await admin.wait_for_text("Admin", since=mark)
    await admin.press("Catalogue")
    await admin.wait_for_text("Own stock: 3 free keys in 1 products", since=mark)


async def test_without_a_stock_key_own_stock_is_off(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/addkeys new 1 USD Game | Key | Gift Cards\nK-1")
    await admin.wait_for_text("Own stock is off")
    assert offline.shop is not None and offline.shop.own_stock is None
    assert "own_stock" not in offline.shop.suppliers


async def test_when_the_last_own_key_is_gone_the_linked_supplier_delivers_instead(
    shop: OfflineShop,
) -> None:
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    # 0.0455 USD: cheaper than the sandbox's 23.09 KZT (0.04618 USD), and the same 5 Stars,
    # so the supplier's offer still fits the Stars paid for the own key
    await _upload(shop, admin, f"/addkeys g:{TEST_OFFER_ID} 0.0455 USD\nONLY-OWN-KEY")
    alice = shop.telegram.user(5201, "Alice")
    bob = shop.telegram.user(5202, "Bob")
    alice_invoice = await _invoice(shop, alice, "1")
    bob_invoice = await _invoice(shop, bob, "1")

    paid = await asyncio.gather(alice.pay(alice_invoice), bob.pay(bob_invoice))

    assert [ok for ok, _error in paid] == [True, True]
    await alice.wait_for_text("Your key", timeout=15)
    await bob.wait_for_text("Your key", timeout=15)
    await shop.settle()
    assert sum("ONLY-OWN-KEY" in t for t in alice.texts() + bob.texts()) == 1
    assert shop.telegram.method_calls["refundStarPayment"] == 0
    assert shop.shop is not None
    orders = await shop.shop.orders.orders.latest(None, 5)
    assert sorted(o.supplier for o in orders) == ["gamesdrop", "own_stock"]
    assert {o.status for o in orders} == {OrderStatus.COMPLETED}


async def test_a_sold_key_is_not_in_the_database_in_clear_text_but_shows_on_the_order_page(
    shop: OfflineShop, tmp_path: Path
) -> None:
    """A database dump reveals no key, sold or not: the order keeps its delivered key
    encrypted like the stock does, and only the customer's own order page shows it."""
    admin = shop.telegram.user(ADMIN_ID, "Owner")
    await _upload(
        shop, admin, "/addkeys new 2 USD Indie Game | Steam key | Gift Cards\nSOLD-KEY-7731"
    )
    hana = shop.telegram.user(5201, "Hana")
    await _invoice(shop, hana, "1")
    assert (await hana.pay())[0]
    await hana.wait_for_text("SOLD-KEY-7731", timeout=15)
    await shop.settle()

    assert shop.shop is not None
    assert b"SOLD-KEY-7731" not in _database_bytes(tmp_path)

    [order] = await shop.shop.orders.orders.latest(None, 5)
    assert order.delivered_keys == ["SOLD-KEY-7731"]
    await hana.press("My orders")
    await hana.wait_for_text("Your orders (1)")
    await hana.press(f"#{order.id}")
    detail = await hana.wait_for_text(f"Order #{order.id}")
    assert "SOLD-KEY-7731" in detail["text"]
