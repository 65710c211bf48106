"""Routers, one per feature. ``get_routers()`` gives them in dispatch order."""

from aiogram import Router
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery

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


class CallbackPrefixes(Filter):
    """A router's gate for button presses: passes a callback whose data is packed by one
    of ``prefixes`` (``{separator: {CallbackData.__prefix__, ...}}``, e.g. ``{":": {"cat"}}``
    for ``cat:top:1``, and ``cat`` alone, as a ``CallbackData`` without fields packs).

    aiogram tries every handler of every router in turn, and each ``CallbackData`` filter
    parses the data to find it is not its own: a catalogue press went through 40 handler
    checks in 12 routers. With a gate, a router whose buttons these are not is passed over
    in one check (:func:`gate_callbacks`)."""

    def __init__(self, prefixes: dict[str, frozenset[str]]) -> None:
        self.prefixes = prefixes

    async def __call__(self, query: CallbackQuery) -> bool:
        data = query.data
        if data is None:
            return False
        return any(data.partition(sep)[0] in names for sep, names in self.prefixes.items())


def gate_callbacks(router: Router) -> None:
    """Give ``router`` and each router under it a :class:`CallbackPrefixes` gate made of
    its own handlers' ``CallbackData`` prefixes (its sub-routers' too: a router's gate
    closes them as well). A router with a button handler of any other kind gets no gate;
    neither does one gated already (``get_routers`` runs for every new Dispatcher). The
    gate is made of the handlers registered by then (the routers' modules register theirs
    at import): a handler added to a router later must not use a new prefix."""
    for sub in router.sub_routers:
        gate_callbacks(sub)
    observer = router.callback_query
    root = observer._handler.filters or []
    if any(isinstance(f.callback, CallbackPrefixes) for f in root):
        return
    prefixes = _prefixes(router)
    if prefixes:
        by_separator: dict[str, set[str]] = {}
        for prefix, separator in prefixes:
            by_separator.setdefault(separator, set()).add(prefix)
        observer.filter(
            CallbackPrefixes({sep: frozenset(names) for sep, names in by_separator.items()})
        )


def _prefixes(router: Router) -> set[tuple[str, str]] | None:
    """Every callback prefix ``router`` and its sub-routers handle; ``None`` when one of
    their button handlers is not a ``CallbackData`` filter (it could take any data)."""
    found: set[tuple[str, str]] = set()
    for handler in router.callback_query.handlers:
        kinds = [
            f.callback for f in handler.filters or [] if isinstance(f.callback, CallbackQueryFilter)
        ]
        if not kinds:
            return None
        data = kinds[0].callback_data
        found.add((data.__prefix__, data.__separator__))
    for sub in router.sub_routers:
        below = _prefixes(sub)
        if below is None:
            return None
        found |= below
    return found


def get_routers() -> list[Router]:
    """The feature routers, released from any earlier Dispatcher.

    A router attaches to one Dispatcher; a process that builds a new one after stopping
    the old (an in-process restart, the demo, the tests) takes them over.
    """
    # admin first: its filters pass only admins in a private chat, everyone else falls through
    routers = [errors.router, admin.router, mass_sending.router, groups.router, customer]
    for router in routers:
        router._parent_router = None
        gate_callbacks(router)
    return routers
