"""Marketplace: selling on the supplier's marketplace through its seller API
(:class:`services.suppliers.marketplace.Marketplace`), shown only when one is configured.

Dashboard (products, sales, rewards); listings: a page at a time, create (AUTO with
codes, or MANUAL), detail with the moderation status, edit title, description, price or
image (a re-moderation is said), deactivate and re-enable, upload codes from pasted lines
or a .txt/.csv file; offers on any marketplace product: add codes at a price, list,
change the price, delete. A refusal (bad key, a refused listing, a duplicate code) is
told in the admin's language and changes nothing in the shop; a successful change is
written to the audit log.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import BaseFilter, Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import back, bad_number_text, button
from bot.ui import show
from services.admin import AdminService
from services.marketplace import (
    MAX_CODES,
    CodeBatch,
    StockForMarketplace,
    move_stock_to_listing,
    parse_listing_price,
    parse_offer_price,
    read_codes,
)
from services.parsing import BadNumber, parse_int
from services.suppliers.errors import (
    InvalidRequestBody,
    InvalidToken,
    OfferNotFound,
    RateLimited,
    RetryLaterError,
    SupplierAPIError,
    SupplierConnectionError,
    SupplierError,
)
from services.suppliers.marketplace import (
    Listing,
    ListingNotFound,
    Marketplace,
    RuleViolation,
    WriteOutcomeUnknown,
    from_cents,
)

logger = logging.getLogger(__name__)

router = Router(name=__name__)

PAGE = 8
MAX_FILE_BYTES = 256_000
MAX_TITLE = 200
MAX_DESCRIPTION = 3000


class HasMarketplace(BaseFilter):
    """A seller API is configured (``marketplace`` in the dispatcher's data)."""

    async def __call__(self, event: TelegramObject, marketplace: Marketplace | None = None) -> bool:
        return marketplace is not None


router.message.filter(HasMarketplace())
router.callback_query.filter(HasMarketplace())


class MarketInput(StatesGroup):
    """The marketplace prompts: a new listing (title, price, delivery, codes), one field of
    a listing, codes for a listing, a new offer (product, price, codes), an offer's new
    price, and how many own-stock keys to move."""

    new_name = State()
    new_price = State()
    new_type = State()
    new_codes = State()
    edit_value = State()
    codes = State()
    offer_product = State()
    offer_price = State()
    offer_codes = State()
    offer_new_price = State()
    stock_count = State()


@router.message(StateFilter(MarketInput), Command("cancel"))
async def cancel_prompt(message: Message, state: FSMContext) -> None:
    """``/cancel`` in a marketplace prompt leaves it (before any prompt takes it as a
    title or a code); nothing is sent to the marketplace."""
    await state.clear()
    await message.answer(_("common.cancelled"), reply_markup=back(None, "mk"))


_EDITABLE = {"name": "market.ask_name", "desc": "market.ask_description",
             "price": "market.ask_price", "image": "market.ask_image"}  # fmt: skip
_MODERATION = {"pending": "market.moderation.pending", "approved": "market.moderation.approved",
               "rejected": "market.moderation.rejected"}  # fmt: skip


# -- rendering ---------------------------------------------------------------------


def _moderation(status: str | None) -> str:
    key = _MODERATION.get((status or "").lower())
    return _(key) if key else escape(status or "-")


def _listing_text(listing: Listing) -> str:
    delivery = {"AUTO": _("market.delivery.auto"), "MANUAL": _("market.delivery.manual")}
    return _("market.listing").format(
        title=escape(listing.title or listing.id), price=listing.price if listing.price is not None else "-",
        currency=escape(listing.currency or ""), delivery=delivery.get(listing.delivery_type or "", "-"),
        moderation=_moderation(listing.moderation_status),
        active=_("admin.yes") if listing.is_active else _("admin.no"),
        stock=listing.stock_available if listing.stock_available is not None else "-",
        id=escape(listing.id),
    )  # fmt: skip


def _listing_markup(listing: Listing) -> Any:
    builder = InlineKeyboardBuilder()
    for key, field in (("market.edit_name", "name"), ("market.edit_description", "desc"),
                       ("market.edit_price", "price"), ("market.edit_image", "image")):  # fmt: skip
        builder.button(text=_(key), callback_data=Admin(action="mked", arg=f"{field}={listing.id}"))
    if listing.delivery_type == "AUTO":
        builder.button(
            text=_("market.upload_codes"), callback_data=Admin(action="mkcodes", arg=listing.id)
        )
    if listing.is_active:
        builder.button(
            text=_("market.deactivate"), callback_data=Admin(action="mkoff", arg=listing.id)
        )
    else:
        builder.button(
            text=_("market.reenable"), callback_data=Admin(action="mkon", arg=listing.id)
        )
    builder.adjust(2)
    return back(builder, "mkl", "0")


def _codes_report(batch: CodeBatch) -> str:
    parts = []
    if batch.duplicates:
        lines = ", ".join(str(number) for number, _code in batch.duplicates[:20])
        parts.append(_("market.codes_duplicates").format(count=len(batch.duplicates), lines=lines))
    if batch.too_long:
        lines = ", ".join(str(number) for number in batch.too_long[:20])
        parts.append(_("market.codes_too_long").format(count=len(batch.too_long), lines=lines))
    return "\n".join(parts)


def _error_text(exc: Exception, *, write: bool = False) -> str:
    """What went wrong with the marketplace, in the admin's language; nothing was changed
    in the shop (a lost answer says it may have happened there). ``write``: the call
    changes something and is repeated on failure (update, deactivate), so no answer or a
    5xx after the last try leaves its outcome unknown."""
    detail = escape(
        (getattr(exc, "supplier_message", None) or getattr(exc, "code", None) or "")[:200]
    )
    if isinstance(exc, WriteOutcomeUnknown):
        return _("market.error.unknown")
    if write and isinstance(exc, SupplierConnectionError | RetryLaterError):
        if not isinstance(exc, RateLimited):  # a 429 did nothing
            return _("market.error.unknown")
    if isinstance(exc, InvalidToken):
        return _("market.error.key")
    if isinstance(exc, RuleViolation):
        return _("market.error.refused").format(detail=detail)
    if isinstance(exc, InvalidRequestBody):
        return _("market.error.invalid").format(detail=detail)
    if isinstance(exc, ListingNotFound):
        return _("market.error.not_found")
    if isinstance(exc, RetryLaterError):
        return _("market.error.busy")
    if isinstance(exc, SupplierConnectionError):
        return _("market.error.unreachable")
    if isinstance(exc, SupplierAPIError):
        return _("market.error.other").format(detail=detail or exc.http_status)
    if isinstance(exc, ValueError):  # an empty id (crafted button): refused before sending
        return _("market.error.not_found")
    return _("market.error.unreachable")


def _log_failure(what: str, exc: SupplierError) -> None:
    logger.warning("marketplace %s failed: %s: %s", what, type(exc).__name__, exc)


async def _read_input(message: Message, bot: Bot) -> tuple[str, bool] | None:
    """Text of the message, or of its .txt/.csv document; ``(text, is_csv)``; ``None``
    for a file that is not one (or too big, or not UTF-8)."""
    if message.document is None:
        return message.text or "", False
    name = (message.document.file_name or "").lower()
    if not name.endswith((".txt", ".csv")) or (message.document.file_size or 0) > MAX_FILE_BYTES:
        return None
    data = await bot.download(message.document)
    if data is None:
        return None
    try:
        return data.read().decode("utf-8-sig"), name.endswith(".csv")
    except UnicodeDecodeError:
        return None


async def _codes_from(message: Message, bot: Bot) -> CodeBatch | None:
    """The codes an admin sent (answering the problem when there are none to send)."""
    read = await _read_input(message, bot)
    if read is None:
        await message.answer(_("market.codes_bad_file"))
        return None
    batch = read_codes(read[0], csv_file=read[1])
    if not batch.codes:
        await message.answer(_("market.codes_none"))
        return None
    if len(batch.codes) > MAX_CODES:
        await message.answer(_("market.codes_too_many").format(max=MAX_CODES))
        return None
    return batch


# -- dashboard and listings --------------------------------------------------------


def _dashboard_markup() -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("market.listings"), callback_data=Admin(action="mkl", arg="0"))
    builder.button(text=_("market.offers"), callback_data=Admin(action="mko", arg="1"))
    builder.button(text=_("market.new_listing"), callback_data=Admin(action="mknew"))
    builder.button(text=_("market.new_offer"), callback_data=Admin(action="mkoadd"))
    builder.adjust(2)
    return back(builder)


