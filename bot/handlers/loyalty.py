"""Rewards: the loyalty balance, the personal referral link, Withdraw (real Telegram
Stars), spending the balance on the next purchase, and promo codes (``/promo CODE``, the
Rewards screen, or typed at the order confirmation step)."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot import keyboards
from bot.callbacks import ConfirmOrder, Nav, Rewards
from bot.states import Checkout, PromoInput
from bot.ui import show
from services.loyalty import LoyaltyService, PayoutRefusal, PromoProblem
from services.pricing import UnknownCurrency
from storage.loyalty import PromoCode

logger = logging.getLogger(__name__)
router = Router(name=__name__)

#: one word typed at the confirmation step is taken for a promo code
_ONE_WORD = r"^[^/\s]\S{0,39}$"


async def referral_link(bot: Bot, code: str) -> str:
    """``https://t.me/<bot>?start=ref_<code>`` (Bot API ``getMe`` for the username)."""
    me = await bot.me()
    return f"https://t.me/{me.username}?start=ref_{code}"


async def rewards_text(user_id: int, bot: Bot, loyalty: LoyaltyService) -> tuple[str, bool, bool]:
    """The Rewards screen of ``user_id`` and whether the balance goes into the next
    purchase and a promo code is waiting."""
    view = await loyalty.rewards(user_id)
    lines = [
        _("rewards.title"),
        _("rewards.balance").format(stars=view.balance.spendable),
    ]
    if view.balance.held:
        lines.append(_("rewards.held").format(stars=view.balance.held))
    if view.balance.debt:
        lines.append(_("rewards.debt").format(stars=view.balance.debt))
    lines.append(
        _("rewards.earned").format(
            cashback=view.cashback, referral=view.referral, paid=view.paid_out
        )
    )
    lines.append(_("rewards.referrals").format(count=view.referrals))
    lines.append(_("rewards.link").format(link=escape(await referral_link(bot, view.member.code))))
    if view.min_pack:
        lines.append(_("rewards.withdraw_from").format(stars=view.min_pack))
    if view.member.spend_next:
        lines.append(_("rewards.spending"))
    if view.member.promo_code:
        lines.append(_("rewards.promo_waiting").format(code=escape(view.member.promo_code)))
    return "\n".join(lines), view.member.spend_next, view.member.promo_code is not None


async def _show_rewards(
    target: Message | CallbackQuery, user_id: int, bot: Bot, loyalty: LoyaltyService
) -> None:
    text, spend_next, has_promo = await rewards_text(user_id, bot, loyalty)
    await show(target, text, keyboards.rewards(spend_next, has_promo))


@router.message(Command("rewards"))
async def rewards_command(
    message: Message, state: FSMContext, bot: Bot, loyalty: LoyaltyService
) -> None:
    await state.clear()
    assert message.from_user is not None
    await _show_rewards(message, message.from_user.id, bot, loyalty)


@router.callback_query(Nav.filter(F.to == "rewards"))
async def rewards_menu(
    callback: CallbackQuery, state: FSMContext, bot: Bot, loyalty: LoyaltyService
) -> None:
    await state.clear()
    await _show_rewards(callback, callback.from_user.id, bot, loyalty)


@router.callback_query(Rewards.filter(F.action == "withdraw"))
async def withdraw(callback: CallbackQuery, bot: Bot, loyalty: LoyaltyService) -> None:
    """Start a payout of the balance in real Stars (the loyalty worker delivers it)."""
    result = await loyalty.request_payout(callback.from_user.id)
    await callback.answer()
    if isinstance(result, PayoutRefusal):
        view = await loyalty.rewards(callback.from_user.id)
        text = _(f"loyalty.payout_refused.{result.value}").format(
            min=view.min_pack, stars=view.balance.spendable
        )
    else:
        text = _("loyalty.payout_started").format(stars=result.stars)
    await bot.send_message(callback.from_user.id, text)


@router.callback_query(Rewards.filter(F.action == "spend"))
async def spend_toggle(
    callback: CallbackQuery, callback_data: Rewards, bot: Bot, loyalty: LoyaltyService
) -> None:
    await loyalty.set_spend_next(callback.from_user.id, callback_data.on)
    await _show_rewards(callback, callback.from_user.id, bot, loyalty)


