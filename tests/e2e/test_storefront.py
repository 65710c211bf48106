"""The storefront end to end: the real bot process loop polling the fake Bot API over HTTP,
ordering from the GamesDrop sandbox over HTTP."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from bot.offline import OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from storage.orders import OrderStatus
from tests.e2e.journeys import open_offer, reach_invoice

GENSHIN_60 = 10_010  # Genshin Impact, "60 Genesis Crystals": needs player ID and server


async def _order_of(offline: OfflineShop, user_id: int):
    assert offline.shop is not None
    orders, _ = await offline.shop.orders.orders.list_for_user(user_id, 0, 10)
    return orders


async def test_customer_buys_test_offer_999_and_receives_its_key(offline: OfflineShop) -> None:
    alice = offline.telegram.user(1001, "Alice", username="alice")
    await alice.send("/start")
    await alice.wait_for_text("Welcome")
    await alice.press("Catalogue")
    await alice.wait_for_text("Choose a category")
    await alice.press("Gift cards")
    await alice.wait_for_text("choose a game")
    await alice.send("steam")
    await alice.wait_for_text("Found 2 products for")
    await alice.press("Steam US")
    await alice.wait_for_text("denomination")
    await alice.press("TEST OFFER GROUP")
    card = await alice.wait_for_text("You get: a code")
    assert "Price:" in card["text"]
    await alice.press("Buy for")
    invoice = await offline.telegram.wait_until(
        lambda: next((m for m in alice.messages if "invoice" in m), None)
    )
    assert invoice["invoice"]["currency"] == "XTR"
    assert invoice["invoice"]["title"].startswith("[TEST]")

    paid, error = await alice.pay()

    assert paid, error
    delivery = await alice.wait_for_text("Your key")
    sandbox_order = next(iter(offline.sandbox.orders.values()))
    assert sandbox_order.offer.offer_id == TEST_OFFER_ID
    assert sandbox_order.key in delivery["text"]
    assert "<code>" + sandbox_order.key + "</code>" in delivery["_raw_text"]
    [order] = await _order_of(offline, alice.id)
    assert order.status is OrderStatus.COMPLETED
    assert order.delivered_key == sandbox_order.key
    assert order.charge_id is not None
    assert sandbox_order.transaction_id == order.transaction_id


async def test_top_up_with_player_and_server_shows_login_then_processing_then_completed(
    offline: OfflineShop,
) -> None:
    bob = offline.telegram.user(1002, "Bob")
    await open_offer(offline, bob, GENSHIN_60)
    await bob.press("Buy for")
    await bob.wait_for_text("Send your player ID")
    await bob.send("12345678")
    await bob.wait_for_text("Choose your game server")
    await bob.press("Europe")
    confirm = await bob.wait_for_text("Please check your order")
    assert "DragonSlayer" in confirm["text"]
    assert "Europe" in confirm["text"]
    await bob.press("Pay")
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in bob.messages))

    paid, _ = await bob.pay()

    assert paid
    await bob.wait_for_text("is being processed")
    done = await bob.wait_for_text("is complete", timeout=10)
    assert "DragonSlayer" in done["text"] and "Europe" in done["text"]
    sandbox_order = next(iter(offline.sandbox.orders.values()))
    assert (sandbox_order.game_user_id, sandbox_order.game_server_id) == ("12345678", "os_euro")


async def test_invalid_player_id_is_explained_and_can_be_entered_again(
    offline: OfflineShop,
) -> None:
    carol = offline.telegram.user(1003, "Carol", language_code="ru")
    await open_offer(offline, carol, 10_001)  # PUBG Mobile 60 UC: player ID only
    await carol.press("Купить за")
    await carol.wait_for_text("Отправьте ваш ID игрока")
    await carol.send("00000")
    refused = await carol.wait_for_text("Игра не приняла")
    assert "Игрок не найден" in refused["text"]
    await carol.send("12345678")
    await carol.wait_for_text("Проверьте заказ")
    assert not offline.sandbox.orders


async def test_order_the_supplier_cancels_is_refunded_exactly_once(offline: OfflineShop) -> None:
    dave = offline.telegram.user(1004, "Dave")
    await reach_invoice(offline, dave, 10_001, player="55555555")
    await dave.pay()

    failed = await dave.wait_for_text("could not be completed", timeout=10)
    await dave.wait_for_text("were refunded", timeout=10)

    # the supplier's merchant-facing text stays in the order log, not in the customer's chat
    assert "Top-up rejected by game server" not in failed["text"]
    assert "the supplier could not complete it" in failed["text"]
    [charge] = offline.telegram.charges.values()
    assert charge.refunded
    assert offline.telegram.method_calls["refundStarPayment"] == 1
    [order] = await _order_of(offline, dave.id)
    assert order.status is OrderStatus.REFUNDED
    await offline.settle()  # the workers look again: nothing is refunded twice
    assert offline.telegram.method_calls["refundStarPayment"] == 1


async def test_duplicated_successful_payment_update_creates_one_supplier_order(
    offline: OfflineShop,
) -> None:
    erin = offline.telegram.user(1005, "Erin")
    await reach_invoice(offline, erin, TEST_OFFER_ID)

    await erin.pay(repeat_update=True)

    await erin.wait_for_text("Your key")
    await offline.settle()
    assert offline.sandbox.create_order_calls == 1
    assert len(offline.sandbox.orders) == 1
    assert sum("Your key" in text for text in erin.texts()) == 1


async def test_bot_killed_while_order_processing_still_delivers_after_restart(
    offline: OfflineShop,
) -> None:
    frank = offline.telegram.user(1006, "Frank")
    offline.sandbox.config.topup_seconds = 2.0
    await reach_invoice(offline, frank, 10_001, player="12345678")
    await frank.pay()
    await frank.wait_for_text("is being processed")

    await offline.stop_bot(crash=True)
    await asyncio.sleep(2.2)  # the supplier finishes while the bot is down
    assert not any("is complete" in text for text in frank.texts())
    await offline.start_bot()

    await frank.wait_for_text("is complete", timeout=10)
    assert len(offline.sandbox.orders) == 1


async def test_price_rise_after_the_invoice_is_refused_at_pre_checkout(
    offline: OfflineShop,
) -> None:
    gina = offline.telegram.user(1007, "Gina")
    await reach_invoice(offline, gina, 10_035)
    offer = offline.sandbox.offers[10_035]
    offline.sandbox.set_price(10_035, offer.price * 2)

    paid, error = await gina.pay()

    assert not paid
    assert error is not None and "price has just gone up" in error
    assert not offline.sandbox.orders
    assert not offline.telegram.charges


async def test_a_customer_never_sees_another_customers_order(offline: OfflineShop) -> None:
    owner = offline.telegram.user(1008, "Owner")
    await reach_invoice(offline, owner, TEST_OFFER_ID)
    await owner.pay()
    await owner.wait_for_text("Your key")
    [order] = await _order_of(offline, owner.id)

    thief = offline.telegram.user(1009, "Mallory")
    await thief.send("/orders")
    await thief.wait_for_text("no orders yet")
    query_id = await thief.press_data(f"ord:{order.id}:0")

    await offline.telegram.wait_until(lambda: query_id in offline.telegram.callback_answers)
    assert offline.telegram.callback_answers[query_id]["text"] == "Order not found."
    assert not any(order.delivered_key in text for text in thief.texts())


async def test_my_orders_shows_the_key_again(offline: OfflineShop) -> None:
    hana = offline.telegram.user(1010, "Hana")
    await reach_invoice(offline, hana, TEST_OFFER_ID)
    await hana.pay()
    await hana.wait_for_text("Your key")
    [order] = await _order_of(offline, hana.id)

    await hana.press("My orders")
    await hana.wait_for_text("Your orders (1)")
    await hana.press(f"#{order.id}")

    detail = await hana.wait_for_text(f"Order #{order.id}")
    assert order.delivered_key in detail["text"]


async def test_outcome_unknown_after_a_lost_answer_is_resolved_without_ordering_again(
    offline: OfflineShop,
) -> None:
    ivan = offline.telegram.user(1011, "Ivan")
    await reach_invoice(offline, ivan, TEST_OFFER_ID)
    offline.sandbox.faults.drop_create_answers = 1

    await ivan.pay()

    await ivan.wait_for_text("Your key", timeout=10)
    assert len(offline.sandbox.orders) == 1
    [order] = await _order_of(offline, ivan.id)
    events = [event.to_status for event in await offline.shop.orders.orders.events(order.id)]
    assert "unknown" in events and events[-1] == "completed"


async def test_commands_are_registered_in_every_language(offline: OfflineShop) -> None:
    registered = offline.telegram.commands
    assert {language for _, language in registered} == {None, "en", "ru"}
    russian = {c["command"]: c["description"] for c in registered[("default", "ru")]}
    assert russian["paysupport"] == "Поддержка по оплате"
    assert {"paysupport", "terms", "cancel"} <= set(russian)


async def test_paysupport_terms_and_cancel_answer(offline: OfflineShop) -> None:
    jo = offline.telegram.user(1012, "Jo")
    await jo.send("/paysupport")
    await jo.wait_for_text("Payment support")
    await jo.send("/terms")
    await jo.wait_for_text("Terms of sale")
    await open_offer(offline, jo, 10_001)
    await jo.press("Buy for")
    await jo.wait_for_text("Send your player ID")
    await jo.send("/cancel")
    await jo.wait_for_text("Cancelled")
    await jo.send("12345678")  # outside the player step now: just a search
    await jo.wait_for_text("Nothing found")
    assert not offline.sandbox.orders


async def test_inline_mode_lists_offers_that_open_the_bot(offline: OfflineShop) -> None:
    kim = offline.telegram.user(1013, "Kim")
    results = await kim.inline("genshin")
    assert results
    first = results[0]
    assert "Genshin Impact" in first["title"]
    url = first["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert url.startswith("https://t.me/game_shop_bot?start=offer_")


async def test_supplier_text_is_html_escaped(offline: OfflineShop) -> None:
    # a player ID that passes the local format check, so the supplier's answer is shown
    offline.sandbox.config.invalid_players["87654321"] = "bad <id> & <b>more"
    lee = offline.telegram.user(1014, "<Lee>")
    await lee.send("/start")
    welcome = await lee.wait_for_text("Welcome")
    assert "<Lee>" in welcome["text"]
    await open_offer(offline, lee, 10_001)
    await lee.press("Buy for")
    await lee.wait_for_text("Send your player ID")
    mark = lee.mark()
    await lee.send("87654321")
    refused = await lee.wait_for_text("did not accept this player ID", since=mark)
    assert "bad <id> & <b>more" in refused["text"]  # shown as typed, not as markup


async def test_wrong_price_after_payment_is_reordered_at_the_new_price_when_it_still_fits(
    offline: OfflineShop,
) -> None:
    max_ = offline.telegram.user(1015, "Max")
    await reach_invoice(offline, max_, TEST_OFFER_ID)
    assert offline.shop is not None
    real_pre_checkout = offline.shop.orders.pre_checkout

    async def pre_checkout_then_drift(*args, **kwargs):
        answer = await real_pre_checkout(*args, **kwargs)
        offline.sandbox.set_price(TEST_OFFER_ID, Decimal("24"))  # documented drift: 23.09 -> 24
        return answer

    offline.shop.orders.pre_checkout = pre_checkout_then_drift  # type: ignore[method-assign]

    await max_.pay()

    await max_.wait_for_text("Your key")
    [sandbox_order] = offline.sandbox.orders.values()
    assert sandbox_order.price == Decimal("24")


async def test_price_rising_past_the_stars_paid_after_payment_is_refunded(
    offline: OfflineShop,
) -> None:
    nia = offline.telegram.user(1016, "Nia")
    await reach_invoice(offline, nia, 10_035)
    assert offline.shop is not None
    real_pre_checkout = offline.shop.orders.pre_checkout

    async def pre_checkout_then_jump(*args, **kwargs):
        answer = await real_pre_checkout(*args, **kwargs)
        offline.sandbox.set_price(10_035, offline.sandbox.offers[10_035].price * 2)
        return answer

    offline.shop.orders.pre_checkout = pre_checkout_then_jump  # type: ignore[method-assign]

    await nia.pay()

    failed = await nia.wait_for_text("could not be completed")
    await nia.wait_for_text("were refunded")
    assert "price changed" in failed["text"]
    assert not offline.sandbox.orders


async def test_an_order_stuck_past_the_configured_time_is_flagged_to_admins_once(tmp_path) -> None:
    from dataclasses import replace

    from bot.offline import ADMIN_ID, fast_timings
    from sandboxes.gamesdrop import SandboxConfig

    shop = OfflineShop(
        tmp_path / "stuck.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=60),
        timings=replace(fast_timings(), stuck_after=0.5),
    )
    await shop.start()
    try:
        admin = shop.telegram.user(ADMIN_ID, "Owner")
        oscar = shop.telegram.user(1017, "Oscar")
        await reach_invoice(shop, oscar, 10_001, player="12345678")
        await oscar.pay()
        await oscar.wait_for_text("is being processed")

        flagged = await admin.wait_for_text("is still processing", timeout=10)

        assert "PUBG Mobile" in flagged["text"]
        [order] = await _order_of(shop, oscar.id)
        while (
            await shop.shop.orders.orders.get(order.id)
        ).check_attempts < order.check_attempts + 2:
            await shop.settle(rounds=1)  # the worker checks the order twice more
        assert sum("is still processing" in t for t in admin.texts()) == 1
    finally:
        await shop.stop()


async def test_a_payment_whose_update_was_lost_is_recovered_from_star_transactions(
    offline: OfflineShop,
) -> None:
    pia = offline.telegram.user(1018, "Pia")
    await reach_invoice(offline, pia, TEST_OFFER_ID)

    paid, _ = await pia.pay(lose_update=True)  # Telegram took the Stars; the bot never saw it
    await offline.settle()
    assert paid and not offline.sandbox.orders

    await offline.restart_bot()  # reconciliation runs at start

    await pia.wait_for_text("Your key")
    [order] = await _order_of(offline, pia.id)
    [charge] = offline.telegram.charges.values()
    assert order.charge_id == charge.charge_id and order.status is OrderStatus.COMPLETED
    assert await offline.shop.orders.orders.payment_recorded(charge.charge_id)
    assert len(offline.sandbox.orders) == 1


async def test_delivery_messages_wait_out_a_flood_limit_instead_of_being_dropped(
    offline: OfflineShop,
) -> None:
    quinn = offline.telegram.user(1019, "Quinn")
    await reach_invoice(offline, quinn, 10_001, player="12345678")
    offline.telegram.flood_limit = True  # 1 message per second per chat from here on

    await quinn.pay()

    await quinn.wait_for_text("is being processed", timeout=10)
    await quinn.wait_for_text("is complete", timeout=10)
    assert offline.telegram.flood.too_many_requests >= 1


async def test_crafted_buttons_with_huge_numbers_do_not_crash(offline: OfflineShop) -> None:
    rex = offline.telegram.user(1020, "Rex")
    await rex.send("/start")
    await rex.wait_for_text("Welcome")
    huge = "9" * 25
    since = offline.telegram.last_update_id
    for data in (f"prd:{huge}:0", f"ofr:{huge}", f"buy:{huge}", f"ord:{huge}:0", f"ords:{huge}"):
        await rex.press_data(data)
    await offline.wait_handled(since)
    alerts = [line.text for line in offline.telegram.transcript if line.chat_id == rex.id]
    assert not any("Something went wrong" in text for text in alerts)
