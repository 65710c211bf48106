"""The fair yardstick for the storefront's catalogue presses: a bare aiogram bot that
answers each press with the same Bot API calls the shop makes (``answerCallbackQuery``,
then ``editMessageText`` with a keyboard of the same size: :data:`ROWS`), and any message
with a ``sendMessage`` carrying that keyboard. No database, no services, no middleware.
Measured alternately with the storefront in the same run (``python -m bench``), on the
event loop the storefront runs on (``EVENT_LOOP``: asyncio unless it says uvloop), so that
the ratio of the two is the shop's own overhead, not the loop's."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

#: a catalogue page: 8 products, then Back / page / Next, then Menu (12 buttons)
ROWS = [[f"Product name of a game {i} · 25 offers"] for i in range(8)] + [
    ["« Back", "2 / 50", "Next »"],
    ["Main menu"],
]


def page(number: int) -> tuple[str, InlineKeyboardMarkup]:
    keyboard = [
        [
            InlineKeyboardButton(text=label, callback_data=f"prd:g:p{number:05d}{i}{j}:{number}")
            for j, label in enumerate(row)
        ]
        for i, row in enumerate(ROWS)
    ]
    text = f"<b>Gift cards</b> · page {number}\nChoose a game or a service:"
    return text, InlineKeyboardMarkup(inline_keyboard=keyboard)


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM__API_BASE"]))
    bot = Bot(os.environ["TELEGRAM__TOKEN"], session=session)
    dispatcher = Dispatcher()
    pages = [page(number) for number in range(5)]  # built once, as the shop caches its pages
    presses: dict[int, int] = {}  # per chat, so each press edits the message

    @dispatcher.message()
    async def greet(message: Message) -> None:
        text, markup = pages[0]
        await message.answer(text, reply_markup=markup)

    @dispatcher.callback_query()
    async def press(callback: CallbackQuery) -> None:
        count = presses[callback.from_user.id] = presses.get(callback.from_user.id, 0) + 1
        await callback.answer()
        text, markup = pages[count % len(pages)]
        await callback.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]

    await dispatcher.start_polling(bot)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The storefront's choice (``bot.__main__.event_loop_factory``), without importing
    the shop."""
    if os.environ.get("EVENT_LOOP", "asyncio") != "uvloop":
        return None
    import uvloop

    return uvloop.new_event_loop


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
