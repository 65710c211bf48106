"""The admin console. Every handler here sits behind the parent router's filters: a private
chat with an admin from settings. Anyone else gets no trace: their updates fall through to
the customer routers, which ignore admin commands and admin callback data.

One module per area, each with its own router; the order below is the dispatch order
(a command registered earlier wins over a later area's value prompt).
"""

from aiogram import Router

from bot.handlers.admin import (
    catalogue,
    loyalty,
    marketplace,
    menu,
    orders,
    prices,
    prompts,
    sources,
    stats,
    stock,
    supplier,
    users,
)
from bot.handlers.admin.common import InPrivateChat, IsAdmin

__all__ = ["InPrivateChat", "IsAdmin", "router"]

router = Router(name=__name__)
router.message.filter(InPrivateChat(), IsAdmin())
router.callback_query.filter(InPrivateChat(), IsAdmin())
router.include_routers(
    menu.router,
    supplier.router,
    sources.router,
    orders.router,
    stats.router,
    catalogue.router,
    prices.router,
    users.router,
    stock.router,
    marketplace.router,  # only when a seller API is configured
    loyalty.router,
    prompts.router,  # last: catches anything but text in a value prompt
)
