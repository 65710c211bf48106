"""The fake Bot API enforces what Telegram enforces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.methods import TelegramMethod
from aiogram.types import LabeledPrice

from sandboxes.telegram import FakeTelegram

TOKEN = "42:fake"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN, precheckout_deadline=0.3)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    instance = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    yield instance
    await instance.session.close()


async def _invoice(bot: Bot, **overrides):
    params = dict(chat_id=7, title="Steam US", description="A key", payload="order:1", currency="XTR",
                  prices=[LabeledPrice(label="key", amount=5)])  # fmt: skip
    params.update(overrides)
    return await bot.send_invoice(**params)


async def test_stars_invoice_rules(tg: FakeTelegram, bot: Bot) -> None:
    tg.user(7)
    assert (await _invoice(bot)).invoice.total_amount == 5
    for bad in (
        {"currency": "USD"},
        {"provider_token": "123:TEST"},
        {"prices": [LabeledPrice(label="a", amount=1), LabeledPrice(label="b", amount=1)]},
        {"payload": "x" * 129},
        {"title": "x" * 33},
    ):
        with pytest.raises(TelegramBadRequest):
            await _invoice(bot, **bad)


async def test_pre_checkout_deadline_fails_a_late_payment(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(7)
    await _invoice(bot)
    paid, error = await user.pay()
    assert not paid and error == "timeout"
    assert not tg.charges
    [update] = await bot.get_updates(timeout=0)
    with pytest.raises(TelegramBadRequest, match="too old"):
        await bot.answer_pre_checkout_query(update.pre_checkout_query.id, ok=True)


async def test_refunds_are_checked_against_recorded_charges(tg: FakeTelegram, bot: Bot) -> None:
    first = tg.take_charge(7, 5, "order:1")
    assert await bot.refund_star_payment(7, first.charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(7, first.charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(8, first.charge_id)
    second = tg.take_charge(7, 9, "order:2")
    transactions = (await bot.get_star_transactions()).transactions
    # chronological: the payment, its refund, then the later payment
    assert [(t.id, t.receiver is not None) for t in transactions] == [
        (first.charge_id, False), (first.charge_id, True), (second.charge_id, False),
    ]  # fmt: skip
    assert [t.id for t in (await bot.get_star_transactions(offset=2)).transactions] == [
        second.charge_id
    ]


async def test_long_polling_waits_and_offsets_confirm(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(7)
    assert await bot.get_updates(timeout=0) == []
    await user.send("/start")
    [update] = await bot.get_updates(timeout=1)
    assert update.message.text == "/start"
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == []


async def test_blocked_users_unknown_methods_bad_html_and_flood(tg: FakeTelegram, bot: Bot) -> None:
    user = tg.user(7)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(7, "<b>unclosed", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Unsupported start tag"):
        await bot.send_message(7, "a <script>", parse_mode="HTML")
    sent = await bot.send_message(7, "a &lt;b&gt; <b>bold</b>", parse_mode="HTML")
    assert sent.text == "a <b> bold"
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text("a <b> bold", chat_id=7, message_id=sent.message_id)
    await user.block()
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(7, "hello")

    class Nope(TelegramMethod[bool]):
        __returning__ = bool
        __api_method__ = "noSuchMethod"

    with pytest.raises(TelegramNotFound):
        await bot(Nope())
    tg.flood_limit = True
    tg.user(8)
    await bot.send_message(8, "one")
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(8, "two")
    assert raised.value.retry_after == 1 and tg.flood.too_many_requests == 1
