"""Inline keyboards: pure functions from the data they show to markup."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import (
    BuyOffer,
    CategoryPage,
    ConfirmOrder,
    Nav,
    OfferView,
    OrdersPage,
    OrderView,
    ProductView,
    ServerPick,
    SetLanguage,
    StarsPack,
)
from bot.i18n import LANGUAGES
from services.catalogue import CATEGORY_GIFT_CARDS, CATEGORY_STARS, CATEGORY_TOP_UP
from storage.catalogue import Product
from storage.orders import Order

PAGE_SIZE = 8

CATEGORY_BY_CODE = {"top": CATEGORY_TOP_UP, "gift": CATEGORY_GIFT_CARDS, "stars": CATEGORY_STARS}
CODE_BY_CATEGORY = {name: code for code, name in CATEGORY_BY_CODE.items()}


def category_title(category: str) -> str:
    titles = {
        CATEGORY_TOP_UP: _("category.top_up"),
        CATEGORY_GIFT_CARDS: _("category.gift_cards"),
        CATEGORY_STARS: _("category.stars"),
    }
    return titles.get(category, category)


def main_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for key, target in (
        ("menu.catalogue", "catalogue"),
        ("menu.search", "search"),
        ("menu.gift_stars", "stars"),
        ("menu.my_orders", "orders"),
        ("menu.language", "language"),
        ("menu.support", "support"),
    ):
        builder.button(text=_(key), callback_data=Nav(to=target))
    builder.adjust(2)
    return builder.as_markup()


def _home_button() -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_("common.main_menu"), callback_data=Nav(to="menu").pack())


def home_only() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_home_button()]])


def after_delivery() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("menu.my_orders"), callback_data=Nav(to="orders").pack()
                ),
                _home_button(),
            ]
        ]
    )


def categories(available: Sequence[str]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for category in available:
        code = CODE_BY_CATEGORY.get(category)
        if code:
            builder.button(text=category_title(category), callback_data=CategoryPage(code=code))
    builder.adjust(1)
    builder.row(_home_button())
    return builder.as_markup()


def _pager(
    builder: InlineKeyboardBuilder, page: int, pages: int, make: type, **fixed: object
) -> None:
    if pages <= 1:
        return
    row = []
    if page > 0:
        row.append(
            InlineKeyboardButton(
                text=_("common.prev"), callback_data=make(page=page - 1, **fixed).pack()
            )
        )
    row.append(
        InlineKeyboardButton(
            text=_("common.page").format(page=page + 1, pages=pages),
            callback_data=make(page=page, **fixed).pack(),
        )
    )
    if page + 1 < pages:
        row.append(
            InlineKeyboardButton(
                text=_("common.next"), callback_data=make(page=page + 1, **fixed).pack()
            )
        )
    builder.row(*row)


def products(items: Sequence[Product], code: str, page: int, total: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for product in items:
        builder.button(
            text=product.name,
            callback_data=ProductView(product_id=product.product_id, back_page=page),
        )
    builder.adjust(2)
    pages = max(1, -(-total // PAGE_SIZE))
    _pager(builder, page, pages, CategoryPage, code=code)
    builder.row(
        InlineKeyboardButton(text=_("common.back"), callback_data=Nav(to="catalogue").pack()),
        _home_button(),
    )
    return builder.as_markup()


def search_results(items: Sequence[Product]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for product in items:
        builder.button(text=product.name, callback_data=ProductView(product_id=product.product_id))
    builder.adjust(1)
    builder.row(
        InlineKeyboardButton(text=_("menu.search"), callback_data=Nav(to="search").pack()),
        _home_button(),
    )
    return builder.as_markup()


def offers(rows: Sequence[tuple[int, str]], back: InlineKeyboardButton) -> InlineKeyboardMarkup:
    """``rows``: (offer id, button text) pairs, already priced and translated."""
    builder = InlineKeyboardBuilder()
    for offer_id, text in rows:
        builder.button(text=text, callback_data=OfferView(offer_id=offer_id))
    builder.adjust(1)
    builder.row(back, _home_button())
    return builder.as_markup()


def back_to_category(category: str, page: int) -> InlineKeyboardButton:
    code = CODE_BY_CATEGORY.get(category, "gift")
    return InlineKeyboardButton(
        text=_("common.back"), callback_data=CategoryPage(code=code, page=page).pack()
    )


def offer_card(
    offer_id: int, product_id: int, stars: int | None, is_stars_pack: bool = False
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if stars is not None:
        buy = StarsPack(offer_id=offer_id) if is_stars_pack else BuyOffer(offer_id=offer_id)
        builder.button(text=_("offer.buy").format(stars=stars), callback_data=buy)
    builder.button(text=_("common.back"), callback_data=ProductView(product_id=product_id))
    builder.row(_home_button())
    builder.adjust(1, 2)
    return builder.as_markup()


def servers(labels: Sequence[str]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, label in enumerate(labels):
        builder.button(text=label, callback_data=ServerPick(index=index))
    builder.adjust(2)
    builder.row(
        InlineKeyboardButton(text=_("common.cancel"), callback_data=Nav(to="cancel").pack())
    )
    return builder.as_markup()


def cancel_only() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("common.cancel"), callback_data=Nav(to="cancel").pack())]
        ]
    )


def confirm(stars: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("confirm.pay").format(stars=stars), callback_data=ConfirmOrder(action="pay")
    )
    builder.button(text=_("confirm.change_player"), callback_data=ConfirmOrder(action="change"))
    builder.button(text=_("common.cancel"), callback_data=Nav(to="cancel"))
    builder.adjust(1)
    return builder.as_markup()


def order_list(items: Sequence[tuple[Order, str]], page: int, total: int) -> InlineKeyboardMarkup:
    """``items``: (order, button text) pairs."""
    builder = InlineKeyboardBuilder()
    for order, text in items:
        builder.button(text=text, callback_data=OrderView(order_id=order.id, page=page))
    builder.adjust(1)
    pages = max(1, -(-total // PAGE_SIZE))
    _pager(builder, page, pages, OrdersPage)
    builder.row(_home_button())
    return builder.as_markup()


def order_detail(page: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("common.back"), callback_data=OrdersPage(page=page).pack()
                ),
                _home_button(),
            ]
        ]
    )


def languages() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code, name in LANGUAGES.items():
        builder.button(text=name, callback_data=SetLanguage(code=code))
    builder.row(_home_button())
    return builder.as_markup()
