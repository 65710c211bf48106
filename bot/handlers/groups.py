"""Groups and channels: the shop works only in a private chat with the bot.

A customer's orders, invoices and keys never go to a group. In a group the bot answers
its customer commands and mentions of itself with one button that opens the private
chat (``https://t.me/<bot>?start=...``); a button pressed on a message outside a private
chat opens that link too. Inline mode (``@bot query``) works everywhere; pre-checkout
queries and ``successful_payment`` messages are handled wherever they come from, since
Stars already taken must never be ignored.
"""

from __future__ import annotations

import re

from aiogram import Bot, Router
from aiogram.enums import ChatType
from aiogram.filters import BaseFilter, Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

router = Router(name=__name__)

#: Customer commands answered in groups with the private-chat link (admin ones are not:
#: a group sees no trace of them).
CUSTOMER_COMMANDS = (
    "start", "help", "catalogue", "catalog", "search", "stars", "orders", "rewards", "promo",
    "language", "support", "paysupport", "terms", "cancel",
)  # fmt: skip
_START_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PrivateChat(BaseFilter):
    """Customer flows: a message in a private chat (or a ``successful_payment``, from any
    chat), or a button on a message in a private chat."""

    async def __call__(self, event: Message | CallbackQuery) -> bool:
        if isinstance(event, CallbackQuery):
            message = event.message
            return message is not None and message.chat.type == ChatType.PRIVATE
        return event.chat.type == ChatType.PRIVATE or event.successful_payment is not None


class OutsidePrivateChat(BaseFilter):
    async def __call__(self, event: Message | CallbackQuery) -> bool:
        return not await PrivateChat()(event)


class MentionsBot(BaseFilter):
    """The message text or caption names the bot (``@game_shop_bot``)."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        text = (message.text or message.caption or "").lower()
        if "@" not in text:
            return False
        me = await bot.me()
        return bool(me.username) and f"@{me.username.lower()}" in text


router.message.filter(OutsidePrivateChat())
router.callback_query.filter(OutsidePrivateChat())


async def private_chat_link(bot: Bot, payload: str = "group") -> str:
    """``https://t.me/<bot username>?start=<payload>``: opens the private chat, and
    ``/start <payload>`` there (an offer deep link keeps its offer)."""
    me = await bot.me()
    return f"https://t.me/{me.username}?start={payload}"


@router.message(Command(*CUSTOMER_COMMANDS))
async def command_in_group(message: Message, bot: Bot, command: CommandObject) -> None:
    args = (command.args or "").strip()
    payload = args if command.command == "start" and _START_PAYLOAD.match(args) else "group"
    await _answer_with_link(message, bot, payload)


@router.message(MentionsBot())
async def mention_in_group(message: Message, bot: Bot) -> None:
    await _answer_with_link(message, bot, "group")


@router.callback_query()
async def button_outside_private_chat(callback: CallbackQuery, bot: Bot) -> None:
    """A button on a group message (or a crafted one): open the private chat instead."""
    await callback.answer(_("group.private_only_short"), url=await private_chat_link(bot))


async def _answer_with_link(message: Message, bot: Bot, payload: str) -> None:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("group.open_button"), url=await private_chat_link(bot, payload)
                )
            ]
        ]
    )
    await message.reply(_("group.private_only"), reply_markup=markup)
