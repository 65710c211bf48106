"""Conversations that never trap anyone: /help, and commands typed inside a step, through
the real bot polling the fake Bot API, in English and Russian."""

from __future__ import annotations

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from tests.e2e.journeys import open_offer

GENSHIN_60 = 10_010  # needs a player ID and a server

#: what the tests read, per language
TEXT = {
    "en": {
        "help": "How to pay",
        "refund": "refunded",
        "stars": "Telegram Stars",
        "buy": "Buy for",
        "ask_player": "Send your player ID",
        "no_orders": "You have no orders yet",
        "bad_player": "A player ID is 2 to 40",
        "nothing": "Nothing found",
        "cancelled": "Cancelled",
        "who_gets": "Who gets",
        "choose_pack": "Choose how many Stars",
        "pack": "100 Stars",
    },
    "ru": {
        "help": "Как оплатить",
        "refund": "возвращ",
        "stars": "Telegram Stars",
        "buy": "Купить за",
        "ask_player": "Отправьте ваш ID игрока",
        "no_orders": "У вас пока нет заказов",
        "bad_player": "ID игрока — это от 2 до 40",
        "nothing": "ничего не нашлось",
        "cancelled": "Отменено",
        "who_gets": "Кому отправить",
        "choose_pack": "Stars",
        "pack": "100 Stars",
    },
}


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_help_says_what_is_sold_how_to_pay_refunds_and_support(
    offline: OfflineShop, language: str
) -> None:
    user = offline.telegram.user(6001, "Dana", language_code=language)
    await user.send("/help")

    answer = await user.wait_for_text(TEXT[language]["help"])

    text = answer["text"]
    assert TEXT[language]["stars"] in text and TEXT[language]["refund"] in text
    assert "@game_shop_support" in text  # the support contact from settings
    registered = offline.telegram.commands[("default", language)]
    assert "help" in {c["command"] for c in registered}


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_command_typed_for_the_player_id_leaves_the_step_and_runs(
    offline: OfflineShop, language: str
) -> None:
    t = TEXT[language]
    bob = offline.telegram.user(6002, "Bob", language_code=language)
    await open_offer(offline, bob, GENSHIN_60)
    await bob.press(t["buy"])
    await bob.wait_for_text(t["ask_player"])

    mark = bob.mark()
    await bob.send("/orders")
    await bob.wait_for_text(t["no_orders"], since=mark)

    mark = bob.mark()
    await bob.send("12345678")  # no longer a player ID: plain text outside a step searches
    await bob.wait_for_text(t["nothing"], since=mark)


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_an_unknown_command_in_a_step_gets_the_step_hint_and_cancel_still_cancels(
    offline: OfflineShop, language: str
) -> None:
    t = TEXT[language]
    bob = offline.telegram.user(6003, "Bob", language_code=language)
    await open_offer(offline, bob, GENSHIN_60)
    await bob.press(t["buy"])
    await bob.wait_for_text(t["ask_player"])

    mark = bob.mark()
    await bob.send("/frobnicate")
    await bob.wait_for_text(t["bad_player"], since=mark)

    mark = bob.mark()
    await bob.send("/cancel")
    await bob.wait_for_text(t["cancelled"], since=mark)


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_help_typed_for_the_gift_recipient_answers_and_leaves_the_step(
    offline: OfflineShop, language: str
) -> None:
    t = TEXT[language]
    vera = offline.telegram.user(6004, "Vera", language_code=language)
    await vera.send("/stars")
    await vera.wait_for_text(t["choose_pack"])
    await vera.press(t["pack"])
    await vera.wait_for_text(t["who_gets"])

    mark = vera.mark()
    await vera.send("/help")
    await vera.wait_for_text(t["help"], since=mark)

    mark = vera.mark()
    await vera.send("/cancel")  # the gift step is over: there is nothing left to cancel
    answer = await offline.telegram.wait_until(lambda: vera.messages[mark:] or None)
    assert t["cancelled"] not in answer[0]["text"]


async def test_admin_commands_inside_the_wizards_leave_them(offline: OfflineShop) -> None:
    admin = offline.telegram.user(ADMIN_ID, "Owner")

    await admin.send("/broadcast")
    await admin.wait_for_text("Send or forward the message to broadcast")
    mark = admin.mark()
    await admin.send("/frobnicate")  # not a command of this bot: the step's own hint
    await admin.wait_for_text("Send or forward the message to broadcast", since=mark)
    mark = admin.mark()
    await admin.send("/markup 0.2")
    await admin.wait_for_text("Nothing changes until you press Apply", since=mark)

    await admin.send("/campaign")
    await admin.wait_for_text("New Stars reward campaign")
    mark = admin.mark()
    await admin.send("/orders")
    await admin.wait_for_text("You have no orders yet", since=mark)

    await admin.press_data("adm:ask:markup")
    await admin.wait_for_text("Send the new markup")
    mark = admin.mark()
    await admin.send("/help")
    await admin.wait_for_text("How to pay", since=mark)
    mark = admin.mark()
    await admin.send("0.3")  # no longer a markup value: a search
    await admin.wait_for_text("Nothing found", since=mark)
