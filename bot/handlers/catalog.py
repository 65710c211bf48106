"""Browsing: categories -> products -> offers -> offer card; text search; inline mode."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, MagicData, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
)
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot import keyboards
from bot.callbacks import CategoryPage, Nav, OfferView, ProductView, SearchPage
from bot.handlers.admin.common import IsAdmin
from bot.states import SearchInput
from bot.ui import show
from services.catalogue import CATEGORY_STARS
from services.orders import OrderService
from services.pricing import UnknownCurrency
from services.suppliers.registry import UnknownSupplier, short_code
from storage.catalogue import StoredOffer

logger = logging.getLogger(__name__)
router = Router(name=__name__)

MAX_QUERY = 64


def offer_stars(order_service: OrderService, offer: StoredOffer) -> int | None:
    """Retail Stars from the stored price; ``None`` when the currency has no rate."""
    try:
        return order_service.pricing.book.stars(offer.price, offer.currency, offer.stars_amount)
    except UnknownCurrency:
        return None


def any_priced(order_service: OrderService, offer: StoredOffer) -> bool:
    """Whether the offer's currency has a rate (an unpriced good is "not priced", not
    "out of stock")."""
    return order_service.pricing.book.can_price(offer.currency)


def _delivery_line(offer: StoredOffer) -> str:
    if offer.stars_amount is not None or offer.category == CATEGORY_STARS:
        return _("offer.delivery_stars")
    returns_key = offer.returns_key if offer.returns_key is not None else not offer.needs_player
    return _("offer.delivery_key") if returns_key else _("offer.delivery_topup")


def _needs_line(offer: StoredOffer) -> str:
    if offer.stars_amount is not None:
        return _("offer.needs_recipient")
    if offer.needs_player and offer.needs_server:
        return _("offer.needs_player_server")
    if offer.needs_player:
        return _("offer.needs_player")
    return _("offer.needs_nothing")


async def lookup_offer(
    order_service: OrderService, short: str, offer_id: str
) -> StoredOffer | None:
    """The stored offer a compact reference ``<short>:<offer id>`` names, or ``None`` for
    an unknown short code (a supplier this shop does not run) or offer."""
    try:
        ref = order_service.suppliers.resolve(short, offer_id)
    except UnknownSupplier:
        logger.info("offer reference %s:%s names no supplier of this shop", short, offer_id)
        return None
    return await order_service.catalogue.repo.get(ref.supplier, ref.offer_id)


async def send_offer_card(
    target: Message | CallbackQuery, short: str, offer_id: str, order_service: OrderService
) -> None:
    """The offer card: what the customer gets, what it needs, the price, a Buy button."""
    offer = await lookup_offer(order_service, short, offer_id)
    good = await order_service.routing.good(offer.supplier, offer.offer_id) if offer else None
    if offer is None or good is None:
        await show(target, _("offer.unavailable"), keyboards.home_only())
        return
    # the good as the customer sees it: its cheapest source in stock, never which one
    offer, stars = good.shown, good.stars
    if stars is None and any_priced(order_service, offer):
        price_line = _("offer.out_of_stock")
    elif stars is None:
        price_line = _("offer.not_priced")
    else:
        price_line = _("offer.price").format(stars=stars)
    text = _("offer.card").format(
        product=escape(offer.product_name), offer=escape(offer.offer_name), price=price_line,
        delivery=_delivery_line(offer), needs=_needs_line(offer),
    )  # fmt: skip
    await show(
        target,
        text,
        keyboards.offer_card(
            offer.supplier, offer.offer_id, offer.product_id, stars, offer.stars_amount is not None
        ),
        product_picture(offer.image_url),
    )


def product_picture(image_url: str | None) -> LinkPreviewOptions | None:
    """The product's picture shown large above the card's text (a link preview of the
    supplier's ``image_url``, so the card stays a text message Back can edit), or ``None``."""
    if not image_url:
        return None
    return LinkPreviewOptions(url=image_url, prefer_large_media=True, show_above_text=True)


@router.message(Command("catalogue", "catalog"))
async def catalogue_command(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    await state.clear()
    categories = [name for name, _count in await order_service.catalogue.repo.categories()]
    text = _("catalogue.title") if categories else _("catalogue.empty")
    await message.answer(text, reply_markup=keyboards.categories(categories))


@router.callback_query(Nav.filter(F.to == "catalogue"))
async def catalogue_menu(callback: CallbackQuery, order_service: OrderService) -> None:
    categories = [name for name, _count in await order_service.catalogue.repo.categories()]
    text = _("catalogue.title") if categories else _("catalogue.empty")
    await show(callback, text, keyboards.categories(categories))


@router.callback_query(CategoryPage.filter())
async def category_page(
    callback: CallbackQuery, callback_data: CategoryPage, order_service: OrderService
) -> None:
    category = keyboards.CATEGORY_BY_CODE.get(callback_data.code)
    if category is None:
        await callback.answer()
        return
    page = max(0, callback_data.page)
    items, total = await order_service.catalogue.repo.products(
        category, page * keyboards.PAGE_SIZE, keyboards.PAGE_SIZE
    )
    if not items and page > 0:
        page, (items, total) = (
            0,
            await order_service.catalogue.repo.products(category, 0, keyboards.PAGE_SIZE),
        )
    text = (
        _("catalogue.products").format(category=keyboards.category_title(category))
        if items
        else _("catalogue.empty")
    )
    await show(callback, text, keyboards.products(items, callback_data.code, page, total))


@router.callback_query(ProductView.filter())
async def product_offers(
    callback: CallbackQuery, callback_data: ProductView, order_service: OrderService
) -> None:
    repo = order_service.catalogue.repo
    try:
        supplier = order_service.suppliers.by_short(callback_data.s).name
    except UnknownSupplier:
        await show(callback, _("offer.unavailable"), keyboards.home_only())
        return
    product = await repo.product(supplier, callback_data.product_id)
    goods = await order_service.routing.goods_of_product(supplier, callback_data.product_id)
    if product is None or not goods:
        await show(callback, _("offer.unavailable"), keyboards.home_only())
        return
    rows = []
    for good in goods:
        offer = good.shown
        if good.stars is not None:
            label = _("catalogue.offer_button").format(offer=offer.offer_name, stars=good.stars)
        elif any_priced(order_service, offer):
            label = _("catalogue.out_of_stock_button").format(offer=offer.offer_name)
        else:
            continue
        rows.append((order_service.suppliers.short_of(offer.supplier), offer.offer_id, label))
    back = keyboards.back_to_category(product.category, callback_data.back_page)
    text = _("catalogue.offers").format(product=escape(product.name))
    await show(callback, text, keyboards.offers(rows, back))


@router.callback_query(OfferView.filter())
async def offer_card(
    callback: CallbackQuery, callback_data: OfferView, order_service: OrderService
) -> None:
    await send_offer_card(callback, callback_data.s, callback_data.offer_id, order_service)


# -- search ----------------------------------------------------------------------------


@router.message(Command("search"))
async def search_command(message: Message, state: FSMContext) -> None:
    await state.set_state(SearchInput.query)
    await message.answer(_("search.prompt"), reply_markup=keyboards.cancel_only())


@router.callback_query(Nav.filter(F.to == "search"))
async def search_menu(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(SearchInput.query)
    await show(callback, _("search.prompt"), keyboards.cancel_only())


async def _search_page(
    query: str, page: int, order_service: OrderService
) -> tuple[str, InlineKeyboardMarkup]:
    """The text and keyboard of page ``page`` of the results for ``query``."""
    search = order_service.catalogue.search
    result = await search.search(query, page * keyboards.PAGE_SIZE, keyboards.PAGE_SIZE)
    if not result.items and result.total and page > 0:
        page, result = 0, await search.search(query, 0, keyboards.PAGE_SIZE)
    if result.total == 0:
        categories = [name for name, _count in await order_service.catalogue.repo.categories()]
        key = "search.nothing_suggest" if result.suggestions else "search.nothing"
        return _(key).format(query=escape(query)), keyboards.search_results(
            result.suggestions, categories=categories
        )
    text = ngettext("search.found", "search.found", result.total).format(
        count=result.total, query=escape(query)
    )
    return text, keyboards.search_results(result.items, page, result.total)


async def _search(
    message: Message, state: FSMContext, query: str, order_service: OrderService
) -> None:
    query = query.strip()
    if len(query) > MAX_QUERY:
        await message.answer(_("common.text_too_long").format(max=MAX_QUERY))
        return
    if len(query) < 2:
        await message.answer(_("search.too_short"))
        return
    await state.update_data(search_query=query)
    text, markup = await _search_page(query, 0, order_service)
    await message.answer(text, reply_markup=markup)


@router.callback_query(SearchPage.filter())
async def search_page(
    callback: CallbackQuery,
    callback_data: SearchPage,
    state: FSMContext,
    order_service: OrderService,
) -> None:
    """Another page of the customer's last search; asks for a new one when it is gone."""
    query = (await state.get_data()).get("search_query")
    if not isinstance(query, str):
        await show(callback, _("search.prompt"), keyboards.cancel_only())
        await state.set_state(SearchInput.query)
        return
    text, markup = await _search_page(query, callback_data.page, order_service)
    await show(callback, text, markup)


@router.message(StateFilter(SearchInput.query), F.text, ~F.text.startswith("/"))
async def search_query(message: Message, state: FSMContext, order_service: OrderService) -> None:
    await state.clear()
    await _search(message, state, message.text or "", order_service)


@router.message(StateFilter(SearchInput.query))
async def search_not_text(message: Message) -> None:
    await message.answer(_("search.prompt"), reply_markup=keyboards.cancel_only())


@router.message(
    StateFilter(None), MagicData(F.event.text), MagicData(~F.event.text.startswith("/"))
)
async def text_outside_any_step(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    """Any plain text outside a conversation step is a search."""
    await _search(message, state, message.text or "", order_service)


@router.message(Command("aliases"), IsAdmin())
async def aliases_command(message: Message, order_service: OrderService) -> None:
    """The owner's search aliases (``/aliases``), one ``alias → target`` a line."""
    aliases = await order_service.catalogue.search.aliases()
    lines = "\n".join(f"{escape(alias)} → {escape(target)}" for alias, target in aliases)
    await message.answer(_("search.aliases").format(aliases=lines or "—"))


@router.message(Command("alias"), IsAdmin())
async def alias_command(
    message: Message, command: CommandObject, order_service: OrderService
) -> None:
    """``/alias <words customers type> = <words of the product>``: search reads the first
    as the second from now on (replacing an alias of the same words)."""
    alias, sep, target = (command.args or "").partition("=")
    try:
        if not sep:
            raise ValueError("no '='")
        alias, target = await order_service.catalogue.search.add_alias(
            alias, target, message.from_user.id if message.from_user else None
        )
    except ValueError:
        await message.answer(_("search.alias_usage"))
        return
    logger.info("search alias %r -> %r added by %s", alias, target, message.from_user)
    await message.answer(_("search.alias_added").format(alias=escape(alias), target=escape(target)))


@router.inline_query()
async def inline_search(inline_query: InlineQuery, bot: Bot, order_service: OrderService) -> None:
    """``@bot genshin`` in any chat: offers that open the bot on that offer."""
    query = inline_query.query.strip()[:MAX_QUERY]
    offers = await order_service.catalogue.search.offers(query, limit=20) if len(query) >= 2 else []
    me = await bot.me()
    results = []
    for offer in offers:
        stars = offer_stars(order_service, offer)
        if stars is None:
            continue
        short = short_code(offer.supplier)
        link = f"https://t.me/{me.username}?start=offer_{short}_{offer.offer_id}"
        title = f"{offer.product_name} — {offer.offer_name}"
        results.append(
            InlineQueryResultArticle(
                id=f"{short}:{offer.offer_id}"[:64],
                title=title,
                description=_("inline.description").format(stars=stars),
                input_message_content=InputTextMessageContent(
                    message_text=_("inline.message").format(
                        product=escape(offer.product_name),
                        offer=escape(offer.offer_name),
                        stars=stars,
                    )
                ),
                reply_markup=InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text=_("inline.buy_button"), url=link)]]
                ),
                thumbnail_url=offer.image_url,
            )
        )
    await inline_query.answer(results, cache_time=60, is_personal=False)
