"""Routers, one per feature. ``get_routers()`` gives them in dispatch order."""

from aiogram import Router

from bot.handlers import admin, catalog, checkout, errors, mass_sending, orders, stars, start


def get_routers() -> list[Router]:
    """The feature routers, released from any earlier Dispatcher.

    A router attaches to one Dispatcher; a process that builds a new one after stopping
    the old (an in-process restart, the demo, the tests) takes them over.
    """
    # admin first: its filters pass only admins in a private chat, everyone else falls through
    routers = [
        errors.router,
        admin.router,
        mass_sending.router,
        start.router,
        checkout.router,
        stars.router,
        orders.router,
    ]
    routers.append(catalog.router)  # last: "any text outside a step is a search" catches all
    for router in routers:
        router._parent_router = None
    return routers
