"""Routers, one per feature. ``get_routers()`` gives them in dispatch order."""

from aiogram import Router

from bot.handlers import catalog, checkout, errors, orders, stars, start


def get_routers() -> list[Router]:
    # catalog goes last: its "any text outside a step is a search" handler is a catch-all
    return [
        errors.router,
        start.router,
        checkout.router,
        stars.router,
        orders.router,
        catalog.router,
    ]
