"""Gift Telegram Stars: choose a pack, name the recipient, confirm, pay, delivered.

A recipient nobody knows the id of gets a one-time deep link to this shop
(``/start gift_<giver id>_<nonce>``); opening it names them, and the giver gets the
confirmation to pay. The pending gift waits in the conversation storage under its own
key (destiny :data:`PENDING_GIFT`), apart from whatever the giver does meanwhile."""

from __future__ import annotations

import logging
import re
import secrets
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import (
    CallbackQuery,
    KeyboardButton,
    KeyboardButtonRequestUsers,
    Message,
    MessageOriginUser,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.deep_linking import create_start_link
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import keyboards
from bot.callbacks import Nav, StarsPack, StarsRecipient
from bot.handlers.catalog import offer_stars
from bot.handlers.checkout import fresh_quote, open_and_invoice
from bot.settings import Settings
from bot.states import GiftStars
from bot.ui import show
from services.loyalty import LoyaltyService
from services.orders import OrderService
from services.stars import (
    Recipient,
    RecipientResolver,
    parse_recipient,
    stars_amount_allowed,
)
from services.suppliers.errors import SupplierError
from services.suppliers.registry import UnknownSupplier, short_code

logger = logging.getLogger(__name__)
router = Router(name=__name__)

PICK_CONTACT_REQUEST = 1
#: the storage destiny of a gift waiting for its recipient to open the shop
PENDING_GIFT = "stars_gift_pending"
#: ``gift_<giver id>_<nonce>`` (Telegram allows [A-Za-z0-9_-], 64 characters)
GIFT_LINK = re.compile(r"^gift_(\d{1,15})_([0-9a-f]{16})$")


async def _packs_view(order_service: OrderService) -> tuple[str, keyboards.InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    for offer in await order_service.catalogue.repo.stars_offers():
        stars = offer_stars(order_service, offer)
        if stars is None or not offer.in_stock or not stars_amount_allowed(offer.stars_amount or 0):
            continue
        builder.button(
            text=_("stars.pack_button").format(amount=offer.stars_amount, stars=stars),
            callback_data=StarsPack(s=short_code(offer.supplier), offer_id=offer.offer_id),
        )
    builder.adjust(2)
    builder.row(
        keyboards.InlineKeyboardButton(
            text=_("common.main_menu"), callback_data=Nav(to="menu").pack()
        )
    )
    has_packs = len(builder.export()) > 1
    return (_("stars.choose_pack") if has_packs else _("stars.no_packs")), builder.as_markup()


@router.message(Command("stars"))
async def stars_command(message: Message, state: FSMContext, order_service: OrderService) -> None:
    await state.clear()
    text, markup = await _packs_view(order_service)
    await message.answer(text, reply_markup=markup)


@router.callback_query(Nav.filter(F.to == "stars"))
async def stars_menu(
    callback: CallbackQuery, state: FSMContext, order_service: OrderService
) -> None:
    await state.clear()
    text, markup = await _packs_view(order_service)
    await show(callback, text, markup)


def _recipient_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [
                KeyboardButton(
                    text=_("stars.pick_contact"),
                    request_users=KeyboardButtonRequestUsers(
                        request_id=PICK_CONTACT_REQUEST,
                        user_is_bot=False,
                        max_quantity=1,
                        request_name=True,
                        request_username=True,
                    ),
                ),
                KeyboardButton(text=_("stars.myself")),
            ]
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


@router.callback_query(StarsPack.filter())
async def pack_chosen(
    callback: CallbackQuery,
    callback_data: StarsPack,
    state: FSMContext,
    bot: Bot,
    order_service: OrderService,
) -> None:
    try:
        ref = order_service.suppliers.resolve(callback_data.s, callback_data.offer_id)
    except UnknownSupplier:
        await callback.answer(_("offer.unavailable"), show_alert=True)
        return
    offer = await order_service.catalogue.repo.get(ref.supplier, ref.offer_id)
    if offer is None or offer.stars_amount is None or not offer.active:
        await callback.answer(_("offer.unavailable"), show_alert=True)
        return
    if not stars_amount_allowed(offer.stars_amount):
        await callback.answer(_("stars.amount_out_of_range"), show_alert=True)
        return
    await callback.answer()
    await state.set_state(GiftStars.recipient)
    await state.update_data(
        supplier=offer.supplier, offer_id=offer.offer_id, amount=offer.stars_amount
    )
    if callback.message is not None:
        await bot.send_message(
            callback.message.chat.id,
            _("stars.ask_recipient").format(amount=offer.stars_amount),
            reply_markup=_recipient_keyboard(),
        )


async def _confirm(
    message: Message, state: FSMContext, recipient: Recipient, order_service: OrderService
) -> None:
    data = await state.get_data()
    offer = await order_service.catalogue.repo.get(data["supplier"], data["offer_id"])
    stars = offer_stars(order_service, offer) if offer else None
    if offer is None or stars is None:
        await state.clear()
        await message.answer(_("offer.unavailable"), reply_markup=ReplyKeyboardRemove())
        return
    await state.update_data(
        recipient_id=recipient.user_id, recipient_name=recipient.display, stars=stars
    )
    await state.set_state(GiftStars.confirm)
    await message.answer(
        _("stars.found").format(recipient=escape(recipient.display)),
        reply_markup=ReplyKeyboardRemove(),
    )
    await message.answer(
        _("stars.confirm").format(
            amount=data["amount"], recipient=escape(recipient.display), stars=stars
        ),
        reply_markup=_confirm_keyboard(stars),
    )


def _confirm_keyboard(stars: int) -> keyboards.InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("confirm.pay").format(stars=stars), callback_data=StarsRecipient(action="confirm")
    )
    builder.button(text=_("stars.change_recipient"), callback_data=StarsRecipient(action="change"))
    builder.button(text=_("common.cancel"), callback_data=Nav(to="cancel"))
    builder.adjust(1)
    return builder.as_markup()


@router.message(StateFilter(GiftStars.recipient), F.users_shared)
async def recipient_shared(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    shared = message.users_shared
    assert shared is not None
    if not shared.users:
        await message.answer(_("stars.recipient_invalid"), reply_markup=_recipient_keyboard())
        return
    user = shared.users[0]
    await _confirm(
        message, state, Recipient(user.user_id, user.username, user.first_name), order_service
    )


@router.message(StateFilter(GiftStars.recipient), F.forward_origin)
async def recipient_forwarded(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    origin = message.forward_origin
    if not isinstance(origin, MessageOriginUser):
        await message.answer(_("stars.forward_hidden"), reply_markup=_recipient_keyboard())
        return
    sender = origin.sender_user
    await _confirm(
        message, state, Recipient(sender.id, sender.username, sender.first_name), order_service
    )


@router.message(StateFilter(GiftStars.recipient), F.text)
async def recipient_typed(
    message: Message,
    state: FSMContext,
    order_service: OrderService,
    recipient_resolver: RecipientResolver,
    bot: Bot,
    i18n: I18n,
) -> None:
    text = (message.text or "").strip()
    if text == _("stars.myself") and message.from_user is not None:
        me = message.from_user
        await _confirm(message, state, Recipient(me.id, me.username, me.first_name), order_service)
        return
    parsed = parse_recipient(text) if len(text) <= 100 else None
    if parsed is None:
        await message.answer(_("stars.recipient_invalid"), reply_markup=_recipient_keyboard())
        return
    if parsed.user_id is not None:
        await _confirm(message, state, Recipient(parsed.user_id, None, None), order_service)
        return
    assert parsed.username is not None
    try:
        recipient = await recipient_resolver.resolve(parsed.username)
    except SupplierError as exc:
        logger.warning("user-info for @%s failed: %s", parsed.username, exc)
        await message.answer(_("common.supplier_down"), reply_markup=_recipient_keyboard())
        return
    if recipient.user_id is None:
        await _invite(message, state, parsed.username, bot, i18n)
        return
    await _confirm(message, state, recipient, order_service)


def _pending_gift(state: FSMContext, giver_id: int) -> FSMContext:
    """The giver's gift waiting for its recipient, apart from the giver's conversation."""
    key = StorageKey(
        bot_id=state.key.bot_id, chat_id=giver_id, user_id=giver_id, destiny=PENDING_GIFT
    )
    return FSMContext(storage=state.storage, key=key)


async def _invite(message: Message, state: FSMContext, username: str, bot: Bot, i18n: I18n) -> None:
    """Nobody knows ``username``'s id: keep the gift pending and give the giver a one-time
    link to this shop for the recipient (never the supplier's bot)."""
    if message.from_user is None:
        return
    giver = message.from_user.id
    nonce = secrets.token_hex(8)
    data = await state.get_data()
    await _pending_gift(state, giver).set_data(
        {
            "nonce": nonce, "chat_id": message.chat.id, "locale": i18n.current_locale,
            "supplier": data["supplier"], "offer_id": data["offer_id"], "amount": data["amount"],
        }
    )  # fmt: skip
    link = await create_start_link(bot, f"gift_{giver}_{nonce}")
    await message.answer(
        _("stars.invite").format(username=escape(username), link=escape(link)),
        reply_markup=_recipient_keyboard(),
    )


async def recipient_arrived(
    message: Message,
    args: str,
    state: FSMContext,
    bot: Bot,
    i18n: I18n,
    order_service: OrderService,
) -> bool:
    """``/start gift_<giver>_<nonce>``: the recipient opened the giver's link. Names them
    as the recipient and sends the giver (in the giver's language) the confirmation to
    pay. ``False`` when the link is not a pending gift (used, replaced or malformed): the
    caller shows the ordinary welcome."""
    link = GIFT_LINK.match(args)
    me = message.from_user
    if link is None or me is None:
        return False
    giver_id = int(link.group(1))
    pending = _pending_gift(state, giver_id)
    data = await pending.get_data()
    if not data or not secrets.compare_digest(str(data.get("nonce", "")), link.group(2)):
        logger.info("gift link of %s opened by %s is not pending", giver_id, me.id)
        return False
    await pending.clear()
    recipient = Recipient(me.id, me.username, me.first_name)
    await message.answer(_("stars.invite_welcome"), reply_markup=keyboards.main_menu())
    offer = await order_service.catalogue.repo.get(data["supplier"], data["offer_id"])
    stars = offer_stars(order_service, offer) if offer and offer.active else None
    chat_id = int(data["chat_id"])
    with i18n.use_locale(str(data.get("locale") or i18n.default_locale)):
        await bot.send_message(
            chat_id, _("stars.invite_opened").format(recipient=escape(recipient.display))
        )
        if offer is None or stars is None:
            await bot.send_message(chat_id, _("offer.unavailable"))
            return True
        giver = FSMContext(
            storage=state.storage,
            key=StorageKey(bot_id=state.key.bot_id, chat_id=chat_id, user_id=giver_id),
        )
        await giver.set_state(GiftStars.confirm)
        await giver.set_data(
            {
                "supplier": data["supplier"], "offer_id": data["offer_id"],
                "amount": data["amount"], "recipient_id": recipient.user_id,
                "recipient_name": recipient.display, "stars": stars,
            }
        )  # fmt: skip
        await bot.send_message(
            chat_id,
            _("stars.confirm").format(
                amount=data["amount"], recipient=escape(recipient.display), stars=stars
            ),
            reply_markup=_confirm_keyboard(stars),
        )
    return True


@router.message(StateFilter(GiftStars.recipient))
async def recipient_unexpected(message: Message) -> None:
    await message.answer(_("stars.recipient_invalid"), reply_markup=_recipient_keyboard())


@router.callback_query(StateFilter(GiftStars.confirm), StarsRecipient.filter(F.action == "change"))
async def change_recipient(callback: CallbackQuery, state: FSMContext, bot: Bot) -> None:
    await state.set_state(GiftStars.recipient)
    await callback.answer()
    data = await state.get_data()
    if callback.message is not None:
        await bot.send_message(
            callback.message.chat.id,
            _("stars.ask_recipient").format(amount=data.get("amount", "")),
            reply_markup=_recipient_keyboard(),
        )


@router.callback_query(StateFilter(GiftStars.confirm), StarsRecipient.filter(F.action == "confirm"))
async def confirm_gift(
    callback: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    order_service: OrderService,
    settings: Settings,
    loyalty: LoyaltyService,
) -> None:
    """Fresh price (Stars follow the TON rate), then the invoice."""
    data = await state.get_data()
    if callback.message is None:
        return
    quote = await fresh_quote(callback, data["supplier"], data["offer_id"], order_service)
    if quote is None:  # the customer was told why; they may press Pay again
        return
    await state.clear()
    await callback.answer()
    await open_and_invoice(
        callback.from_user.id, callback.message.chat.id, quote, bot, order_service, settings,
        loyalty=loyalty, shown_stars=data.get("stars"), kind="stars_gift", game_user_id=str(data["recipient_id"]),
        recipient_name=data["recipient_name"],
    )  # fmt: skip


@router.callback_query(StarsRecipient.filter())
async def stale_recipient_button(callback: CallbackQuery) -> None:
    await callback.answer(_("confirm.stale"), show_alert=True)