@router.callback_query(Admin.filter(F.action == "mk"))
async def dashboard(callback: CallbackQuery, state: FSMContext, marketplace: Marketplace) -> None:
    """``GET /seller/dashboard`` with the marketplace's buttons."""
    await state.clear()
    try:
        board = await marketplace.dashboard()
    except SupplierError as exc:
        _log_failure("dashboard", exc)
        await show(callback, _error_text(exc), back())
        return
    text = _("market.dashboard").format(
        total=board.total_products, active=board.active_products, pending=board.pending_products,
        sales=board.total_sales, pending_rewards=from_cents(board.pending_rewards),
        available_rewards=from_cents(board.available_rewards),
    )  # fmt: skip
    await show(callback, text, _dashboard_markup())


@router.callback_query(Admin.filter(F.action == "mkl"))
async def listings(
    callback: CallbackQuery, callback_data: Admin, state: FSMContext, marketplace: Marketplace
) -> None:
    """A page of the seller's listings (``offset`` in the button), each a button."""
    await state.clear()
    try:
        offset = parse_int(callback_data.arg or "0", high=1_000_000)
    except BadNumber:
        await callback.answer()
        return
    try:
        page = await marketplace.listings(limit=PAGE, offset=offset)
    except SupplierError as exc:
        _log_failure("listings", exc)
        await show(callback, _error_text(exc), back(None, "mk"))
        return
    builder = InlineKeyboardBuilder()
    for item in page.items:
        label = f"{item.title or item.id} · {item.price} {item.currency or ''} · {_moderation(item.moderation_status)}"
        if item.is_active is False:
            label = "⏸ " + label
        builder.row(button(label[:60], "mkd", item.id))
    nav = []
    if offset > 0:
        nav.append(button("«", "mkl", str(max(0, offset - PAGE))))
    if offset + len(page.items) < page.total:
        nav.append(button("»", "mkl", str(offset + PAGE)))
    if nav:
        builder.row(*nav)
    builder.row(button(_("market.new_listing"), "mknew"))
    text = _("market.listings_text").format(
        total=page.total, first=offset + 1 if page.items else 0, last=offset + len(page.items)
    )
    await show(callback, text, back(builder, "mk"))


