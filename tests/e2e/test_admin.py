"""The admin console through the fake Bot API: what admins can do, and that nobody else
sees any trace of it."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from storage.orders import OrderStatus
from tests.e2e.journeys import open_offer, reach_invoice

BALANCE_PATH = "/api/v1/offers/balance"
#: saved price settings (the shop also keeps other state in shop_settings)
_PRICE_SETTINGS = "SELECT count(*) FROM shop_settings WHERE key LIKE 'pricing.%'"

PUBG_60 = 10_001


async def _buy(
    offline: OfflineShop, user, offer_id: int = TEST_OFFER_ID, player: str | None = None
) -> None:
    await reach_invoice(offline, user, offer_id, player)
    paid, error = await user.pay()
    assert paid, error


async def _answers_to(offline: OfflineShop, chat_id: int, send) -> list[str]:
    """What the bot says in ``chat_id`` in answer to the updates ``send()`` pushes, once
    it has finished handling all of them."""
    before, since = len(offline.telegram.transcript), offline.telegram.last_update_id
    await send()
    await offline.wait_handled(since)
    return [
        line.text
        for line in offline.telegram.transcript[before:]
        if line.who == "bot" and line.chat_id == chat_id
    ]


async def test_non_admins_see_no_trace_of_the_admin_console(offline: OfflineShop) -> None:
    customer = offline.telegram.user(3001, "Eve")
    assert offline.shop is not None
    markup_before = offline.shop.orders.pricing.book.markup
    since = offline.telegram.last_update_id
    for command in (
        "/admin",
        "/refund 1",
        "/order 1",
        "/user 3001",
        "/markup 5",
        "/starvalue 0.02",
        "/export 2026-01-01 2026-12-31",
        "/sync",
    ):
        await customer.send(command)
    query = await customer.press_data("adm:bal:")
    refund = await customer.press_data("adm:refund_yes:1")
    await offline.wait_handled(since)
    assert customer.messages == []
    assert (
        query not in offline.telegram.callback_answers
        and refund not in offline.telegram.callback_answers
    )
    default_commands = {c["command"] for c in offline.telegram.commands[("default", None)]}
    assert "admin" not in default_commands and "refund" not in default_commands
    assert offline.shop.orders.pricing.book.markup == markup_before
    assert await offline.shop.db.fetchval(_PRICE_SETTINGS) == 0
    assert await offline.shop.db.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_admin_commands_do_nothing_in_a_group(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")

    async def in_the_group() -> None:
        await admin.send("/admin", group_id=-1001)
        await admin.send("/sync", group_id=-1001)

    assert await _answers_to(offline, -1001, in_the_group) == []


async def test_admin_commands_are_registered_for_the_admin_chat_only(offline: OfflineShop) -> None:
    scoped = offline.telegram.commands[("chat", "ru")]
    assert {"admin", "refund", "export"} <= {c["command"] for c in scoped}


async def test_balance_and_transactions(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Balance")
    balance = await admin.wait_for_text("Supplier balance")
    assert "500.00 USD" in balance["text"] and "Postpaid: no" in balance["text"]
    await admin.press("Back")
    await admin.wait_for_text("What do you want")
    await admin.press("Transactions")
    history = await admin.wait_for_text("Supplier transactions")
    assert "DEPOSIT" in history["text"]


async def test_order_detail_refresh_resend_and_refund(offline: OfflineShop) -> None:
    customer = offline.telegram.user(3002, "Finn")
    await _buy(offline, customer)
    await customer.wait_for_text("Your key")
    assert offline.shop is not None
    [order] = (await offline.shop.orders.orders.list_for_user(customer.id, 0, 5))[0]
    admin = offline.telegram.user(ADMIN_ID, "Owner")

    await admin.send(f"/order {order.id}")
    detail = await admin.wait_for_text(f"Order #{order.id}")
    assert "awaiting_payment → paid" in detail["text"] and order.delivered_key in detail["text"]
    await admin.press("Refresh")
    await admin.wait_for_text("Supplier says now: COMPLETED")
    keys_before = sum("Your key" in t for t in customer.texts())
    await admin.press("Re-send")
    await offline.telegram.wait_until(
        lambda: sum("Your key" in t for t in customer.texts()) > keys_before
    )

    await admin.send(f"/refund {order.id}")
    await admin.wait_for_text(f"Refund order #{order.id}")
    await admin.press("Yes, refund")
    await admin.wait_for_text("is queued")
    await customer.wait_for_text("were refunded")

    refunded = await offline.shop.orders.orders.get(order.id)
    assert refunded.status is OrderStatus.REFUNDED
    assert all(c.refunded for c in offline.telegram.charges.values())
    await admin.send(f"/refund {order.id}")
    await admin.wait_for_text("already refunded")
    mark = admin.mark()
    await admin.send("/admin")
    await admin.wait_for_text("What do you want", since=mark)
    await admin.press("Orders")
    listing = await admin.wait_for_text("Latest orders", since=mark)
    assert any(
        f"#{order.id} Steam US" in b["text"]
        for row in listing["reply_markup"]["inline_keyboard"]
        for b in row
    )
    await admin.press_data("adm:orders:refunded", listing)
    filtered = await admin.wait_for_text("Latest orders (refunded): 1", since=mark)
    assert f"#{order.id}" in filtered["reply_markup"]["inline_keyboard"][0][0]["text"]
    actions = [
        row["action"]
        for row in await offline.shop.db.fetchall(
            "SELECT action FROM audit_log WHERE admin_id = ?", (ADMIN_ID,)
        )
    ]
    assert {"refresh", "resend", "refund"} <= set(actions)


async def test_refund_refuses_unpaid_and_open_orders(offline: OfflineShop) -> None:
    customer = offline.telegram.user(3003, "Gus")
    await customer.send(f"/start offer_{TEST_OFFER_ID}")
    await customer.wait_for_text("⭐")
    await customer.press("Buy for")
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in customer.messages))
    unpaid_id = await offline.shop.db.fetchval("SELECT max(id) FROM orders")
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send(f"/refund {unpaid_id}")
    await admin.wait_for_text("never paid")
    offline.sandbox.config.topup_seconds = 30
    await _buy(offline, customer, PUBG_60, "12345678")
    await customer.wait_for_text("is being processed")
    open_id = await offline.shop.db.fetchval("SELECT max(id) FROM orders")
    await admin.send(f"/refund {open_id}")
    await admin.wait_for_text("still open at the supplier")
    await admin.send("/refund abc")
    await admin.wait_for_text("Usage: /refund 123")
    assert not any(c.refunded for c in offline.telegram.charges.values())


async def test_stats_and_csv_agree_with_the_order_log(offline: OfflineShop) -> None:
    buyer = offline.telegram.user(3004, "Hal")
    await _buy(offline, buyer)
    await buyer.wait_for_text("Your key")
    await _buy(offline, buyer, PUBG_60, "55555555")  # canceled by the supplier, refunded
    await buyer.wait_for_text("were refunded", timeout=15)
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    db = offline.shop.db

    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Stats")
    stats = await admin.wait_for_text("Stats: today")

    taken = await db.fetchval("SELECT sum(stars) FROM payments")
    refunded = await db.fetchval("SELECT sum(stars) FROM refunds WHERE status = 'done'")
    cost = sum(
        Decimal(r["cost_usd"])
        for r in await db.fetchall("SELECT cost_usd FROM orders WHERE status = 'completed'")
    )
    cent = Decimal("0.01")
    revenue = (Decimal(taken - refunded) * Decimal("0.013")).quantize(cent, ROUND_HALF_UP)
    cost = cost.quantize(cent, ROUND_HALF_UP)
    assert f"Stars taken: {taken} ⭐ · refunded: {refunded} ⭐" in stats["text"]
    assert (
        f"Revenue: {revenue} USD · supplier cost: {cost} USD · margin: {revenue - cost} USD"
        in stats["text"]
    )
    assert "completed 1, refunded 1" in stats["text"] and "Steam US: 1" in stats["text"]

    await admin.press("Back")
    await admin.wait_for_text("What do you want")
    await admin.press("Export CSV")
    await offline.telegram.wait_until(lambda: offline.telegram.documents)
    [content] = offline.telegram.documents.values()
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    stored = await db.fetchall(
        "SELECT id, status, stars, supplier_price, charge_id FROM orders ORDER BY id"
    )
    assert [
        (int(r["order_id"]), r["status"], int(r["stars"]), r["supplier_price"], r["charge_id"])
        for r in rows
    ] == [
        (s["id"], s["status"], s["stars"], s["supplier_price"], s["charge_id"] or "")
        for s in stored
    ]


async def test_price_settings_apply_only_after_a_preview_and_bad_input_changes_nothing(
    offline: OfflineShop,
) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    customer = offline.telegram.user(3005, "Ida")
    await customer.send(f"/start offer_{PUBG_60}")
    await customer.wait_for_text("Price: 88 ⭐")
    assert offline.shop is not None
    for command, answer in (
        ("/markup abc", "is not a plain decimal number"),
        ("/markup 6", "outside the allowed range, 0 to 5"),
        ("/starvalue 13", "outside the allowed range, 0.005 to 0.05"),  # typo for 0.013
        ("/starvalue 1e-5000", "is not a plain decimal number"),
        ("/starvalue NaN", "is not a plain decimal number"),
        ("/starvalue Infinity", "is not a plain decimal number"),
        ("/starvalue -1", "is not a plain decimal number"),
        ("/starvalue 0.0130001", "too many decimal places"),
    ):
        mark = admin.mark()
        await admin.send(command)
        refused = await admin.wait_for_text(answer, since=mark)
        assert "Nothing was changed" in refused["text"]
    book = offline.shop.orders.pricing.book
    assert (book.markup, book.star_usd) == (Decimal("0.15"), Decimal("0.013"))
    assert await offline.shop.db.fetchval(_PRICE_SETTINGS) == 0

    mark = admin.mark()
    await admin.send("/markup 0.30")
    preview = await admin.wait_for_text("Markup: +15 % → +30 %", since=mark)
    rows = [line for line in preview["text"].splitlines() if "⭐ →" in line]
    assert len(rows) == 3  # the cheapest, a middle and the dearest offer
    assert all(int(r.split(": ")[-1].split()[0]) <= int(r.split("→ ")[-1].split()[0]) for r in rows)
    mark_customer = customer.mark()
    await customer.send(f"/start offer_{PUBG_60}")
    await customer.wait_for_text("Price: 88 ⭐", since=mark_customer)  # not applied yet
    assert await offline.shop.db.fetchval(_PRICE_SETTINGS) == 0

    await admin.press("Apply")
    await admin.wait_for_text("Markup: +30 % (0.30)", since=mark)
    mark_customer = customer.mark()
    await customer.send(f"/start offer_{PUBG_60}")
    await customer.wait_for_text("Price: 99 ⭐", since=mark_customer)  # 0.99 x 1.30 / 0.013 = 99
    stored = await offline.shop.db.fetchval(
        "SELECT value FROM shop_settings WHERE key = 'pricing.markup'"
    )
    assert stored == "0.30"


async def test_a_stale_or_crafted_price_confirmation_changes_nothing(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/starvalue 0.02")
    await admin.wait_for_text("Star value (USD): 0.013 → 0.02")
    since = offline.telegram.last_update_id
    mark = admin.mark()
    await admin.press_data("adm:price_ok:star_usd=13=0.013")
    await admin.press_data("adm:price_ok:star_usd=1e-5000=0.013")
    await admin.press_data("adm:price_ok:star_usd=0.02=0.014")  # someone changed it since
    await offline.wait_handled(since)
    assert offline.shop is not None
    assert offline.shop.orders.pricing.book.star_usd == Decimal("0.013")
    assert await offline.shop.db.fetchval(_PRICE_SETTINGS) == 0
    alerts = [line.text for line in offline.telegram.transcript if line.kind == "alert"]
    assert any("outside the allowed range" in a for a in alerts)
    assert any("changed since this preview" in a for a in alerts)
    assert admin.mark() == mark
    await admin.press("Apply")
    await admin.wait_for_text("One Star is worth: 0.02 USD")


async def test_ban_tells_the_user_once_then_ignores_them(offline: OfflineShop) -> None:
    customer = offline.telegram.user(3006, "Jack", username="jack_sparrow")
    await customer.send("/start")
    await customer.wait_for_text("Welcome")
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/user @jack_sparrow")
    await admin.wait_for_text("User 3006")
    await admin.press("Ban")
    await admin.wait_for_text("Banned: yes")
    mark = customer.mark()
    await customer.send("/start")
    await customer.wait_for_text("has been restricted", since=mark)

    async def again() -> None:
        await customer.send("/start")
        await customer.send("steam")

    assert await _answers_to(offline, customer.id, again) == []
    await admin.press("Unban")
    await admin.wait_for_text("Banned: no")
    await customer.send("/start")
    await customer.wait_for_text("Welcome", since=customer.mark() - 1)


async def test_sync_now_reports_progress_and_the_result(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Catalogue")
    await admin.wait_for_text("Active offers: 300")
    await admin.press("Sync now")
    done = await admin.wait_for_text("Catalogue synced")
    assert "300 offers" in done["text"]
    assert any(
        line.kind == "edit" and "Catalogue synced" in line.text
        for line in offline.telegram.transcript
    )


async def test_a_held_sync_alerts_the_admin_and_apply_anyway_applies_it(
    offline: OfflineShop,
) -> None:
    assert offline.shop is not None
    repo = offline.shop.catalogue.repo
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    customer = offline.telegram.user(3011, "Hana")
    offline.sandbox.faults.sync_offers = 20  # the supplier answers 20 offers instead of 300
    await admin.send("/sync")
    alert = await admin.wait_for_text("more than the 20% allowed")
    held = await admin.wait_for_text("Apply it only if")
    for text in (alert["text"], held["text"]):
        assert "listed 20 offers" in text and "300 active" in text
    assert sum("% allowed" in t for t in admin.texts()) == 1  # alerted once
    assert await repo.size() == 300  # nothing deactivated: the shop keeps selling
    await open_offer(offline, customer, PUBG_60)

    await admin.press("Apply anyway")
    await admin.wait_for_text("applied: 20 active offers")
    assert await repo.size() == 20
    run = await repo.latest_run()
    assert run is not None and run.status == "ok"
    audit = await offline.shop.db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'sync_apply'"
    )
    assert audit == 1


async def test_sync_force_applies_the_held_sync_and_a_stale_button_changes_nothing(
    offline: OfflineShop,
) -> None:
    assert offline.shop is not None
    repo = offline.shop.catalogue.repo
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    offline.sandbox.faults.sync_offers = 0  # count 0, no rows
    await admin.send("/sync")
    await admin.wait_for_text("listed 0 offers")
    assert await repo.size() == 300
    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Catalogue")
    await admin.wait_for_text("is held")

    offline.sandbox.faults.sync_offers = None  # the supplier recovers: a normal sync applies
    mark = admin.mark()
    await admin.send("/sync")
    await admin.wait_for_text("Catalogue synced: 300 offers", since=mark)
    await admin.press("Apply anyway")  # the old button on the catalogue screen
    await admin.wait_for_text("no held sync", since=mark)
    assert await repo.size() == 300

    offline.sandbox.faults.sync_offers = 200
    await admin.send("/sync")
    await admin.wait_for_text("listed 200 offers", since=mark)
    await admin.send("/sync force")
    await admin.wait_for_text("applied: 200 active offers", since=mark)
    assert await repo.size() == 200
    await admin.send("/sync sideways")
    await admin.wait_for_text("/sync force", since=admin.mark() - 1)


async def test_failed_orders_alert_admins_once_per_storm(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    buyer = offline.telegram.user(3007, "Kay")
    offline.sandbox.faults.out_of_stock.add(TEST_OFFER_ID)
    await _buy(offline, buyer)
    await buyer.wait_for_text("were refunded")
    await _buy(offline, buyer)
    await offline.telegram.wait_until(lambda: sum("were refunded" in t for t in buyer.texts()) == 2)
    alerts = [t for t in admin.texts() if "failed: OUT_OF_STOCK" in t]
    assert len(alerts) == 1


async def test_low_balance_and_unreachable_supplier_alert_admins(tmp_path) -> None:
    from sandboxes.gamesdrop import SandboxConfig

    shop = OfflineShop(
        tmp_path / "alerts.sqlite3",
        sandbox_config=SandboxConfig(balance=Decimal("12.50")),
        settings_overrides={
            "alerts": {
                "check_minutes": 0.005,
                "unreachable_minutes": 0.0,
                "min_interval_minutes": 10,
            }
        },
    )
    await shop.start()
    try:
        admin = shop.telegram.user(ADMIN_ID, "Owner")
        low = await admin.wait_for_text("Supplier balance is 12.50 USD")
        assert "under 50" in low["text"]
        checks = shop.sandbox.calls.get(BALANCE_PATH, 0)
        await shop.sandbox.wait_calls(BALANCE_PATH, checks + 3)  # three more low balances
        assert sum("Supplier balance is" in t for t in admin.texts()) == 1  # rate-limited
        shop.sandbox.faults.unavailable = 10_000
        await admin.wait_for_text("The supplier has not answered")
    finally:
        shop.sandbox.faults.unavailable = 0
        await shop.stop()


async def test_an_admin_cannot_ban_an_admin(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send(f"/user {ADMIN_ID}")
    card = await admin.wait_for_text(f"User {ADMIN_ID}")
    assert not any(
        "Ban" in b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row
    )
    await admin.press_data(f"adm:ban:{ADMIN_ID}", card)  # a forged or old button
    await offline.telegram.wait_until(
        lambda: any(
            line.kind == "alert" and "cannot be banned" in line.text
            for line in offline.telegram.transcript
        )
    )
    assert offline.shop is not None
    stored = await offline.shop.users.get(ADMIN_ID)
    assert stored is not None and not stored.is_banned
    mark = admin.mark()
    await admin.send("/admin")
    await admin.wait_for_text("What do you want", since=mark)


async def test_odd_digits_and_huge_ids_get_a_clear_answer(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    huge = "9" * 25
    for command, answer in (
        ("/order ²", "is not a whole number"),
        ("/refund ²", "is not a whole number"),
        ("/user ²", "is not a whole number"),
        (f"/order {huge}", "outside the allowed range"),
        (f"/refund #{huge}", "outside the allowed range"),
        (f"/user {huge}", "outside the allowed range"),
        ("/order 424242", "No such order"),
        ("/export 0001-01-01 9999-12-31", "Dates must lie between 2000-01-01 and 2999-12-31"),
    ):
        mark = admin.mark()
        await admin.send(command)
        await admin.wait_for_text(answer, since=mark)
    assert "Something went wrong" not in " ".join(admin.texts())


async def test_crafted_buttons_with_odd_or_huge_ids_are_answered(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    huge = "9" * 25
    for data in (
        f"adm:order:{huge}",
        f"adm:refund_yes:{huge}",
        "adm:refresh:²",
        f"adm:ban:{huge}",
    ):
        query = await admin.press_data(data)
        answer = await offline.telegram.wait_until(
            lambda q=query: offline.telegram.callback_answers.get(q)
        )
        assert answer.get("text", "").startswith(("No such order", "No user"))
    assert "Something went wrong" not in " ".join(admin.texts())


async def test_three_simultaneous_refund_confirms_refund_once(offline: OfflineShop) -> None:
    customer = offline.telegram.user(3010, "Lia")
    await _buy(offline, customer)
    await customer.wait_for_text("Your key")
    assert offline.shop is not None
    [order] = (await offline.shop.orders.orders.list_for_user(customer.id, 0, 5))[0]
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send(f"/refund {order.id}")
    question = await admin.wait_for_text(f"Refund order #{order.id}")
    since = offline.telegram.last_update_id
    queries = [
        await admin.press_data(f"adm:refund_yes:{order.id}", question, "Yes, refund")
        for _ in range(3)
    ]
    await offline.wait_handled(since)
    await customer.wait_for_text("were refunded")
    assert offline.telegram.method_calls["refundStarPayment"] == 1
    alerts = [offline.telegram.callback_answers[q].get("text", "") for q in queries]
    assert sum("is queued" in t for t in admin.texts()) == 1
    assert sorted(alerts).count("") == 1  # the one that refunded, answered by the edit
    refused = [a for a in alerts if a]
    assert len(refused) == 2 and all("already" in a for a in refused), refused


@pytest.mark.parametrize(
    ("button", "prompt"),
    [("Set markup", "Send the new markup"), ("Set Star value", "Send the USD value")],
)
async def test_cancel_leaves_an_admin_value_prompt(
    offline: OfflineShop, button: str, prompt: str
) -> None:
    """``/cancel`` in a value prompt leaves it; it is not read as the value, and what is
    typed next is not either."""
    admin = offline.telegram.user(ADMIN_ID, "Owner")
    await admin.send("/admin")
    await admin.wait_for_text("What do you want")
    await admin.press("Prices")
    await admin.wait_for_text("One Star is worth")
    await admin.press(button)
    await admin.wait_for_text(prompt)
    mark = admin.mark()

    await admin.send("/cancel")

    await admin.wait_for_text("Cancelled", since=mark)
    assert not any("plain decimal number" in t for t in admin.texts()[mark:])
    await admin.send("0.3")
    await offline.settle()
    assert not any("preview" in t.lower() or "Markup" in t for t in admin.texts()[mark:])
