"""The shop is a private-chat shop: in a group it answers only with a link to the private
chat, and nothing of an order (list, invoice, key) ever goes to a group."""

from __future__ import annotations

import time

from bot.app import COMMANDS
from bot.callbacks import BuyOffer
from bot.handlers.groups import CUSTOMER_COMMANDS
from bot.offline import OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from storage.orders import OrderStatus
from tests.e2e.journeys import reach_invoice

GROUP = -5001
LINK = "https://t.me/game_shop_bot?start="


def _link_buttons(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button.get("url", "") for row in rows for button in row]


async def _group_reply(offline: OfflineShop, since: int) -> dict:
    return await offline.telegram.wait_until(  # type: ignore[no-any-return]
        lambda: next(iter(offline.telegram.bot_messages(GROUP)[since:]), None)
    )


async def test_customer_commands_in_a_group_answer_only_with_a_private_chat_link(
    offline: OfflineShop,
) -> None:
    xena = offline.telegram.user(8201, "Xena")
    await reach_invoice(offline, xena, TEST_OFFER_ID)
    await xena.pay()
    key_message = await xena.wait_for_text("Your key")

    await xena.send("/orders", group_id=GROUP)
    reply = await _group_reply(offline, 0)
    assert [url for url in _link_buttons(reply) if url.startswith(LINK)]
    assert "private chat" in reply["text"]

    await xena.send(f"/start offer_{TEST_OFFER_ID}", group_id=GROUP)
    reply = await _group_reply(offline, 1)
    assert _link_buttons(reply) == [f"{LINK}offer_{TEST_OFFER_ID}"]

    await xena.send("@game_shop_bot steam", group_id=GROUP)
    reply = await _group_reply(offline, 2)
    assert _link_buttons(reply)[0].startswith(LINK)

    group_texts = [m.get("text") or "" for m in offline.telegram.bot_messages(GROUP)]
    key = key_message["text"].split("Your key")[-1]
    assert len(group_texts) == 3
    assert not any("#" in t or "Steam" in t or key.strip()[:8] in t for t in group_texts)


async def test_a_buy_button_pressed_in_a_group_opens_the_private_chat_not_an_invoice(
    offline: OfflineShop,
) -> None:
    yan = offline.telegram.user(8202, "Yan")
    group_message = {
        "message_id": 1,
        "from": offline.telegram.bot_user,
        "chat": {"id": GROUP, "type": "supergroup", "title": "gamers"},
        "date": int(time.time()),
        "text": "an old offer card",
    }
    query_id = f"{yan.id}-group-1"
    await offline.telegram.push(
        {
            "callback_query": {
                "id": query_id,
                "from": yan.record,
                "message": group_message,
                "chat_instance": "ci-group",
                "data": BuyOffer(s="g", offer_id=str(TEST_OFFER_ID)).pack(),
            }
        }
    )
    answer = await offline.telegram.wait_until(
        lambda: offline.telegram.callback_answers.get(query_id)
    )
    assert str(answer.get("url", "")).startswith(LINK)
    assert offline.telegram.bot_messages(GROUP) == []
    assert offline.shop is not None
    assert (await offline.shop.orders.orders.list_for_user(yan.id, 0, 5))[1] == 0


async def test_a_payment_whose_message_comes_from_a_group_is_still_recorded(
    offline: OfflineShop,
) -> None:
    """successful_payment is never filtered by chat type: Stars taken are never ignored."""
    zoe = offline.telegram.user(8203, "Zoe")
    invoice = await reach_invoice(offline, zoe, TEST_OFFER_ID)
    paid, _ = await zoe.pay(invoice, lose_update=True)
    assert paid
    [charge] = offline.telegram.charges.values()
    await offline.telegram.push(
        {
            "message": {
                "message_id": 77,
                "from": zoe.record,
                "chat": {"id": GROUP, "type": "group", "title": "gamers"},
                "date": int(time.time()),
                "successful_payment": {
                    "currency": "XTR",
                    "total_amount": charge.amount,
                    "invoice_payload": charge.payload,
                    "telegram_payment_charge_id": charge.charge_id,
                    "provider_payment_charge_id": "",
                },
            }
        }
    )
    await zoe.wait_for_text("Your key")
    assert offline.shop is not None
    [order], _ = await offline.shop.orders.orders.list_for_user(zoe.id, 0, 5)
    assert order.status is OrderStatus.COMPLETED and order.charge_id == charge.charge_id
    assert offline.telegram.bot_messages(GROUP) == []


def test_every_registered_command_is_answered_in_groups() -> None:
    assert set(COMMANDS) <= set(CUSTOMER_COMMANDS)


async def test_inline_mode_still_answers_in_a_group(offline: OfflineShop) -> None:
    ada = offline.telegram.user(8204, "Ada")
    await offline.telegram.push(
        {
            "inline_query": {
                "id": "iq-group-1",
                "from": ada.record,
                "query": "steam",
                "offset": "",
                "chat_type": "supergroup",
            }
        }
    )
    results = await offline.telegram.wait_until(
        lambda: offline.telegram.inline_answers.get("iq-group-1")
    )
    buttons = [b for r in results for row in r["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons and all(b["url"].startswith(LINK + "offer_") for b in buttons)
