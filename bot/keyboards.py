"""Inline keyboards: pure functions from the data they show to markup.

Customer keyboards are built as plain rows rather than with ``InlineKeyboardBuilder``:
the builder deep-copies every button each time it exports, which cost a quarter of the
bot's CPU per update in the throughput benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n.context import get_i18n
from pydantic import ConfigDict

from bot.callbacks import (
    BuyOffer,
    CategoryPage,
    ConfirmOrder,
    Nav,
    OfferView,
    OrdersPage,
    OrderView,
    ProductView,
    Rewards,
    SearchPage,
    ServerPick,
    SetLanguage,
    StarsPack,
)
from bot.i18n import LANGUAGES
from services.catalogue import CATEGORY_GIFT_CARDS, CATEGORY_STARS, CATEGORY_TOP_UP
from services.suppliers.registry import short_code
from storage.catalogue import Product
from storage.orders import Order

PAGE_SIZE = 8

CATEGORY_BY_CODE = {"top": CATEGORY_TOP_UP, "gift": CATEGORY_GIFT_CARDS, "stars": CATEGORY_STARS}
CODE_BY_CATEGORY = {name: code for code, name in CATEGORY_BY_CODE.items()}


class SharedKeyboard(InlineKeyboardMarkup):
    """An inline keyboard built once and shown to many customers (a catalogue page, the
    main menu). Frozen, so that the Bot API session may encode it once
    (:class:`bot.session.ShopSession`); its rows must not be changed either."""

    model_config = ConfigDict(frozen=True)


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def rows(buttons: Sequence[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    """Buttons laid out ``width`` per row."""
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def category_title(category: str) -> str:
    titles = {
        CATEGORY_TOP_UP: _("category.top_up"),
        CATEGORY_GIFT_CARDS: _("category.gift_cards"),
        CATEGORY_STARS: _("category.stars"),
    }
    return titles.get(category, category)


def _locale() -> str:
    return get_i18n().current_locale


def main_menu() -> InlineKeyboardMarkup:
    return _main_menu(_locale())


@lru_cache(maxsize=16)
def _main_menu(locale: str) -> InlineKeyboardMarkup:
    buttons = [
        button(_(key), Nav(to=target))
        for key, target in (
            ("menu.catalogue", "catalogue"),
            ("menu.search", "search"),
            ("menu.gift_stars", "stars"),
            ("menu.my_orders", "orders"),
            ("menu.rewards", "rewards"),
            ("menu.language", "language"),
            ("menu.support", "support"),
        )
    ]
    return SharedKeyboard(inline_keyboard=rows(buttons, 2))


def _home_button() -> InlineKeyboardButton:
    return button(_("common.main_menu"), Nav(to="menu"))


def home_only() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_home_button()]])


def after_delivery() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[button(_("menu.my_orders"), Nav(to="orders")), _home_button()]]
    )


def categories(available: Sequence[str]) -> InlineKeyboardMarkup:
    keyboard = [
        [button(category_title(category), CategoryPage(code=CODE_BY_CATEGORY[category]))]
        for category in available
        if category in CODE_BY_CATEGORY
    ]
    keyboard.append([_home_button()])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def _pager(
    page: int, pages: int, make: type[CallbackData], **fixed: object
) -> list[InlineKeyboardButton]:
    """Prev · page/pages · Next; the middle button shows the same page again."""
    if pages <= 1:
        return []
    row = []
    if page > 0:
        row.append(button(_("common.prev"), make(page=page - 1, **fixed)))
    row.append(
        button(_("common.page").format(page=page + 1, pages=pages), make(page=page, **fixed))
    )
    if page + 1 < pages:
        row.append(button(_("common.next"), make(page=page + 1, **fixed)))
    return row


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def products(items: Sequence[Product], code: str, page: int, total: int) -> InlineKeyboardMarkup:
    """A catalogue page. The same page in the same language is the same keyboard for every
    customer, so it is built once and reused (building 12 buttons cost ~13 % of the CPU
    per update in the throughput benchmark)."""
    return _products(tuple(items), code, page, total, _locale())


@lru_cache(maxsize=1024)
def _products(
    items: tuple[Product, ...], code: str, page: int, total: int, locale: str
) -> InlineKeyboardMarkup:
    keyboard = rows(
        [button(p.name, product_view(p.supplier, p.product_id, page)) for p in items], 2
    )
    pager = _pager(page, _pages(total), CategoryPage, code=code)
    if pager:
        keyboard.append(pager)
    keyboard.append([button(_("common.back"), Nav(to="catalogue")), _home_button()])
    return SharedKeyboard(inline_keyboard=keyboard)


def search_results(
    items: Sequence[Product], page: int = 0, total: int = 0, categories: Sequence[str] = ()
) -> InlineKeyboardMarkup:
    """A page of search results (``total`` found, pages of :data:`PAGE_SIZE`) or, when
    nothing was found, the suggested products and then the ``categories`` to browse."""
    keyboard = [[button(p.name, product_view(p.supplier, p.product_id))] for p in items]
    pager = _pager(page, _pages(total), SearchPage)
    if pager:
        keyboard.append(pager)
    keyboard.extend(
        [button(category_title(category), CategoryPage(code=CODE_BY_CATEGORY[category]))]
        for category in categories
        if category in CODE_BY_CATEGORY
    )
    keyboard.append([button(_("menu.search"), Nav(to="search")), _home_button()])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def product_view(supplier: str, product_id: str, page: int = 0) -> ProductView:
    """The button data of a product: ``prd:<short>:<product id>:<page>``."""
    return ProductView(s=short_code(supplier), product_id=product_id, back_page=page)


def offers(
    items: Sequence[tuple[str, str, str]], back: InlineKeyboardButton
) -> InlineKeyboardMarkup:
    """``items``: (supplier short code, offer id, button text) of each good, priced and
    translated (a product page may show goods of several suppliers' products)."""
    keyboard = [
        [button(text, OfferView(s=short, offer_id=offer_id))] for short, offer_id, text in items
    ]
    keyboard.append([back, _home_button()])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def back_to_category(category: str, page: int) -> InlineKeyboardButton:
    return button(
        _("common.back"), CategoryPage(code=CODE_BY_CATEGORY.get(category, "gift"), page=page)
    )


def offer_card(
    supplier: str, offer_id: str, product_id: str, stars: int | None, is_stars_pack: bool = False
) -> InlineKeyboardMarkup:
    short = short_code(supplier)
    keyboard = []
    if stars is not None:
        buy = (
            StarsPack(s=short, offer_id=offer_id)
            if is_stars_pack
            else BuyOffer(s=short, offer_id=offer_id, stars=stars)
        )
        keyboard.append([button(_("offer.buy").format(stars=stars), buy)])
    keyboard.append([button(_("common.back"), product_view(supplier, product_id)), _home_button()])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def servers(labels: Sequence[str]) -> InlineKeyboardMarkup:
    keyboard = rows(
        [button(label, ServerPick(index=index)) for index, label in enumerate(labels)], 2
    )
    keyboard.append([button(_("common.cancel"), Nav(to="cancel"))])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def cancel_only() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[button(_("common.cancel"), Nav(to="cancel"))]])