@router.callback_query(Rewards.filter(F.action == "clear"))
async def promo_clear(callback: CallbackQuery, bot: Bot, loyalty: LoyaltyService) -> None:
    await loyalty.clear_promo(callback.from_user.id)
    await _show_rewards(callback, callback.from_user.id, bot, loyalty)


@router.callback_query(Rewards.filter(F.action == "promo"))
async def promo_ask(callback: CallbackQuery, state: FSMContext, bot: Bot) -> None:
    await state.set_state(PromoInput.code)
    await callback.answer()
    await bot.send_message(
        callback.from_user.id, _("promo.ask"), reply_markup=keyboards.cancel_only()
    )


@router.callback_query(Rewards.filter())
async def rewards_show(callback: CallbackQuery, bot: Bot, loyalty: LoyaltyService) -> None:
    await _show_rewards(callback, callback.from_user.id, bot, loyalty)


def promo_applied_text(promo: PromoCode) -> str:
    off = (
        _("promo.off_percent").format(value=promo.value)
        if promo.kind == "percent"
        else _("promo.off_stars").format(value=promo.value)
    )
    return _("promo.applied").format(code=escape(promo.code), off=off)


def promo_problem_text(problem: PromoProblem, code: str, promo: PromoCode | None) -> str:
    return _(f"promo.refused.{problem.value}").format(
        code=escape(code.strip().upper()[:40]), min=promo.min_order_stars if promo else 0
    )


async def enter_code(message: Message, text: str, loyalty: LoyaltyService) -> bool:
    """Apply a code for the customer's next invoice and say what happened; a bad code
    changes nothing. Returns whether it was applied."""
    assert message.from_user is not None
    promo, problem = await loyalty.enter_promo(message.from_user.id, text)
    if problem is not None or promo is None:
        await message.answer(promo_problem_text(problem or PromoProblem.UNKNOWN, text, promo))
        return False
    await message.answer(promo_applied_text(promo))
    return True


@router.message(Command("promo"))
async def promo_command(
    message: Message, command: CommandObject, state: FSMContext, loyalty: LoyaltyService
) -> None:
    if not command.args:
        await state.set_state(PromoInput.code)
        await message.answer(_("promo.ask"), reply_markup=keyboards.cancel_only())
        return
    await enter_code(message, command.args, loyalty)


@router.message(StateFilter(PromoInput.code), F.text)
async def promo_entered(message: Message, state: FSMContext, loyalty: LoyaltyService) -> None:
    if await enter_code(message, message.text or "", loyalty):
        await state.clear()


@router.message(StateFilter(PromoInput.code))
async def promo_not_text(message: Message) -> None:
    await message.answer(_("promo.ask"), reply_markup=keyboards.cancel_only())


# -- at the order confirmation step ----------------------------------------------------


@router.callback_query(StateFilter(Checkout.confirm), ConfirmOrder.filter(F.action == "promo"))
async def confirm_promo_ask(callback: CallbackQuery, bot: Bot) -> None:
    """The confirmation step stays open: the next word typed is taken for a code."""
    await callback.answer()
    await bot.send_message(callback.from_user.id, _("promo.ask_confirm"))


@router.message(StateFilter(Checkout.confirm), F.text.regexp(_ONE_WORD))
async def confirm_promo_entered(
    message: Message, state: FSMContext, loyalty: LoyaltyService
) -> None:
    """A code typed at the confirmation step: applied to this order's invoice (the price
    shown again with the discount) or refused with the reason (nothing changed)."""
    assert message.from_user is not None
    data = await state.get_data()
    text = message.text or ""
    offer = await loyalty.catalogue.get(data["supplier"], data["offer_id"])
    list_stars = int(data.get("stars") or 0)
    promo, problem = await loyalty.promo_problem(text, message.from_user.id, list_stars, offer)
    if problem is not None or promo is None:
        await message.answer(promo_problem_text(problem or PromoProblem.UNKNOWN, text, promo))
        return
    await loyalty.enter_promo(message.from_user.id, promo.code)
    pay = list_stars
    if offer is not None and list_stars:
        try:
            price, _problem = await loyalty.price_for(
                message.from_user.id, offer, offer.price, offer.currency, list_stars
            )
            pay = price.pay_stars
        except UnknownCurrency:
            logger.warning("offer %s: no rate for %s", offer.offer_id, offer.currency)
    await message.answer(
        _("promo.applied_price").format(code=escape(promo.code), old=list_stars, new=pay),
        reply_markup=keyboards.confirm(pay),
    )
