"""Loyalty for admins: liabilities on one screen (Stars owed, paid out, reversed, the
supplier cost of payouts), every ledger row as CSV, and promo codes (create, list with
stats, pause, resume, delete)."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import back, button
from bot.ui import show
from services.admin import AdminService
from services.loyalty import LoyaltyService, PromoSpecError, parse_promo_spec
from storage.loyalty import PromoCode

router = Router(name=__name__)
_CENT = Decimal("0.01")


async def liabilities_text(loyalty: LoyaltyService) -> str:
    figures = await loyalty.repo.liabilities()
    return _("admin.loyalty.text").format(
        owed=figures.owed, debt=figures.debt, accrued=figures.accrued,
        reversed=figures.reversed, paid=figures.paid_out, in_flight=figures.in_flight,
        spent=figures.spent, cost=figures.payout_cost_usd.quantize(_CENT),
    )  # fmt: skip


def _liabilities_markup() -> Any:
    builder = InlineKeyboardBuilder()
    builder.row(
        button(_("admin.loyalty.csv"), "loy_csv"), button(_("admin.loyalty.promos"), "promos")
    )
    return back(builder)


@router.message(Command("loyalty"))
async def loyalty_command(message: Message, loyalty: LoyaltyService) -> None:
    await message.answer(await liabilities_text(loyalty), reply_markup=_liabilities_markup())


@router.callback_query(Admin.filter(F.action == "loy"))
async def loyalty_screen(callback: CallbackQuery, loyalty: LoyaltyService) -> None:
    await show(callback, await liabilities_text(loyalty), _liabilities_markup())


@router.callback_query(Admin.filter(F.action == "loy_csv"))
async def loyalty_csv(
    callback: CallbackQuery, bot: Bot, loyalty: LoyaltyService, admin_service: AdminService
) -> None:
    """Every accrual, reversal, discount and payout as a CSV document (``sendDocument``)."""
    await callback.answer()
    content = await loyalty.ledger_csv()
    await bot.send_document(
        callback.from_user.id,
        BufferedInputFile(content, filename="loyalty_ledger.csv"),
        caption=_("admin.loyalty.csv_caption"),
    )
    await admin_service.audit(callback.from_user.id, "loyalty_export")


# -- promo codes ---------------------------------------------------------------------


def _describe(promo: PromoCode) -> str:
    off = f"{promo.value}%" if promo.kind == "percent" else f"{promo.value} ⭐"
    limits = []
    if promo.min_order_stars:
        limits.append(f"min={promo.min_order_stars}")
    if promo.max_uses is not None:
        limits.append(f"uses={promo.max_uses}")
    if promo.max_uses_per_user is not None:
        limits.append(f"per_user={promo.max_uses_per_user}")
    if promo.scope_kind != "all":
        limits.append(f"{promo.scope_kind}={promo.scope_value}")
    if promo.expires_at:
        limits.append(f"≤ {promo.expires_at[:16].replace('T', ' ')}")
    return escape(" ".join([promo.code, off, *limits]))


async def promos_text(loyalty: LoyaltyService) -> tuple[str, list[PromoCode]]:
    promos = await loyalty.repo.promos()
    lines = [_("admin.promos.title").format(count=len(promos))]
    for promo in promos:
        stats = await loyalty.promo_stats(promo.code)
        lines.append(
            _("admin.promos.line").format(
                code=_describe(promo),
                status=_(f"admin.promos.status.{promo.status}"),
                uses=stats.uses,
                discounted=stats.discounted,
                revenue=stats.revenue,
            )
        )
    if not promos:
        lines.append(_("admin.promos.empty"))
    lines.append(_("admin.promos.help"))
    return "\n".join(lines), promos


def _promos_markup(promos: list[PromoCode]) -> Any:
    builder = InlineKeyboardBuilder()
    for promo in promos[:20]:
        toggle = "pr_resume" if promo.status == "paused" else "pr_pause"
        label = _("admin.promos.resume" if promo.status == "paused" else "admin.promos.pause")
        builder.row(
            button(f"{label} {promo.code}", toggle, promo.code),
            button(f"{_('admin.promos.delete')} {promo.code}", "pr_delete", promo.code),
        )
    return back(builder, "loy")


@router.message(Command("promos"))
async def promos_command(message: Message, loyalty: LoyaltyService) -> None:
    text, promos = await promos_text(loyalty)
    await message.answer(text, reply_markup=_promos_markup(promos))


@router.callback_query(Admin.filter(F.action == "promos"))
async def promos_screen(callback: CallbackQuery, loyalty: LoyaltyService) -> None:
    text, promos = await promos_text(loyalty)
    await show(callback, text, _promos_markup(promos))


@router.message(Command("promo_new"))
async def promo_new(
    message: Message, command: CommandObject, loyalty: LoyaltyService, admin_service: AdminService
) -> None:
    """``/promo_new CODE 10% [min=N] [uses=N] [per_user=N] [days=N] [category="…"]
    [product=<supplier>:<product id>]`` (``CODE 20``: 20 Stars off)."""
    assert message.from_user is not None
    try:
        promo = parse_promo_spec(command.args or "", message.from_user.id)
    except PromoSpecError as exc:
        await message.answer(
            _(f"admin.promos.bad.{exc.problem}").format(text=escape(exc.text))
            + "\n\n" + _("admin.promos.help")
        )  # fmt: skip
        return
    if not await loyalty.create_promo(promo):
        await message.answer(_("admin.promos.exists").format(code=escape(promo.code)))
        return
    await admin_service.audit(message.from_user.id, "promo_new", _describe(promo))
    await message.answer(
        _("admin.promos.created").format(code=escape(promo.code), details=_describe(promo))
    )


_STATUS_BY_ACTION = {"pause": "paused", "resume": "active", "delete": "deleted"}


async def _set_status(
    admin_id: int, code: str, action: str, loyalty: LoyaltyService, admin_service: AdminService
) -> str:
    code = loyalty.normalise_code(code)
    if not await loyalty.repo.set_promo_status(code, _STATUS_BY_ACTION[action]):
        return _("admin.promos.not_found").format(code=escape(code[:40]))
    await admin_service.audit(admin_id, f"promo_{action}", code)
    return _(f"admin.promos.done.{action}").format(code=escape(code))


@router.message(Command("promo_pause", "promo_resume", "promo_delete"))
async def promo_status_command(
    message: Message, command: CommandObject, loyalty: LoyaltyService, admin_service: AdminService
) -> None:
    assert message.from_user is not None
    action = command.command.removeprefix("promo_")
    if not command.args:
        await message.answer(_("admin.promos.help"))
        return
    await message.answer(
        await _set_status(message.from_user.id, command.args, action, loyalty, admin_service)
    )


@router.callback_query(Admin.filter(F.action.in_({"pr_pause", "pr_resume", "pr_delete"})))
async def promo_status_button(
    callback: CallbackQuery,
    callback_data: Admin,
    loyalty: LoyaltyService,
    admin_service: AdminService,
) -> None:
    action = callback_data.action.removeprefix("pr_")
    answer = await _set_status(
        callback.from_user.id, callback_data.arg, action, loyalty, admin_service
    )
    await callback.answer(answer)
    text, promos = await promos_text(loyalty)
    await show(callback, text, _promos_markup(promos))