async def _show_listing(
    target: Message | CallbackQuery, marketplace: Marketplace, product_id: str, note: str = ""
) -> None:
    try:
        listing = await marketplace.listing(product_id)
    except SupplierError as exc:
        _log_failure("detail", exc)
        await show(target, _error_text(exc), back(None, "mkl", "0"))
        return
    text = _listing_text(listing)
    await show(target, f"{note}\n\n{text}" if note else text, _listing_markup(listing))


@router.callback_query(Admin.filter(F.action == "mkd"))
async def listing_detail(
    callback: CallbackQuery, callback_data: Admin, state: FSMContext, marketplace: Marketplace
) -> None:
    """One listing (``GET /seller/products/{id}``) with its moderation status and buttons."""
    await state.clear()
    await _show_listing(callback, marketplace, callback_data.arg)


@router.callback_query(Admin.filter(F.action.in_({"mkoff", "mkon"})))
async def listing_switch(
    callback: CallbackQuery,
    callback_data: Admin,
    marketplace: Marketplace,
    admin_service: AdminService,
) -> None:
    """Deactivate (``POST .../deactivate``) or re-enable (``PUT`` ``is_active``)."""
    on = callback_data.action == "mkon"
    try:
        if on:
            await marketplace.update_listing(callback_data.arg, is_active=True)
        else:
            await marketplace.deactivate(callback_data.arg)
    except SupplierError as exc:
        _log_failure(callback_data.action, exc)
        await show(callback, _error_text(exc, write=True), back(None, "mkd", callback_data.arg))
        return
    await admin_service.audit(
        callback.from_user.id, "market_enable" if on else "market_deactivate", callback_data.arg
    )
    note = _("market.reenabled") if on else _("market.deactivated")
    await _show_listing(callback, marketplace, callback_data.arg, note)


