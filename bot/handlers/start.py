"""/start (with deep links: offers, gifts, ``ref_<code>`` referrals, ``promo_<code>``
codes), the main menu, /cancel, /help, language, support, /paysupport,
/terms."""

from __future__ import annotations

import re
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot import keyboards
from bot.callbacks import Nav, SetLanguage
from bot.handlers import stars
from bot.handlers.catalog import send_offer_card
from bot.handlers.loyalty import promo_applied_text, promo_problem_text
from bot.i18n import LANGUAGES
from bot.middlewares import UserMiddleware
from bot.settings import Settings
from bot.states import Checkout, GiftStars
from bot.ui import show
from services.loyalty import LoyaltyService, PromoProblem
from services.orders import OrderService
from storage.users import UsersRepository

router = Router(name=__name__)

#: ``offer_<short>_<offer id>`` (Telegram allows [A-Za-z0-9_-], 64 characters)
_OFFER_LINK = re.compile(r"^offer_([a-z0-9]{1,3})_([A-Za-z0-9-]{1,40})$")
#: ``offer_<number>``: links shared before offers named their supplier
_LEGACY_OFFER_LINK = re.compile(r"^offer_(\d{1,18})$")


async def _legacy_link_short(order_service: OrderService, offer_id: str) -> str | None:
    """The short code of the first supplier of this shop that has offer ``offer_id``."""
    for supplier in order_service.suppliers:
        if await order_service.catalogue.repo.get(supplier.name, offer_id) is not None:
            return supplier.short
    return None


def welcome_text(name: str, settings: Settings) -> str:
    text = _("start.welcome").format(name=escape(name), shop=escape(settings.shop_name))
    if settings.sandbox:
        text += "\n\n" + _("start.test_mode")
    return text


@router.message(CommandStart())
async def start(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    settings: Settings,
    order_service: OrderService,
    bot: Bot,
    i18n: I18n,
    loyalty: LoyaltyService,
) -> None:
    await state.clear()
    if (command.args or "").startswith("gift_") and await stars.recipient_arrived(
        message, command.args or "", state, bot, i18n, order_service
    ):
        return
    link = _OFFER_LINK.match(command.args or "")
    if link:
        await send_offer_card(message, link.group(1), link.group(2), order_service)
        return
    legacy = _LEGACY_OFFER_LINK.match(command.args or "")
    if legacy:
        short = await _legacy_link_short(order_service, legacy.group(1))
        await send_offer_card(message, short or "-", legacy.group(1), order_service)
        return
    name = message.from_user.first_name if message.from_user else ""
    text = welcome_text(name, settings)
    args = command.args or ""
    if message.from_user is not None and args.startswith(("ref_", "promo_")):
        text += "\n\n" + await loyalty_link(message.from_user.id, args, loyalty)
    await message.answer(text, reply_markup=keyboards.main_menu())


async def loyalty_link(user_id: int, args: str, loyalty: LoyaltyService) -> str:
    """``ref_<code>``: tie a new customer to the friend who invited them (once, forever);
    ``promo_<code>``: keep the code for the next invoice. Returns what to tell them."""
    if args.startswith("ref_"):
        outcome = await loyalty.bind_referral(user_id, args.removeprefix("ref_"))
        return _(f"referral.{outcome.value}")
    code = args.removeprefix("promo_")
    promo, problem = await loyalty.enter_promo(user_id, code)
    if problem is not None or promo is None:
        return promo_problem_text(problem or PromoProblem.UNKNOWN, code, promo)
    return promo_applied_text(promo)


@router.callback_query(Nav.filter(F.to == "menu"))
async def menu(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(callback, _("menu.title"), keyboards.main_menu())


@router.message(Command("cancel"))
async def cancel_command(message: Message, state: FSMContext) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    text = _("common.cancelled") if had_state else _("common.nothing_to_cancel")
    await message.answer(text, reply_markup=keyboards.main_menu())


@router.callback_query(Nav.filter(F.to == "cancel"))
async def cancel_button(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(callback, _("common.cancelled"), keyboards.main_menu())


@router.message(StateFilter(Checkout.confirm, GiftStars.confirm))
async def waiting_for_a_button(message: Message) -> None:
    """Typed text while a step waits for a button press: say so instead of ignoring it."""
    await message.answer(_("common.use_buttons"))


@router.message(Command("language"))
async def language_command(message: Message) -> None:
    await message.answer(_("language.choose"), reply_markup=keyboards.languages())


@router.callback_query(Nav.filter(F.to == "language"))
async def language_menu(callback: CallbackQuery) -> None:
    await show(callback, _("language.choose"), keyboards.languages())


@router.callback_query(SetLanguage.filter())
async def set_language(
    callback: CallbackQuery,
    callback_data: SetLanguage,
    users: UsersRepository,
    user_middleware: UserMiddleware,
    i18n: I18n,
) -> None:
    if callback_data.code not in LANGUAGES:
        await callback.answer()
        return
    await users.set_language(callback.from_user.id, callback_data.code)
    user_middleware.forget(callback.from_user.id)
    with i18n.use_locale(callback_data.code):  # the new language, at once
        await show(callback, f"{_('language.set')}\n\n{_('menu.title')}", keyboards.main_menu())


@router.message(Command("support"))
async def support_command(message: Message, settings: Settings) -> None:
    await message.answer(
        _("support.text").format(contact=escape(settings.support_contact)),
        reply_markup=keyboards.home_only(),
    )


@router.callback_query(Nav.filter(F.to == "support"))
async def support_menu(callback: CallbackQuery, settings: Settings) -> None:
    await show(
        callback,
        _("support.text").format(contact=escape(settings.support_contact)),
        keyboards.home_only(),
    )


@router.message(Command("help"))
async def help_command(message: Message, settings: Settings) -> None:
    """What the shop sells, how to pay in Stars, refunds and whom to ask."""
    await message.answer(
        _("help.text").format(
            shop=escape(settings.shop_name), contact=escape(settings.support_contact)
        ),
        reply_markup=keyboards.main_menu(),
    )


@router.message(Command("paysupport"))
async def paysupport(message: Message, settings: Settings) -> None:
    await message.answer(_("paysupport.text").format(contact=escape(settings.support_contact)))


@router.message(Command("terms"))
async def terms(message: Message, settings: Settings) -> None:
    await message.answer(
        _("terms.text").format(
            shop=escape(settings.shop_name), contact=escape(settings.support_contact)
        )
    )
