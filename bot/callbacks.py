"""Every inline button's data: short-prefixed ``CallbackData`` factories (64 bytes max).

Ids and pages are bounded (:data:`Id`, :data:`Page`): data outside them (crafted) matches
no handler instead of overflowing SQLite's 64-bit integer in a query.
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from services.parsing import SQLITE_INT_MAX

Id = Annotated[int, Field(ge=0, le=SQLITE_INT_MAX)]
Page = Annotated[int, Field(ge=0, le=100_000)]
#: a supplier's short code (``VendorSpec.short``)
Short = Annotated[str, Field(min_length=1, max_length=3, pattern=r"^[a-z0-9]+$")]
#: a vendor's offer or product id as text (numbers, UUIDs, slugs); no ``:`` (the separator)
TEXT_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,40}$"
TextId = Annotated[str, Field(pattern=TEXT_ID_PATTERN)]


class Nav(CallbackData, prefix="nav"):
    """Main-menu destinations: menu, catalogue, search, stars, orders, language, support."""

    to: str


class CategoryPage(CallbackData, prefix="cat"):
    """A page of a category's products; ``code`` is ``top``, ``gift`` or ``stars``."""

    code: str
    page: Page = 0


class ProductView(CallbackData, prefix="prd"):
    """A product of supplier ``s`` (short code): packed ``prd:<s>:<product id>:<page>``."""

    s: Short
    product_id: TextId
    back_page: Page = 0


class OfferView(CallbackData, prefix="ofr"):
    """An offer by its compact reference ``<short>:<offer id>`` (``ofr:g:999``)."""

    s: Short
    offer_id: TextId


class BuyOffer(CallbackData, prefix="buy"):
    """``stars``: the price the button showed (0: not known), to tell a change."""

    s: Short
    offer_id: TextId
    stars: Id = 0


class ServerPick(CallbackData, prefix="srv"):
    """Index into the server list kept in the checkout state."""

    index: Page


class ConfirmOrder(CallbackData, prefix="cfm"):
    """``pay``, ``change`` (enter another player ID) or ``promo`` (enter a promo code)."""

    action: str


class OrdersPage(CallbackData, prefix="ords"):
    page: Page = 0


class OrderView(CallbackData, prefix="ord"):
    order_id: Id
    page: Page = 0


class SetLanguage(CallbackData, prefix="lang"):
    code: str


class StarsPack(CallbackData, prefix="stp"):
    """A Telegram Stars pack chosen for gifting."""

    s: Short
    offer_id: TextId


class StarsRecipient(CallbackData, prefix="str"):
    """``confirm`` the resolved recipient, ``change`` it, or ``self`` (gift to myself)."""

    action: str


class Admin(CallbackData, prefix="adm"):
    """Admin console buttons: ``action`` with one optional argument (an id, a page...)."""

    action: str
    arg: str = ""


class SearchPage(CallbackData, prefix="sp"):
    """A page of the customer's last search (its text is kept in the conversation data)."""

    page: Page = 0


class Rewards(CallbackData, prefix="rw"):
    """The Rewards screen: ``show``, ``withdraw``, ``spend`` (``on``: the balance goes
    into the next invoice, ``off``), ``promo`` (enter a code), ``clear`` (drop the code)."""

    action: str
    on: bool = False