@router.callback_query(Admin.filter(F.action == "mked"))
async def edit_listing(callback: CallbackQuery, callback_data: Admin, state: FSMContext) -> None:
    """Ask for a listing's new title, description, price or image (``arg``
    ``<field>=<id>``)."""
    field, _sep, product_id = callback_data.arg.partition("=")
    if field not in _EDITABLE or not product_id:
        await callback.answer()
        return
    await state.set_state(MarketInput.edit_value)
    await state.update_data(mk_field=field, mk_id=product_id)
    await show(callback, _(_EDITABLE[field]), back(None, "mkd", product_id))


def _check_text(text: str, field: str) -> str | None:
    """The problem with a typed title, description or image URL, or ``None``."""
    if not text:
        return _("market.empty")
    if field == "name" and len(text) > MAX_TITLE:
        return _("market.too_long").format(max=MAX_TITLE)
    if field == "desc" and len(text) > MAX_DESCRIPTION:
        return _("market.too_long").format(max=MAX_DESCRIPTION)
    if field == "image" and not text.startswith("https://"):
        return _("market.bad_image")
    return None


@router.message(StateFilter(MarketInput.edit_value), F.text)
async def edit_value(
    message: Message, state: FSMContext, marketplace: Marketplace, admin_service: AdminService
) -> None:
    """``PUT /seller/products/{id}`` with the one field typed; the answer's moderation
    status is shown (a new title, description or image goes back to moderation)."""
    data = await state.get_data()
    field, product_id = data.get("mk_field", ""), data.get("mk_id", "")
    text = (message.text or "").strip()
    changes: dict[str, Any] = {}
    if field == "price":
        try:
            changes["price"] = parse_listing_price(text)
        except BadNumber as exc:
            await message.answer(bad_number_text(exc))
            return
    else:
        problem = _check_text(text, field)
        if problem:
            await message.answer(problem)
            return
        changes[{"name": "name", "desc": "description", "image": "image_url"}[field]] = text
    try:
        updated = await marketplace.update_listing(product_id, **changes)
    except SupplierError as exc:
        _log_failure("update", exc)
        await message.answer(
            _error_text(exc, write=True), reply_markup=back(None, "mkd", product_id)
        )
        return
    await state.clear()
    await admin_service.audit(message.from_user.id if message.from_user else 0, "market_update",
                              f"{product_id} {field}")  # fmt: skip
    note = _("market.saved").format(moderation=_moderation(updated.moderation_status))
    if (updated.moderation_status or "").lower() == "pending":
        note += "\n" + _("market.remoderation")
    await _show_listing(message, marketplace, product_id, note)


# -- new listing -------------------------------------------------------------------


@router.callback_query(Admin.filter(F.action == "mknew"))
async def new_listing(callback: CallbackQuery, state: FSMContext) -> None:
    """Start a new listing: ask its title."""
    await state.set_state(MarketInput.new_name)
    await show(callback, _("market.ask_new_name"), back(None, "mk"))


@router.message(StateFilter(MarketInput.new_name), F.text)
async def new_listing_name(message: Message, state: FSMContext) -> None:
    """The new listing's title (unique on the marketplace): ask the price."""
    name = (message.text or "").strip()
    problem = _check_text(name, "name")
    if problem:
        await message.answer(problem)
        return
    await state.update_data(mk_name=name)
    await state.set_state(MarketInput.new_price)
    await message.answer(_("market.ask_new_price"))


@router.message(StateFilter(MarketInput.new_price), F.text)
async def new_listing_price(message: Message, state: FSMContext) -> None:
    """The new listing's price in EUR (whole cents, kept as typed): ask AUTO or MANUAL."""
    try:
        price = parse_listing_price(message.text or "")
    except BadNumber as exc:
        await message.answer(bad_number_text(exc))
        return
    await state.update_data(mk_price=str(price))
    await state.set_state(MarketInput.new_type)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("market.type_auto"), callback_data=Admin(action="mktype", arg="AUTO"))
    builder.button(text=_("market.type_manual"), callback_data=Admin(action="mktype", arg="MANUAL"))
    builder.adjust(1)
    await message.answer(_("market.ask_new_type"), reply_markup=back(builder, "mk"))


