"""Routers, one per feature. ``get_routers()`` gives them in dispatch order."""

from aiogram import Router

from bot.handlers import (
    admin,
    catalog,
    checkout,
    errors,
    groups,
    loyalty,
    mass_sending,
    orders,
    stars,
    start,
)

#: The customer flows, only in a private chat (``successful_payment`` from anywhere);
#: outside one, ``groups.router`` answers with a link to the private chat.
customer = Router(name="customer")
customer.message.filter(groups.PrivateChat())
customer.callback_query.filter(groups.PrivateChat())
customer.include_routers(
    loyalty.router,  # first: a word typed at the confirmation step may be a promo code
    start.router,
    checkout.router,
    stars.router,
    orders.router,
    catalog.router,  # last: "any text outside a step is a search" catches all
)


def get_routers() -> list[Router]:
    """The feature routers, released from any earlier Dispatcher.

    A router attaches to one Dispatcher; a process that builds a new one after stopping
    the old (an in-process restart, the demo, the tests) takes them over.
    """
    # admin first: its filters pass only admins in a private chat, everyone else falls through
    routers = [errors.router, admin.router, mass_sending.router, groups.router, customer]
    for router in routers:
        router._parent_router = None
    return routers
