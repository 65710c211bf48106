"""Showing a screen in answer to a button: edit the message in place when possible."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, LinkPreviewOptions, Message


async def show(
    target: Message | CallbackQuery,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    preview: LinkPreviewOptions | None = None,
) -> None:
    """Answer the callback and edit its message; a plain message gets a new reply.
    ``preview`` (``LinkPreviewOptions``) shows a picture with the text, e.g. a product's.

    Pressing a button that shows the same screen again (a page indicator) is not an
    error: Telegram's "message is not modified" is ignored.
    """
    if isinstance(target, Message):
        await target.answer(text, reply_markup=markup, link_preview_options=preview)
        return
    await target.answer()
    message = target.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup, link_preview_options=preview)
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise
    elif message is not None and target.bot is not None:
        await target.bot.send_message(
            message.chat.id, text, reply_markup=markup, link_preview_options=preview
        )