async def _create(
    target: Message | CallbackQuery, state: FSMContext, marketplace: Marketplace,
    admin_service: AdminService, admin_id: int, codes: list[str] | None, report: str = "",
) -> None:  # fmt: skip
    data = await state.get_data()
    name, price = data.get("mk_name"), data.get("mk_price")
    if not name or not price:
        await state.clear()
        await show(target, _("market.start_again"), back(None, "mk"))
        return
    try:
        made = await marketplace.create_listing(
            name=name,
            price=Decimal(price),
            delivery_type="AUTO" if codes else "MANUAL",
            codes=codes,
        )
    except SupplierError as exc:
        _log_failure("create", exc)
        await show(target, _error_text(exc), back(None, "mk"))
        return
    await state.clear()
    await admin_service.audit(admin_id, "market_create", f"{made.id} {name} {price}")
    note = _("market.created").format(moderation=_moderation(made.moderation_status))
    if codes:
        note += "\n" + _("market.created_codes").format(count=len(codes))
    if report:
        note += "\n" + report
    await _show_listing(target, marketplace, made.id, note)


@router.callback_query(StateFilter(MarketInput.new_type), Admin.filter(F.action == "mktype"))
async def new_listing_type(
    callback: CallbackQuery, callback_data: Admin, state: FSMContext, marketplace: Marketplace,
    admin_service: AdminService,
) -> None:  # fmt: skip
    """MANUAL: ``POST /seller/products`` now; AUTO: ask the codes first."""
    if callback_data.arg == "AUTO":
        await state.set_state(MarketInput.new_codes)
        await show(callback, _("market.ask_codes"), back(None, "mk"))
        return
    await _create(callback, state, marketplace, admin_service, callback.from_user.id, None)


@router.message(StateFilter(MarketInput.new_codes), F.text | F.document)
async def new_listing_codes(
    message: Message,
    state: FSMContext,
    bot: Bot,
    marketplace: Marketplace,
    admin_service: AdminService,
) -> None:
    """The AUTO listing's codes (lines or a .txt/.csv file): ``POST /seller/products``."""
    batch = await _codes_from(message, bot)
    if batch is None:
        return
    admin_id = message.from_user.id if message.from_user else 0
    await _create(
        message, state, marketplace, admin_service, admin_id, batch.codes, _codes_report(batch)
    )


# -- codes for an AUTO listing -------------------------------------------------------


@router.callback_query(Admin.filter(F.action == "mkcodes"))
async def ask_codes(
    callback: CallbackQuery,
    callback_data: Admin,
    state: FSMContext,
    own_stock: StockForMarketplace | None = None,
) -> None:
    """Codes for an AUTO listing: pasted, a file, or (when the shop holds keys of its
    own) moved from own stock."""
    await state.set_state(MarketInput.codes)
    await state.update_data(mk_id=callback_data.arg)
    builder = InlineKeyboardBuilder()
    if own_stock is not None:
        builder.button(
            text=_("market.from_stock"), callback_data=Admin(action="mkst", arg=callback_data.arg)
        )
    await show(callback, _("market.ask_codes"), back(builder, "mkd", callback_data.arg))


@router.callback_query(Admin.filter(F.action == "mkst"))
async def stock_products(
    callback: CallbackQuery,
    callback_data: Admin,
    state: FSMContext,
    own_stock: StockForMarketplace | None = None,
) -> None:
    """The own-stock products with free keys, to move some to listing ``arg``."""
    await state.clear()
    if own_stock is None:
        await callback.answer()
        return
    builder = InlineKeyboardBuilder()
    for product in await own_stock.products():
        if product.available > 0:
            label = f"{product.product_name} — {product.offer_name} ({product.available})"
            builder.row(button(label[:60], "mksp", f"{callback_data.arg}={product.id}"))
    text = _("market.stock_pick") if builder.buttons else _("market.stock_empty")
    await show(callback, text, back(builder, "mkd", callback_data.arg))


