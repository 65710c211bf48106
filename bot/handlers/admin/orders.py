"""Orders: the list by status, an order's card, refresh, resolve now, resend and refunds."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.callbacks import Admin
from bot.handlers.admin.common import arg_id, back, bad_number_text, button, parse_id
from bot.notifier import BotNotifier
from bot.ui import show
from services.admin import AdminService
from services.orders import OrderService
from services.parsing import BadNumber
from services.suppliers.errors import SupplierError
from services.suppliers.registry import SHOP_SOURCES
from storage.orders import Order, OrderStatus
from storage.users import UsersRepository

router = Router(name=__name__)
ORDER_FILTERS = ("all", "processing", "unknown", "failed", "completed", "refunded")


@router.callback_query(Admin.filter(F.action == "orders"))
async def orders_list(
    callback: CallbackQuery, callback_data: Admin, admin_service: AdminService
) -> None:
    status = callback_data.arg if callback_data.arg in ORDER_FILTERS else "all"
    orders = await admin_service.latest_orders(None if status == "all" else status)
    builder = InlineKeyboardBuilder()
    for order in orders:
        builder.button(
            text=f"#{order.id} {order.product_name[:20]} · {order.stars}⭐ · {order.status.value}",
            callback_data=Admin(action="order", arg=str(order.id)),
        )
    builder.adjust(1)
    filters = [
        button(("• " if name == status else "") + name, "orders", name) for name in ORDER_FILTERS
    ]
    builder.row(*filters[:3])
    builder.row(*filters[3:])
    text = (
        _("admin.orders_text").format(status=status, count=len(orders))
        if orders
        else _("admin.no_orders")
    )
    await show(callback, text, back(builder))


async def _order_text(
    order: Order,
    order_service: OrderService,
    users: UsersRepository,
    supplier_status: str | None = None,
) -> str:
    customer = await users.get(order.user_id)
    who = f"{order.user_id}" + (f" @{customer.username}" if customer and customer.username else "")
    events = await order_service.orders.events(order.id)
    log = "\n".join(
        f"{e.at[5:19].replace('T', ' ')} {e.from_status or '∅'} → {e.to_status}: {escape(e.detail or '')}"
        for e in events
    )
    lines = [
        _("admin.order_head").format(order=order.id, status=order.status.value),
        f"{escape(order.product_name)} — {escape(order.offer_name)}",
        _("admin.order_customer").format(customer=escape(who)),
        _("admin.order_money").format(
            stars=order.stars,
            price=order.supplier_price,
            currency=order.supplier_currency,
            cost=order.cost_usd.quantize(Decimal("0.0001")),
        ),
        _("admin.order_supplier").format(
            supplier_order=order.supplier_order_id or "-",
            status=order.supplier_status or "-",
            transaction=escape(order.transaction_id),
        ),
    ]
    if order.game_user_id:
        lines.append(texts.player_line(order).strip() or escape(order.game_user_id))
    if order.recipient_name:
        lines.append(_("orders.recipient").format(recipient=escape(order.recipient_name)).strip())
    if order.delivered_key and order.supplier in SHOP_SOURCES:
        # the shop's own keys are shown to the customer only (delivery and order page)
        lines.append(_("admin.order_key_hidden"))
    elif order.delivered_key:
        lines.append(_("orders.key").format(key=texts.keys_html(order)).strip())
    if order.failure_reason:
        lines.append(_("orders.reason").format(reason=escape(order.failure_reason)).strip())
    if supplier_status:
        lines.append(_("admin.order_supplier_now").format(status=escape(supplier_status)))
    return "\n".join(lines) + f"\n\n<code>{log}</code>"


def _order_markup(order: Order) -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("admin.refresh"), callback_data=Admin(action="refresh", arg=str(order.id))
    )
    if order.status is OrderStatus.COMPLETED:
        builder.button(
            text=_("admin.resend"), callback_data=Admin(action="resend", arg=str(order.id))
        )
    if AdminService.refund_refusal(order) is None:
        builder.button(
            text=_("admin.refund"), callback_data=Admin(action="refund", arg=str(order.id))
        )
    if order.status.is_open:
        builder.button(
            text=_("admin.resolve_now"), callback_data=Admin(action="resolve", arg=str(order.id))
        )
    builder.adjust(3)
    return back(builder, "orders", "all")


async def _load_order(
    callback: CallbackQuery, callback_data: Admin, order_service: OrderService
) -> Order | None:
    order_id = arg_id(callback_data)
    order = await order_service.orders.get(order_id) if order_id is not None else None
    if order is None:
        await callback.answer(_("admin.order_not_found"), show_alert=True)
    return order


@router.callback_query(Admin.filter(F.action == "order"))
async def order_detail(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    users: UsersRepository,
) -> None:
    order = await _load_order(callback, callback_data, order_service)
    if order is not None:
        await show(callback, await _order_text(order, order_service, users), _order_markup(order))


@router.message(Command("order"))
async def order_command(
    message: Message, command: CommandObject, order_service: OrderService, users: UsersRepository
) -> None:
    try:
        order = await order_service.orders.get(parse_id(command.args or ""))
    except BadNumber as exc:
        await message.answer(bad_number_text(exc) + "\n" + _("admin.order_usage"))
        return
    if order is None:
        await message.answer(_("admin.refund_refused.not_found"))
        return
    await message.answer(
        await _order_text(order, order_service, users), reply_markup=_order_markup(order)
    )


@router.callback_query(Admin.filter(F.action == "refresh"))
async def order_refresh(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    users: UsersRepository,
    admin_service: AdminService,
) -> None:
    """Ask the supplier now: an open order is checked (and moves on if it finished)."""
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    supplier_status = None
    try:
        if order.status.is_open:
            await order_service.check_order(order)
        supplier = order_service.supplier_of(order)
        if order.supplier_order_id:
            current = await supplier.get_order(order_id=order.supplier_order_id)
        else:
            current = await supplier.get_order(
                transaction_id=order.transaction_id, attempt=order_service.attempt_of(order)
            )
        supplier_status = current.status.value + (
            f" ({current.message})" if current.message else ""
        )
    except SupplierError as exc:
        supplier_status = f"{type(exc).__name__}: {exc}"
    await admin_service.audit(callback.from_user.id, "refresh", f"order {order.id}")
    order = await order_service.orders.get(order.id)
    assert order is not None
    await show(
        callback,
        await _order_text(order, order_service, users, supplier_status),
        _order_markup(order),
    )


@router.callback_query(Admin.filter(F.action == "resolve"))
async def order_resolve_now(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    users: UsersRepository,
    admin_service: AdminService,
) -> None:
    """Resolve now: ask the supplier about an open order and act on its answer; the order
    is failed and refunded only when the supplier confirms it has no such order
    (:meth:`services.orders.OrderService.resolve_now`)."""
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    order, outcome = await order_service.resolve_now(order.id)
    assert order is not None
    await admin_service.audit(callback.from_user.id, "resolve", f"order {order.id}: {outcome}")
    verdict = _(f"admin.resolve.{outcome.value}").format(
        order=order.id, status=texts.status_text(order.status)
    )
    await show(
        callback,
        verdict + "\n\n" + await _order_text(order, order_service, users),
        _order_markup(order),
    )


@router.callback_query(Admin.filter(F.action == "resend"))
async def order_resend(
    callback: CallbackQuery,
    callback_data: Admin,
    order_service: OrderService,
    notifier: BotNotifier,
    admin_service: AdminService,
) -> None:
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    if order.status is not OrderStatus.COMPLETED:
        await callback.answer(_("admin.resend_not_completed"), show_alert=True)
        return
    await notifier.resend_completed(order)
    await admin_service.audit(callback.from_user.id, "resend", f"order {order.id}")
    await callback.answer(_("admin.resent"), show_alert=True)


def _refund_confirm_markup(order_id: int) -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("admin.refund_yes"), callback_data=Admin(action="refund_yes", arg=str(order_id))
    )
    builder.button(text=_("admin.back"), callback_data=Admin(action="order", arg=str(order_id)))
    return builder.as_markup()


def _refund_question(order: Order) -> str:
    return _("admin.refund_confirm").format(
        order=order.id, stars=order.stars, user=order.user_id, product=escape(order.product_name)
    )


@router.message(Command("refund"))
async def refund_command(
    message: Message, command: CommandObject, order_service: OrderService
) -> None:
    try:
        order = await order_service.orders.get(parse_id(command.args or ""))
    except BadNumber as exc:
        await message.answer(bad_number_text(exc) + "\n" + _("admin.refund_usage"))
        return
    refusal = AdminService.refund_refusal(order)
    if refusal is not None or order is None:
        await message.answer(_(f"admin.refund_refused.{refusal.value if refusal else 'not_found'}"))
    else:
        await message.answer(_refund_question(order), reply_markup=_refund_confirm_markup(order.id))


@router.callback_query(Admin.filter(F.action == "refund"))
async def refund_button(
    callback: CallbackQuery, callback_data: Admin, order_service: OrderService
) -> None:
    order = await _load_order(callback, callback_data, order_service)
    if order is None:
        return
    refusal = AdminService.refund_refusal(order)
    if refusal is not None:
        await callback.answer(_(f"admin.refund_refused.{refusal.value}"), show_alert=True)
        return
    await show(callback, _refund_question(order), _refund_confirm_markup(order.id))


@router.callback_query(Admin.filter(F.action == "refund_yes"))
async def refund_confirmed(
    callback: CallbackQuery, callback_data: Admin, admin_service: AdminService
) -> None:
    order_id = arg_id(callback_data)
    if order_id is None:
        await callback.answer(_("admin.order_not_found"), show_alert=True)
        return
    order, refusal = await admin_service.refund(order_id, callback.from_user.id)
    if refusal is not None:
        await callback.answer(_(f"admin.refund_refused.{refusal.value}"), show_alert=True)
        return
    assert order is not None
    await show(
        callback,
        _("admin.refund_queued").format(order=order.id, stars=order.stars),
        back(None, "order", str(order.id)),
    )
