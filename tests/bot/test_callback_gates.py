"""Routers are passed over in one check for buttons that are not theirs, and every button
still reaches its handler (bot.handlers.gate_callbacks)."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from bot.handlers import CallbackPrefixes, gate_callbacks, get_routers


class Page(CallbackData, prefix="pg"):
    number: int


class Refresh(CallbackData, prefix="rf"):  # no field: packs to "rf" alone
    pass


class Pick(CallbackData, prefix="pk", sep="|"):
    item: str


def _press(data: str) -> Update:
    user = User(id=5, is_bot=False, first_name="Ann")
    chat = Chat(id=5, type="private")
    message = Message(message_id=1, date=1_764_000_000, chat=chat, text="menu")
    query = CallbackQuery(id="1", from_user=user, chat_instance="1", data=data, message=message)
    return Update(update_id=1, callback_query=query)


def _routers(seen: list[str]) -> tuple[Router, Router, Router]:
    catalogue, loose, parent = Router(name="catalogue"), Router(name="loose"), Router()

    @catalogue.callback_query(Page.filter())
    async def page(query: CallbackQuery, callback_data: Page) -> None:
        seen.append(f"page {callback_data.number}")

    @catalogue.callback_query(Refresh.filter())
    async def refresh(query: CallbackQuery) -> None:
        seen.append("refresh")

    @catalogue.callback_query(Pick.filter(F.item != "none"))
    async def pick(query: CallbackQuery, callback_data: Pick) -> None:
        seen.append(f"pick {callback_data.item}")

    @loose.callback_query(F.data == "legacy")
    async def legacy(query: CallbackQuery) -> None:
        seen.append("legacy")

    parent.include_routers(catalogue, loose)
    return catalogue, loose, parent


def _gates(router: Router) -> list[Any]:
    filters = router.callback_query._handler.filters or []
    return [f.callback for f in filters if isinstance(f.callback, CallbackPrefixes)]


async def test_every_button_still_reaches_its_handler_and_others_pass_by() -> None:
    seen: list[str] = []
    catalogue, loose, parent = _routers(seen)
    gate_callbacks(parent)
    gate_callbacks(parent)  # a second Dispatcher: one gate still

    assert len(_gates(catalogue)) == 1
    assert _gates(loose) == []  # F.data could take any data: no gate
    assert _gates(parent) == []  # closing it would close "loose" too
    gate = _gates(catalogue)[0]
    assert not await gate(_press("pgx:1").callback_query)
    assert not await gate(_press("legacy").callback_query)

    dispatcher = Dispatcher()
    dispatcher.include_router(parent)
    bot = Bot("42:TEST")
    for data in ("pg:3", "rf", "pk|gem", "legacy", "pk|none", "unknown:1"):
        await dispatcher.feed_update(bot, _press(data))
    assert seen == ["page 3", "refresh", "pick gem", "legacy"]


async def test_a_catalogue_press_passes_over_the_other_customer_routers() -> None:
    customer = get_routers()[-1]
    gated = {r.name: _gates(r) for r in customer.sub_routers}
    assert all(gated.values()), gated  # every customer flow: one check per press
    catalogue_press = _press("cat:top:1").callback_query
    assert [name for name, gates in gated.items() if await gates[0](catalogue_press)] == [
        "bot.handlers.catalog"
    ]