@router.callback_query(Admin.filter(F.action == "mksp"))
async def stock_count(
    callback: CallbackQuery,
    callback_data: Admin,
    state: FSMContext,
    own_stock: StockForMarketplace | None = None,
) -> None:
    """An own-stock product chosen (``arg`` ``<listing id>=<own-stock offer id>``): ask how
    many keys."""
    listing_id, _sep, offer_id = callback_data.arg.partition("=")
    if own_stock is None or not listing_id or not offer_id:
        await callback.answer()
        return
    await state.set_state(MarketInput.stock_count)
    await state.update_data(mk_id=listing_id, mk_stock=offer_id)
    await show(callback, _("market.ask_stock_count"), back(None, "mkd", listing_id))


@router.message(StateFilter(MarketInput.stock_count), F.text)
async def move_from_stock(
    message: Message,
    state: FSMContext,
    marketplace: Marketplace,
    admin_service: AdminService,
    own_stock: StockForMarketplace | None = None,
) -> None:
    """Move the number of keys typed from own stock to the listing: they leave own stock
    in the same step (never sold twice) and come back if the marketplace refuses them."""
    data = await state.get_data()
    listing_id, offer_id = data.get("mk_id", ""), data.get("mk_stock", "")
    if own_stock is None:
        await state.clear()
        return
    try:
        count = parse_int(message.text or "", low=1, high=MAX_CODES)
    except BadNumber as exc:
        await message.answer(bad_number_text(exc))
        return
    admin_id = message.from_user.id if message.from_user else 0
    try:
        result = await move_stock_to_listing(
            own_stock, marketplace, stock_offer_id=offer_id, count=count, listing_id=listing_id,
            by=admin_id,
        )  # fmt: skip
    except (SupplierError, ValueError) as exc:
        if isinstance(exc, SupplierError):
            _log_failure("move own stock", exc)
        if isinstance(exc, OfferNotFound):
            await message.answer(_("market.stock_gone"), reply_markup=back(None, "mkd", listing_id))
            return
        text = _error_text(exc)
        if not isinstance(exc, WriteOutcomeUnknown):
            text += "\n" + _("market.stock_returned")
        await message.answer(text, reply_markup=back(None, "mkd", listing_id))
        return
    except LookupError as exc:  # fewer free keys than asked: nothing was withdrawn
        if not hasattr(exc, "available"):
            raise
        available = exc.available
        await message.answer(_("market.stock_not_enough").format(available=available))
        return
    await state.clear()
    await admin_service.audit(
        admin_id, "market_codes_from_stock", f"{listing_id} {offer_id} {result.uploaded}"
    )
    note = _("market.moved").format(uploaded=result.uploaded, stock=result.stock_available)
    await _show_listing(message, marketplace, listing_id, note)


@router.message(StateFilter(MarketInput.codes), F.text | F.document)
async def upload_codes(
    message: Message,
    state: FSMContext,
    bot: Bot,
    marketplace: Marketplace,
    admin_service: AdminService,
) -> None:
    """``POST /seller/products/{id}/codes``: says ``uploaded`` and ``stock_available``."""
    batch = await _codes_from(message, bot)
    if batch is None:
        return
    product_id = (await state.get_data()).get("mk_id", "")
    try:
        result = await marketplace.upload_codes(product_id, batch.codes)
    except SupplierError as exc:
        _log_failure("upload codes", exc)
        await message.answer(_error_text(exc), reply_markup=back(None, "mkd", product_id))
        return
    await state.clear()
    admin_id = message.from_user.id if message.from_user else 0
    await admin_service.audit(admin_id, "market_codes", f"{product_id} {result.uploaded}")
    note = _("market.uploaded").format(uploaded=result.uploaded, stock=result.stock_available)
    report = _codes_report(batch)
    await _show_listing(message, marketplace, product_id, f"{note}\n{report}" if report else note)


# -- offers ------------------------------------------------------------------------


