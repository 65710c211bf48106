"""My orders: a customer's own orders, paged; one order shows its key again."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot import keyboards, texts
from bot.callbacks import Nav, OrdersPage, OrderView
from bot.ui import show
from services.orders import OrderService

router = Router(name=__name__)


async def _page(
    user_id: int, page: int, order_service: OrderService
) -> tuple[str, keyboards.InlineKeyboardMarkup]:
    page = max(0, page)
    orders, total = await order_service.orders.list_for_user(
        user_id, page * keyboards.PAGE_SIZE, keyboards.PAGE_SIZE
    )
    if total == 0:
        return _("orders.empty"), keyboards.home_only()
    items = [
        (
            order,
            _("orders.button").format(
                order=order.id, product=order.product_name, status=texts.status_text(order.status)
            ),
        )
        for order in orders
    ]
    return _("orders.title").format(total=total), keyboards.order_list(items, page, total)


@router.message(Command("orders"))
async def orders_command(message: Message, order_service: OrderService) -> None:
    assert message.from_user is not None
    text, markup = await _page(message.from_user.id, 0, order_service)
    await message.answer(text, reply_markup=markup)


@router.callback_query(Nav.filter(F.to == "orders"))
@router.callback_query(OrdersPage.filter())
async def orders_page(
    callback: CallbackQuery, order_service: OrderService, callback_data: OrdersPage | Nav
) -> None:
    page = callback_data.page if isinstance(callback_data, OrdersPage) else 0
    text, markup = await _page(callback.from_user.id, page, order_service)
    await show(callback, text, markup)


@router.callback_query(OrderView.filter())
async def order_view(
    callback: CallbackQuery, callback_data: OrderView, order_service: OrderService
) -> None:
    """Only the caller's own order: an id from crafted callback data finds nothing."""
    order = await order_service.orders.get_for_user(callback_data.order_id, callback.from_user.id)
    if order is None:
        await callback.answer(_("orders.not_found"), show_alert=True)
        return
    await show(callback, texts.order_detail(order), keyboards.order_detail(callback_data.page))
