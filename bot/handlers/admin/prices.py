"""Prices: the markup and the Star value, previewed on real offers before they apply."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.callbacks import Admin
from bot.handlers.admin.common import AdminInput, back, bad_number_text
from bot.ui import show
from services.admin import AdminService
from services.orders import OrderService
from services.parsing import BadNumber, parse_decimal
from services.pricing import PLACES, RANGES, PricedOffer, PriceSetting

router = Router(name=__name__)


def _prices_text(order_service: OrderService) -> str:
    book = order_service.pricing.book
    return _("admin.prices_text").format(
        markup=book.markup,
        percent=texts.percent(book.markup),
        star_usd=book.star_usd,
        example=book.stars(Decimal("1"), "USD"),
    )


@router.callback_query(Admin.filter(F.action == "prices"))
async def prices(callback: CallbackQuery, order_service: OrderService) -> None:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("admin.set_markup"), callback_data=Admin(action="ask", arg="markup"))
    builder.button(text=_("admin.set_star_usd"), callback_data=Admin(action="ask", arg="star_usd"))
    await show(callback, _prices_text(order_service), back(builder))


@router.callback_query(Admin.filter(F.action == "ask"))
async def ask_value(callback: CallbackQuery, callback_data: Admin, state: FSMContext) -> None:
    prompts = {"markup": (AdminInput.markup, "admin.ask_markup"), "star_usd": (AdminInput.star_usd, "admin.ask_star_usd"),
               "user": (AdminInput.user_query, "admin.ask_user")}  # fmt: skip
    if callback_data.arg not in prompts:
        await callback.answer()
        return
    target, key = prompts[callback_data.arg]
    await state.set_state(target)
    await show(callback, _(key), back())


async def _price_offers(order_service: OrderService) -> list[PricedOffer]:
    return [
        PricedOffer(f"{o.product_name} — {o.offer_name}", o.price, o.currency, o.stars_amount)
        for o in await order_service.catalogue.repo.price_samples()
    ]


def _parse_price(raw: str, which: PriceSetting) -> Decimal:
    """Raises :class:`BadNumber` (out of the setting's range included)."""
    low, high = RANGES[which]
    return parse_decimal(raw, low=low, high=high, places=PLACES[which])


async def _preview_price_value(
    message: Message, raw: str, which: PriceSetting, order_service: OrderService
) -> bool:
    """Check the value and show what it would do to a few real offers, with an Apply
    button; nothing is saved here. ``False`` when the value is refused."""
    try:
        value = _parse_price(raw, which)
    except BadNumber as exc:
        await message.answer(bad_number_text(exc))
        return False
    changes = order_service.pricing.preview(which, value, await _price_offers(order_service))
    offers = "\n".join(
        f"  {escape(c.name)}: {c.old_stars} ⭐ → {c.new_stars} ⭐" for c in changes
    ) or _("admin.price_no_offers")
    current = getattr(order_service.pricing.book, which)
    shown = texts.percent if which == "markup" else str
    text = _("admin.price_preview").format(
        setting=_(f"admin.price_setting.{which}"),
        old=shown(current),
        new=shown(value),
        offers=offers,
    )
    builder = InlineKeyboardBuilder()
    # the current value rides along: Apply refuses if someone changed it meanwhile
    builder.button(
        text=_("admin.price_apply"),
        callback_data=Admin(action="price_ok", arg=f"{which}={value}={current}"),
    )
    await message.answer(text, reply_markup=back(builder, "prices"))
    return True


@router.message(Command("markup", "starvalue"))
async def price_command(
    message: Message,
    command: CommandObject,
    order_service: OrderService,
) -> None:
    """``/markup 0.2`` or ``/starvalue 0.013``: a preview to confirm; without a value,
    show the prices."""
    if not command.args:
        await message.answer(_prices_text(order_service))
        return
    which: PriceSetting = "markup" if command.command == "markup" else "star_usd"
    await _preview_price_value(message, command.args, which, order_service)


@router.message(StateFilter(AdminInput.markup), F.text)
@router.message(StateFilter(AdminInput.star_usd), F.text)
async def price_value_entered(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    which: PriceSetting = (
        "markup" if await state.get_state() == AdminInput.markup.state else "star_usd"
    )
    if await _preview_price_value(message, message.text or "", which, order_service):
        await state.clear()


@router.callback_query(Admin.filter(F.action == "price_ok"))
async def price_confirmed(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """Apply a previewed price setting (checked again: button data can be crafted)."""
    which, raw, seen = [*callback_data.arg.split("="), "", "", ""][:3]
    if which not in RANGES:
        await callback.answer()
        return
    setting: PriceSetting = "markup" if which == "markup" else "star_usd"
    try:
        value = _parse_price(raw, setting)
    except BadNumber as exc:
        await callback.answer(bad_number_text(exc), show_alert=True)
        return
    if str(getattr(order_service.pricing.book, setting)) != seen:
        await callback.answer(_("admin.price_changed_meanwhile"), show_alert=True)
        return
    if setting == "markup":
        await order_service.pricing.set_markup(value, callback.from_user.id)
    else:
        await order_service.pricing.set_star_usd(value, callback.from_user.id)
    await admin_service.audit(callback.from_user.id, f"set_{setting}", f"{seen} -> {value}")
    await show(callback, _prices_text(order_service), back(None, "prices"))