def _euros(cents: int) -> Decimal:
    return from_cents(cents)


@router.callback_query(Admin.filter(F.action == "mko"))
async def offers(
    callback: CallbackQuery, callback_data: Admin, state: FSMContext, marketplace: Marketplace
) -> None:
    """``GET /seller/offers``: a page of rows (product, price, available, sold), each
    with Change price and Delete."""
    await state.clear()
    try:
        number = parse_int(callback_data.arg or "1", low=1, high=100_000)
    except BadNumber:
        await callback.answer()
        return
    try:
        page = await marketplace.offers(page=number, page_size=PAGE)
    except SupplierError as exc:
        _log_failure("offers", exc)
        await show(callback, _error_text(exc), back(None, "mk"))
        return
    lines, builder = [], InlineKeyboardBuilder()
    for offer in page.offers:
        price = _euros(offer.price_cents)
        lines.append(_("market.offer_row").format(
            product=escape(offer.product_id), price=price, cents=offer.price_cents,
            available=offer.available, sold=offer.sold,
        ))  # fmt: skip
        if offer.available:
            builder.row(
                button(_("market.offer_price").format(price=price), "mkop", f"{offer.product_id}={offer.price_cents}"),
                button(_("market.offer_delete"), "mkodel", offer.product_id),
            )  # fmt: skip
    nav = []
    if number > 1:
        nav.append(button("«", "mko", str(number - 1)))
    if number * PAGE < page.total:
        nav.append(button("»", "mko", str(number + 1)))
    if nav:
        builder.row(*nav)
    builder.row(button(_("market.new_offer"), "mkoadd"))
    text = _("market.offers_text").format(total=page.total, page=number)
    if lines:
        text += "\n\n" + "\n".join(lines)
    await show(callback, text, back(builder, "mk"))


@router.callback_query(Admin.filter(F.action == "mkoadd"))
async def new_offer(callback: CallbackQuery, state: FSMContext) -> None:
    """Start an offer: ask the marketplace product."""
    await state.set_state(MarketInput.offer_product)
    await show(callback, _("market.ask_offer_product"), back(None, "mko", "1"))


@router.message(StateFilter(MarketInput.offer_product), F.text)
async def new_offer_product(message: Message, state: FSMContext) -> None:
    """The product: its marketplace id, or a shop offer reference ``<short>:<id>``."""
    product_id = (message.text or "").strip().rpartition(":")[2].strip()
    if not product_id or len(product_id) > 64 or any(c.isspace() for c in product_id):
        await message.answer(_("market.bad_product"))
        return
    await state.update_data(mk_product=product_id)
    await state.set_state(MarketInput.offer_price)
    await message.answer(_("market.ask_offer_price"))


@router.message(StateFilter(MarketInput.offer_price), F.text)
async def new_offer_price(message: Message, state: FSMContext) -> None:
    """The offer price typed in EUR, kept as integer cents: ask the codes."""
    try:
        cents = parse_offer_price(message.text or "")
    except BadNumber as exc:
        await message.answer(bad_number_text(exc))
        return
    await state.update_data(mk_cents=cents)
    await state.set_state(MarketInput.offer_codes)
    await message.answer(_("market.ask_codes"))


@router.message(StateFilter(MarketInput.offer_codes), F.text | F.document)
async def new_offer_codes(
    message: Message,
    state: FSMContext,
    bot: Bot,
    marketplace: Marketplace,
    admin_service: AdminService,
) -> None:
    """``POST /seller/offers`` with the codes at ``price_cents``."""
    batch = await _codes_from(message, bot)
    if batch is None:
        return
    data = await state.get_data()
    product_id, cents = data.get("mk_product", ""), int(data.get("mk_cents", 0))
    try:
        added = await marketplace.add_offers(product_id, cents, batch.codes)
    except (SupplierError, ValueError) as exc:
        if isinstance(exc, SupplierError):
            _log_failure("add offers", exc)
        await message.answer(_error_text(exc), reply_markup=back(None, "mko", "1"))
        return
    await state.clear()
    admin_id = message.from_user.id if message.from_user else 0
    await admin_service.audit(admin_id, "market_offers", f"{product_id} {added} x {cents}")
    text = _("market.offers_added").format(
        added=added, product=escape(product_id), price=_euros(cents), cents=cents
    )
    report = _codes_report(batch)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("market.offers"), callback_data=Admin(action="mko", arg="1"))
    await message.answer(f"{text}\n{report}" if report else text, reply_markup=back(builder, "mk"))


