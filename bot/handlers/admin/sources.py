"""Sources: the per-supplier switch (enable, disable, prefer) and the links between offers
of different suppliers that are the same good (/sources, /link, /unlink, /links)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import back
from bot.ui import show
from services.admin import AdminService
from services.orders import OrderService
from services.routing import LinkRefused, SourceMode
from services.suppliers.registry import UnknownSupplier

router = Router(name=__name__)

_MODE_CODES = {"e": SourceMode.ENABLED, "d": SourceMode.DISABLED, "p": SourceMode.PREFERRED}
_MODE_ICONS = {SourceMode.ENABLED: "✅", SourceMode.DISABLED: "⛔", SourceMode.PREFERRED: "⭐"}


async def _sources_view(order_service: OrderService) -> tuple[str, Any]:
    routing = order_service.routing
    lines = []
    builder = InlineKeyboardBuilder()
    for supplier in order_service.suppliers:
        mode = routing.mode(supplier.name)
        until = routing.breaker.open_until(supplier.name)
        if until is not None:
            ends = datetime.fromtimestamp(time.time() + until - time.monotonic(), UTC)
            health = _("admin.sources.skipped").format(until=ends.strftime("%H:%M UTC"))
        else:
            health = _("admin.sources.healthy")
        offers = await order_service.catalogue.repo.size(supplier.name)
        line = _("admin.sources.line").format(
            icon=_MODE_ICONS[mode], supplier=escape(supplier.name),
            mode=_(f"admin.sources.mode.{mode.value}"), offers=offers, health=health,
        )  # fmt: skip
        lines.append(line)
        for code, target in _MODE_CODES.items():
            if target is not mode:
                builder.button(
                    text=f"{_MODE_ICONS[target]} {supplier.name}",
                    callback_data=Admin(action="src", arg=f"{supplier.short}-{code}"),
                )
    builder.adjust(2)
    text = _("admin.sources.title") + "\n\n" + "\n".join(lines or ["-"])
    return text, back(builder)


@router.message(Command("sources"))
async def sources_command(message: Message, order_service: OrderService) -> None:
    """Every supplier with its switch, its health (skipped by the breaker or not) and its
    active offers; buttons switch it at once."""
    text, markup = await _sources_view(order_service)
    await message.answer(text, reply_markup=markup)


@router.callback_query(Admin.filter(F.action == "sources"))
async def sources_screen(callback: CallbackQuery, order_service: OrderService) -> None:
    text, markup = await _sources_view(order_service)
    await show(callback, text, markup)


@router.callback_query(Admin.filter(F.action == "src"))
async def switch_source(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """Enable, disable or prefer a supplier (effective for the next quote)."""
    short, _sep, code = callback_data.arg.rpartition("-")
    mode = _MODE_CODES.get(code)
    try:
        supplier = order_service.suppliers.by_short(short)
    except UnknownSupplier:
        supplier = None
    if supplier is None or mode is None:
        await callback.answer(_("admin.sources.unknown"), show_alert=True)
        return
    await order_service.routing.set_mode(supplier.name, mode, callback.from_user.id)
    await admin_service.audit(callback.from_user.id, "source_mode", f"{supplier.name} {mode.value}")
    text, markup = await _sources_view(order_service)
    await show(callback, text, markup)  # the screen itself shows the new switch


def _ref(order_service: OrderService, text: str) -> tuple[str, str] | None:
    """``<short>:<offer id>`` (as buttons and deep links name offers) -> (supplier, id)."""
    short, sep, offer_id = text.strip().partition(":")
    if not sep or not offer_id or len(offer_id) > 64:
        return None
    try:
        ref = order_service.suppliers.resolve(short, offer_id)
    except UnknownSupplier:
        return None
    return ref.supplier, ref.offer_id


@router.message(Command("link"))
async def link_command(
    message: Message,
    command: CommandObject,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """``/link <short>:<id> <short>:<id>``: two offers of different suppliers are one good
    (the link survives re-syncs)."""
    assert message.from_user is not None
    parts = (command.args or "").split()
    refs = [_ref(order_service, part) for part in parts]
    if len(refs) != 2 or None in refs:
        await message.answer(_("admin.link.usage"))
        return
    first, second = refs
    assert first is not None and second is not None
    try:
        await order_service.routing.link(first, second, message.from_user.id)
    except LinkRefused as refused:
        await message.answer(_(f"admin.link.refused.{refused.reason}"))
        return
    await admin_service.audit(message.from_user.id, "link", " ".join(parts))
    await message.answer(
        _("admin.link.done").format(first=escape(parts[0]), second=escape(parts[1]))
    )


@router.message(Command("unlink"))
async def unlink_command(
    message: Message,
    command: CommandObject,
    order_service: OrderService,
    admin_service: AdminService,
) -> None:
    """``/unlink <short>:<id>``: the offer is a good of its own from now on."""
    assert message.from_user is not None
    ref = _ref(order_service, command.args or "")
    if ref is None:
        await message.answer(_("admin.unlink.usage"))
        return
    try:
        await order_service.routing.unlink(ref, message.from_user.id)
    except LinkRefused as refused:
        await message.answer(_(f"admin.link.refused.{refused.reason}"))
        return
    await admin_service.audit(message.from_user.id, "unlink", (command.args or "").strip())
    await message.answer(_("admin.unlink.done").format(offer=escape((command.args or "").strip())))


@router.message(Command("links"))
async def links_command(message: Message, order_service: OrderService) -> None:
    """Doubtful matches to review: offers of different suppliers with the same amount and
    alike product names that were not linked, each with the /link that would join them."""
    suppliers = order_service.suppliers
    pairs = await order_service.routing.doubtful()
    lines = [
        _("admin.links.pair").format(
            first=escape(f"{d.first.product_name} · {d.first.offer_name}"),
            second=escape(f"{d.second.product_name} · {d.second.offer_name}"),
            score=round(d.score),
            command=escape(
                f"/link {suppliers.short_of(d.first.supplier)}:{d.first.offer_id} "
                f"{suppliers.short_of(d.second.supplier)}:{d.second.offer_id}"
            ),
        )
        for d in pairs
    ]
    await message.answer(
        _("admin.links.title") + "\n\n" + ("\n\n".join(lines) or _("admin.links.none"))
    )
