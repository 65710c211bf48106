"""The shop's Bot API session sends what aiogram's own session sends and reports what the
Bot API answered, errors included, with less work per call (bot.session)."""

from __future__ import annotations

import json

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.enums import ParseMode
from aiogram.exceptions import ClientDecodeError, TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    GetUpdates,
    SendDocument,
    SendInvoice,
    SendMessage,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    LinkPreviewOptions,
    Message,
)
from aiohttp import BytesPayload, FormData

from bot.keyboards import SharedKeyboard
from bot.session import ShopSession

TOKEN = "42:TEST"


def _rows(label: str) -> list[list[InlineKeyboardButton]]:
    return [
        [InlineKeyboardButton(text=f"{label} {i} · «Ünïcode» & <b>", callback_data=f"prd:g:{i}")]
        for i in range(8)
    ] + [[InlineKeyboardButton(text="Next »", callback_data="cat:top:1")]]


@pytest.fixture
def bots() -> tuple[Bot, Bot]:
    default = DefaultBotProperties(parse_mode=ParseMode.HTML)
    return (
        Bot(TOKEN, session=AiohttpSession(), default=default),
        Bot(TOKEN, session=ShopSession(), default=default),
    )


def _aiogram_body(bot: Bot, method: object) -> bytes:
    payload = bot.session.build_form_data(bot, method)()  # type: ignore[arg-type]
    return bytes(payload._value)


def _shop_body(bot: Bot, method: object) -> bytes:
    payload = bot.session.build_form_data(bot, method)  # type: ignore[arg-type]
    assert isinstance(payload, BytesPayload)
    assert payload.content_type == "application/x-www-form-urlencoded"
    return bytes(payload._value)


METHODS = {
    "edit with a shared keyboard and the default parse mode": lambda: EditMessageText(
        chat_id=5, message_id=7, text="<b>Gift cards</b> · page 2", reply_markup=SharedKeyboard(
            inline_keyboard=_rows("Game")
        )
    ),
    "message with a keyboard built for one answer and a link preview": lambda: SendMessage(
        chat_id=-100123, text="Genshin Impact 🎮 60 + 6 crystals",
        reply_markup=InlineKeyboardMarkup(inline_keyboard=_rows("Offer")),
        link_preview_options=LinkPreviewOptions(url="https://example.com/p.png", show_above_text=True),
    ),
    "callback answer with an alert": lambda: AnswerCallbackQuery(
        callback_query_id="12345", text="Too fast: wait a second", show_alert=True, cache_time=0
    ),
    "plain callback answer": lambda: AnswerCallbackQuery(callback_query_id="12345"),
    "invoice in Stars": lambda: SendInvoice(
        chat_id=5, title="Steam 10 USD", description="Gift card key", payload="order:ABC-1",
        currency="XTR", prices=[LabeledPrice(label="Steam 10 USD", amount=789)],
    ),
    "protected message, parse mode from the bot's defaults": lambda: SendMessage(
        chat_id=5, text="Your key: <code>AAAA-BBBB</code>", protect_content=True
    ),
    "long poll": lambda: GetUpdates(offset=1001, timeout=25, allowed_updates=["message"]),
}  # fmt: skip


@pytest.mark.parametrize("make", list(METHODS.values()), ids=list(METHODS))
def test_requests_are_the_bytes_aiogram_sends(bots: tuple[Bot, Bot], make) -> None:
    aiogram_bot, shop_bot = bots
    expected = _aiogram_body(aiogram_bot, make().as_(aiogram_bot))
    method = make().as_(shop_bot)
    assert _shop_body(shop_bot, method) == expected
    assert _shop_body(shop_bot, method) == expected  # a shared keyboard's kept encoding too


def test_a_shared_keyboard_is_encoded_per_keyboard_not_per_shape(bots: tuple[Bot, Bot]) -> None:
    aiogram_bot, shop_bot = bots
    for label in ("First", "Second", "First"):
        keyboard = SharedKeyboard(inline_keyboard=_rows(label))
        edit = EditMessageText(chat_id=5, message_id=7, text="page", reply_markup=keyboard)
        body = _shop_body(shop_bot, edit.as_(shop_bot))
        assert body == _aiogram_body(aiogram_bot, edit.as_(aiogram_bot))
        assert f"{label}+0".encode() in body


def test_an_upload_is_sent_as_aiogram_sends_it(bots: tuple[Bot, Bot]) -> None:
    _, shop_bot = bots
    upload = SendDocument(
        chat_id=5, document=BufferedInputFile(b"order,stars\nA-1,789\n", filename="orders.csv")
    )
    assert isinstance(shop_bot.session.build_form_data(shop_bot, upload), FormData)


def _message(text: str) -> dict[str, object]:
    return {
        "message_id": 7,
        "date": 1_764_000_000,
        "chat": {"id": 5, "type": "private", "first_name": "Ann"},
        "from": {"id": 42, "is_bot": True, "first_name": "Shop"},
        "text": text,
        "reply_markup": {"inline_keyboard": [[{"text": "Next »", "callback_data": "cat:top:1"}]]},
    }


def _answer(result: object) -> str:
    return json.dumps({"ok": True, "result": result})


def test_a_successful_edit_reports_true_without_parsing_the_message(bots) -> None:
    _, shop_bot = bots
    edit = EditMessageText(chat_id=5, message_id=7, text="page 2")
    response = shop_bot.session.check_response(shop_bot, edit, 200, _answer(_message("page 2")))
    assert response.ok is True
    assert response.result is True


def test_answers_are_parsed_into_models_bound_to_the_bot(bots) -> None:
    _, shop_bot = bots
    update = {
        "update_id": 1001,
        "callback_query": {
            "id": "9",
            "from": {"id": 5, "is_bot": False, "first_name": "Ann", "language_code": "ru"},
            "chat_instance": "1",
            "data": "cat:top:1",
            "message": _message("page 1"),
        },
    }
    updates = shop_bot.session.check_response(shop_bot, GetUpdates(), 200, _answer([update])).result
    callback = updates[0].callback_query
    assert callback.data == "cat:top:1"
    assert callback.from_user.language_code == "ru"
    assert isinstance(callback.message, Message)
    assert callback.message.date.timestamp() == 1_764_000_000
    assert callback.bot is shop_bot  # callback.answer() works on what getUpdates returned

    sent = shop_bot.session.check_response(
        shop_bot, SendMessage(chat_id=5, text="hi"), 200, _answer(_message("hi"))
    ).result
    assert isinstance(sent, Message) and sent.message_id == 7 and sent.bot is shop_bot


def test_errors_are_aiograms(bots) -> None:
    _, shop_bot = bots
    session = shop_bot.session
    edit = EditMessageText(chat_id=5, message_id=7, text="page 2")
    not_modified = json.dumps(
        {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message is not modified: specified new message "
            "content and reply markup are exactly the same",
        }
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        session.check_response(shop_bot, edit, 400, not_modified)
    flood = json.dumps(
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        }
    )
    with pytest.raises(TelegramRetryAfter) as raised:
        session.check_response(shop_bot, SendMessage(chat_id=5, text="hi"), 429, flood)
    assert raised.value.retry_after == 7
    with pytest.raises(TelegramRetryAfter):
        session.check_response(shop_bot, edit, 429, flood)
    with pytest.raises(ClientDecodeError):
        session.check_response(shop_bot, edit, 200, "<html>502 Bad Gateway</html>")
    with pytest.raises(ClientDecodeError):  # "ok" but not the method's result
        session.check_response(
            shop_bot, SendMessage(chat_id=5, text="hi"), 200, _answer({"message_id": "x"})
        )
