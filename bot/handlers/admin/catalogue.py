"""The catalogue screen, syncs (held ones applied on confirmation) and /offers."""

from __future__ import annotations

import logging
import re
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import TEXT_ID_PATTERN, Admin
from bot.handlers.admin.common import back
from bot.ui import show
from services.admin import AdminService
from services.catalogue import HeldSyncGone
from services.orders import OrderService
from services.suppliers.base import Capability

logger = logging.getLogger(__name__)
router = Router(name=__name__)


def _apply_held_markup(run_id: int) -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("admin.sync_apply"), callback_data=Admin(action="sync_apply", arg=str(run_id))
    )
    return builder.as_markup()


@router.callback_query(Admin.filter(F.action == "cat"))
async def catalogue_info(callback: CallbackQuery, order_service: OrderService) -> None:
    catalogue = order_service.catalogue
    repo = catalogue.repo
    last = await repo.last_sync()
    text = _("admin.catalogue_text").format(
        offers=await repo.size(), last=(last[0][:19].replace("T", " ") + " UTC") if last else "-",
        syncing=_("admin.yes") if catalogue.is_syncing else _("admin.no"),
    )  # fmt: skip
    builder = InlineKeyboardBuilder()
    held = await catalogue.held_run()
    if held is not None:
        text += "\n\n" + ngettext(
            "admin.catalogue_held", "admin.catalogue_held", held.offers
        ).format(run=held.id, listed=held.offers)
        builder.button(
            text=_("admin.sync_apply"), callback_data=Admin(action="sync_apply", arg=str(held.id))
        )
    builder.button(text=_("admin.sync_now"), callback_data=Admin(action="sync"))
    builder.adjust(1)
    await show(callback, text, back(builder))


async def _run_sync(
    bot: Bot, chat_id: int, order_service: OrderService, admin_service: AdminService, admin_id: int
) -> None:
    catalogue = order_service.catalogue
    if catalogue.is_syncing:
        await bot.send_message(chat_id, _("admin.sync_busy"))
        return
    progress = await bot.send_message(chat_id, _("admin.sync_started"))
    await admin_service.audit(admin_id, "sync", "started")
    try:
        reports = await catalogue.sync_all()
    except Exception as exc:
        logger.exception("catalogue sync asked by admin %s failed", admin_id)
        await progress.edit_text(
            _("admin.sync_failed").format(error=escape(f"{type(exc).__name__}: {exc}"))
        )
        return
    for report in reports:
        if report.held:
            await progress.edit_text(
                ngettext("admin.sync_held", "admin.sync_held", report.listed).format(
                    run=report.run_id, listed=report.listed, previous=report.previous
                ),
                reply_markup=_apply_held_markup(report.run_id),
            )
            return
    offers = sum(r.offers for r in reports)
    await progress.edit_text(
        ngettext("admin.sync_done", "admin.sync_done", offers).format(
            offers=offers, seconds=f"{sum(r.seconds for r in reports):.1f}"
        )
    )


async def _apply_held(
    bot: Bot,
    chat_id: int,
    order_service: OrderService,
    admin_service: AdminService,
    admin_id: int,
    run_id: int | None,
) -> None:
    """Apply held sync ``run_id`` (``None``: the latest held one) after an admin confirmed."""
    catalogue = order_service.catalogue
    if run_id is None:
        held = await catalogue.held_run()
        run_id = held.id if held is not None else None
    if run_id is None:
        await bot.send_message(chat_id, _("admin.sync_nothing_held"))
        return
    try:
        report = await catalogue.apply_held(run_id)
    except HeldSyncGone:
        logger.info(
            "admin %s asked to apply sync #%s, which is not held any more", admin_id, run_id
        )
        await bot.send_message(chat_id, _("admin.sync_nothing_held"))
        return
    await admin_service.audit(
        admin_id, "sync_apply", f"run {run_id}: {report.previous} -> {report.offers} offers"
    )
    await bot.send_message(
        chat_id,
        ngettext("admin.sync_applied", "admin.sync_applied", report.offers).format(
            run=run_id, offers=report.offers, previous=report.previous
        ),
    )


@router.callback_query(Admin.filter(F.action == "sync"))
async def sync_button(
    callback: CallbackQuery, bot: Bot, order_service: OrderService, admin_service: AdminService
) -> None:
    await callback.answer()
    if callback.message is not None:
        await _run_sync(
            bot, callback.message.chat.id, order_service, admin_service, callback.from_user.id
        )


@router.callback_query(Admin.filter(F.action == "sync_apply"))
async def sync_apply_button(
    callback: CallbackQuery,
    callback_data: Admin,
    bot: Bot,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """ "Apply anyway" under a held sync: applies that very run, if it is still the latest."""
    await callback.answer()
    if callback.message is None:
        return
    run_id = int(callback_data.arg) if callback_data.arg.isdigit() else 0
    await _apply_held(
        bot, callback.message.chat.id, order_service, admin_service, callback.from_user.id, run_id
    )


MAX_LISTED_AT_ONCE = 200  # offer ids one /offers command may list


@router.message(Command("offers"))
async def offers_command(
    message: Message,
    command: CommandObject,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """``/offers <supplier> <id> [<id> ...]``: list more offers of a supplier that has no
    catalogue feed (each then refreshed by find-one), and refresh them at once."""
    assert message.from_user is not None
    suppliers = order_service.suppliers
    without_feed = [s.name for s in suppliers if Capability.CATALOGUE_SYNC not in s.capabilities]
    name, *ids = (command.args or "").split() or [""]
    usage = _("admin.offers_usage").format(suppliers=", ".join(without_feed) or "—")
    if not name or not ids:
        await message.answer(usage)
        return
    if name not in suppliers:
        await message.answer(usage)
        return
    if name not in without_feed:
        await message.answer(_("admin.offers_has_feed").format(supplier=escape(name)))
        return
    bad = [offer_id for offer_id in ids if not re.fullmatch(TEXT_ID_PATTERN, offer_id)]
    if bad or len(ids) > MAX_LISTED_AT_ONCE:
        await message.answer(
            _("admin.offers_bad_id").format(ids=escape(" ".join(bad[:5])), most=MAX_LISTED_AT_ONCE)
        )
        return
    added = await order_service.catalogue.repo.add_listed_offers(
        name, list(dict.fromkeys(ids)), message.from_user.id
    )
    await admin_service.audit(message.from_user.id, "offers", f"{name}: {' '.join(ids)}")
    try:
        report = await order_service.catalogue.refresh_listed(name)
    except Exception as exc:
        logger.exception("refreshing the listed offers of %s failed", name)
        await message.answer(
            _("admin.sync_failed").format(error=escape(f"{type(exc).__name__}: {exc}"))
        )
        return
    await message.answer(
        _("admin.offers_added").format(supplier=escape(name), new=added, active=report.offers)
    )


@router.message(Command("sync"))
async def sync_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """``/sync`` runs a sync; ``/sync force`` applies the latest held sync."""
    assert message.from_user is not None
    argument = (command.args or "").strip().lower()
    if argument == "force":
        await _apply_held(
            bot, message.chat.id, order_service, admin_service, message.from_user.id, None
        )
    elif argument:
        await message.answer(_("admin.sync_usage"))
    else:
        await _run_sync(bot, message.chat.id, order_service, admin_service, message.from_user.id)