def confirm(stars: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(_("confirm.pay").format(stars=stars), ConfirmOrder(action="pay"))],
            [button(_("confirm.change_player"), ConfirmOrder(action="change"))],
            [button(_("confirm.promo"), ConfirmOrder(action="promo"))],
            [button(_("common.cancel"), Nav(to="cancel"))],
        ]
    )


def rewards(spend_next: bool, has_promo: bool) -> InlineKeyboardMarkup:
    """The Rewards screen: Withdraw, spend the balance on the next purchase (on/off),
    enter or drop a promo code, main menu."""
    spend = (
        button(_("rewards.spend_off"), Rewards(action="spend", on=False))
        if spend_next
        else button(_("rewards.spend_on"), Rewards(action="spend", on=True))
    )
    promo = (
        button(_("rewards.promo_clear"), Rewards(action="clear"))
        if has_promo
        else button(_("rewards.promo"), Rewards(action="promo"))
    )
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(_("rewards.withdraw"), Rewards(action="withdraw"))],
            [spend],
            [promo],
            [_home_button()],
        ]
    )


def order_list(items: Sequence[tuple[Order, str]], page: int, total: int) -> InlineKeyboardMarkup:
    """``items``: (order, button text) pairs."""
    keyboard = [[button(text, OrderView(order_id=order.id, page=page))] for order, text in items]
    pager = _pager(page, _pages(total), OrdersPage)
    if pager:
        keyboard.append(pager)
    keyboard.append([_home_button()])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)


def order_detail(page: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[button(_("common.back"), OrdersPage(page=page)), _home_button()]]
    )


def languages() -> InlineKeyboardMarkup:
    keyboard = [[button(name, SetLanguage(code=code)) for code, name in LANGUAGES.items()]]
    keyboard.append([_home_button()])
    return InlineKeyboardMarkup(inline_keyboard=keyboard)