@router.callback_query(Admin.filter(F.action == "mkop"))
async def ask_offer_price(callback: CallbackQuery, callback_data: Admin, state: FSMContext) -> None:
    """Ask the new price of the unsold offers on a product at one price (``arg`` ``<product
    id>=<cents>``)."""
    product_id, _sep, old = callback_data.arg.partition("=")
    try:
        old_cents = parse_int(old, low=1, high=10_000_000_00)
    except BadNumber:
        await callback.answer()
        return
    await state.set_state(MarketInput.offer_new_price)
    await state.update_data(mk_product=product_id, mk_old=old_cents)
    text = _("market.ask_offer_new_price").format(
        product=escape(product_id), price=_euros(old_cents)
    )
    await show(callback, text, back(None, "mko", "1"))


@router.message(StateFilter(MarketInput.offer_new_price), F.text)
async def offer_new_price(
    message: Message, state: FSMContext, marketplace: Marketplace, admin_service: AdminService
) -> None:
    """``PATCH /seller/offers/{id}/price`` from the old price to the one typed."""
    try:
        cents = parse_offer_price(message.text or "")
    except BadNumber as exc:
        await message.answer(bad_number_text(exc))
        return
    data = await state.get_data()
    product_id, old = data.get("mk_product", ""), int(data.get("mk_old", 0))
    try:
        updated = await marketplace.update_offer_price(product_id, old, cents)
    except (SupplierError, ValueError) as exc:
        if isinstance(exc, SupplierError):
            _log_failure("reprice offers", exc)
        await message.answer(_error_text(exc), reply_markup=back(None, "mko", "1"))
        return
    await state.clear()
    admin_id = message.from_user.id if message.from_user else 0
    await admin_service.audit(
        admin_id, "market_offer_price", f"{product_id} {old} -> {cents} ({updated})"
    )
    text = _("market.offers_repriced").format(
        updated=updated, product=escape(product_id), old=_euros(old), new=_euros(cents)
    )
    builder = InlineKeyboardBuilder()
    builder.button(text=_("market.offers"), callback_data=Admin(action="mko", arg="1"))
    await message.answer(text, reply_markup=back(builder, "mk"))


@router.callback_query(Admin.filter(F.action == "mkodel"))
async def ask_delete_offers(callback: CallbackQuery, callback_data: Admin) -> None:
    """Ask before deleting every unsold offer on a product."""
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("market.offer_delete_yes"),
        callback_data=Admin(action="mkodel2", arg=callback_data.arg),
    )
    text = _("market.offer_delete_confirm").format(product=escape(callback_data.arg))
    await show(callback, text, back(builder, "mko", "1"))


@router.callback_query(Admin.filter(F.action == "mkodel2"))
async def delete_offers(
    callback: CallbackQuery,
    callback_data: Admin,
    marketplace: Marketplace,
    admin_service: AdminService,
) -> None:
    """``DELETE /seller/offers/{id}``: every unsold offer on the product (sold ones stay)."""
    try:
        deleted = await marketplace.delete_offers(callback_data.arg)
    except (SupplierError, ValueError) as exc:
        if isinstance(exc, SupplierError):
            _log_failure("delete offers", exc)
        await show(callback, _error_text(exc), back(None, "mko", "1"))
        return
    await admin_service.audit(
        callback.from_user.id, "market_offers_deleted", f"{callback_data.arg} {deleted}"
    )
    text = _("market.offers_deleted").format(deleted=deleted, product=escape(callback_data.arg))
    await show(callback, text, back(None, "mko", "1"))


@router.message(StateFilter(MarketInput))
async def market_input_hint(message: Message) -> None:
    """Anything else while a marketplace prompt waits (a photo, a sticker): say what it
    takes."""
    await message.answer(_("market.send_text"))
