"""Own stock: the products held with their key counts (/stock), and key uploads
(/addkeys) as pasted lines, a .txt or a .csv document, for a catalogue offer named by its
reference (``g:999``, as buttons carry it) or for a new product.

``/addkeys <ref> <cost> <currency>`` or ``/addkeys new <cost> <currency> <product> |
<offer> | <category>``; the keys follow on the next lines, come as a document with that
caption, or are asked for next.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.callbacks import Admin
from bot.handlers.admin.common import back, bad_number_text
from bot.ui import show
from services.admin import AdminService
from services.catalogue import CATEGORIES, product_id_of
from services.orders import OrderService
from services.own_stock import (
    MAX_KEYS_PER_UPLOAD,
    KeyLines,
    OwnStock,
    UploadReport,
    UploadTarget,
    read_file,
    read_lines,
)
from services.parsing import BadNumber, parse_decimal
from services.suppliers.registry import UnknownSupplier
from storage.stock import StockProduct

logger = logging.getLogger(__name__)
router = Router(name=__name__)

#: largest key file accepted, bytes
MAX_FILE_BYTES = 1_000_000
#: line numbers listed in an upload report, per kind
LINES_SHOWN = 20
COST_LOW, COST_HIGH, COST_PLACES = Decimal("0.0001"), Decimal("1000000"), 4


class StockInput(StatesGroup):
    keys = State()  # the upload's target, cost and currency are in the state data


def stock_line(product: StockProduct) -> str:
    """One product held, with its counts, for the stock and catalogue screens."""
    return _("admin.stock_line").format(
        ref=f"{OwnStock.short}:{product.id}", product=escape(product.product_name),
        offer=escape(product.offer_name), free=product.available, sold=product.sold,
        withdrawn=product.withdrawn, cost=product.cost if product.cost is not None else "-",
        currency=product.currency or "",
    )  # fmt: skip


async def _stock_text(own_stock: OwnStock | None) -> str:
    if own_stock is None:
        return _("admin.stock_off")
    products = await own_stock.products()
    lines = "\n".join(stock_line(p) for p in products) or _("admin.stock_empty")
    return _("admin.stock_text").format(products=lines) + "\n\n" + _("admin.stock_usage")


@router.message(Command("stock"))
async def stock_command(message: Message, own_stock: OwnStock | None) -> None:
    """``/stock``: every product held with its free, sold and withdrawn keys, and how to
    upload more (or that own stock is off)."""
    await message.answer(await _stock_text(own_stock))


@router.callback_query(Admin.filter(F.action == "stock"))
async def stock_screen(callback: CallbackQuery, own_stock: OwnStock | None) -> None:
    """The admin menu's Own stock button: the same as ``/stock``."""
    await show(callback, await _stock_text(own_stock), back())


async def _target(
    words: list[str], rest: str, order_service: OrderService, own_stock: OwnStock
) -> UploadTarget | str:
    """The upload target named by ``words[0]`` (an offer reference or ``new`` with
    ``rest`` = ``product | offer | category``), or the translated refusal."""
    ref = words[0]
    if ref.lower() == "new":
        parts = [part.strip() for part in rest.split("|")]
        if len(parts) != 3 or not all(parts) or any(len(p) > 128 for p in parts):
            return _("admin.stock_usage")
        category = next((c for c in CATEGORIES if c.lower() == parts[2].lower()), None)
        if category is None:
            return _("admin.stock_bad_category").format(categories=", ".join(CATEGORIES))
        return UploadTarget(product_id_of(parts[0], category), parts[0], parts[1], category)
    short, _sep, offer_id = ref.partition(":")
    try:
        offer = order_service.suppliers.resolve(short, offer_id)
    except UnknownSupplier:
        offer = None
    if offer is not None and offer.supplier == own_stock.name:
        held = await own_stock.repo.product(int(offer_id)) if offer_id.isdigit() else None
        if held is not None:
            source = (held.source_supplier, held.source_offer_id)
            return UploadTarget(
                held.product_id, held.product_name, held.offer_name, held.category,
                source if None not in source else None,  # type: ignore[arg-type]
            )  # fmt: skip
    elif offer is not None:
        stored = await order_service.catalogue.repo.get(offer.supplier, offer.offer_id)
        if stored is not None:
            return UploadTarget(
                stored.product_id, stored.product_name, stored.offer_name, stored.category,
                (stored.supplier, stored.offer_id),
            )  # fmt: skip
    return _("admin.stock_unknown_offer").format(ref=escape(ref[:64]))


async def _parse_command(
    args: str, order_service: OrderService, own_stock: OwnStock
) -> tuple[dict[str, Any] | None, str, str]:
    """``(upload, keys text, refusal)`` from the text after ``/addkeys``: the first line
    names the target, cost and currency, the other lines are keys."""
    first, _newline, keys = args.partition("\n")
    words = first.split(maxsplit=3)
    if len(words) < 3:
        return None, "", _("admin.stock_usage")
    target = await _target(words, words[3] if len(words) > 3 else "", order_service, own_stock)
    if isinstance(target, str):
        return None, "", target
    try:
        cost = parse_decimal(words[1], low=COST_LOW, high=COST_HIGH, places=COST_PLACES)
    except BadNumber as exc:
        return None, "", bad_number_text(exc)
    currency = words[2].upper()
    known = order_service.pricing.book.usd_rates
    if currency not in known:
        return (
            None,
            "",
            _("admin.stock_bad_currency").format(
                currency=escape(currency[:10]), known=", ".join(sorted(known))
            ),
        )
    upload = {
        "product_id": target.product_id, "product_name": target.product_name,
        "offer_name": target.offer_name, "category": target.category,
        "source": list(target.source) if target.source else None,
        "cost": str(cost), "currency": currency,
    }  # fmt: skip
    return upload, keys, ""


async def _document_lines(message: Message, bot: Bot) -> KeyLines | str:
    """The keys of the document sent, or the translated refusal."""
    document = message.document
    assert document is not None
    name = document.file_name or ""
    if not name.lower().endswith((".txt", ".csv")) or (document.file_size or 0) > MAX_FILE_BYTES:
        return _("admin.stock_bad_file").format(most=MAX_FILE_BYTES // 1000)
    data = await bot.download(document)
    content = data.read() if data is not None else b""
    if len(content) > MAX_FILE_BYTES:
        return _("admin.stock_bad_file").format(most=MAX_FILE_BYTES // 1000)
    try:
        return read_file(name, content)
    except UnicodeDecodeError:
        return _("admin.stock_bad_file").format(most=MAX_FILE_BYTES // 1000)


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:LINES_SHOWN])
    return shown + (" …" if len(numbers) > LINES_SHOWN else "")


def _report_text(report: UploadReport, upload: dict[str, Any]) -> str:
    parts = [
        _("admin.stock_uploaded").format(
            added=report.added, ref=f"{OwnStock.short}:{report.product}",
            product=escape(upload["product_name"]), offer=escape(upload["offer_name"]),
            cost=upload["cost"], currency=upload["currency"], free=report.available,
        )
    ]  # fmt: skip
    for key, numbers in (
        ("admin.stock_repeated", report.repeated),
        ("admin.stock_held", report.held),
        ("admin.stock_too_long", report.too_long),
    ):
        if numbers:
            parts.append(_(key).format(count=len(numbers), lines=_lines(numbers)))
    return "\n".join(parts)


async def _upload(
    message: Message,
    upload: dict[str, Any],
    lines: KeyLines,
    own_stock: OwnStock,
    admin_service: AdminService,
) -> None:
    """Add the keys and answer with the report (nothing added for an empty upload)."""
    assert message.from_user is not None
    if not lines.keys:
        await message.answer(_("admin.stock_no_keys"))
        return
    if len(lines.keys) > MAX_KEYS_PER_UPLOAD:
        await message.answer(_("admin.stock_too_many").format(most=MAX_KEYS_PER_UPLOAD))
        return
    source = upload["source"]
    target = UploadTarget(
        upload["product_id"], upload["product_name"], upload["offer_name"], upload["category"],
        (source[0], source[1]) if source else None,
    )  # fmt: skip
    report = await own_stock.upload(
        target, lines, Decimal(upload["cost"]), upload["currency"], message.from_user.id
    )
    await admin_service.audit(
        message.from_user.id, "addkeys",
        f"{OwnStock.short}:{report.product}: {report.added} added at {upload['cost']} "
        f"{upload['currency']}, {len(report.repeated)} repeated, {len(report.held)} held already",
    )  # fmt: skip
    await message.answer(_report_text(report, upload))


@router.message(Command("addkeys"))
async def addkeys_command(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    bot: Bot,
    order_service: OrderService,
    admin_service: AdminService,
    own_stock: OwnStock | None,
) -> None:
    """``/addkeys`` as text (keys on the next lines, or asked for) or as a document's
    caption (the document's keys)."""
    if own_stock is None:
        await message.answer(_("admin.stock_off"))
        return
    upload, keys, refusal = await _parse_command(command.args or "", order_service, own_stock)
    if upload is None:
        await message.answer(refusal)
        return
    if message.document is not None:
        lines = await _document_lines(message, bot)
    elif keys.strip():
        lines = read_lines(keys)
    else:
        await state.set_state(StockInput.keys)
        await state.update_data(upload=upload)
        await message.answer(_("admin.stock_send_keys"))
        return
    if isinstance(lines, str):
        await message.answer(lines)
        return
    await state.clear()
    await _upload(message, upload, lines, own_stock, admin_service)


def not_a_command(message: Message) -> bool:
    """Text that is not a ``/command``: ``/cancel`` in the step must cancel it, not be
    taken for a key."""
    return not (message.text or "").startswith("/")


@router.message(StateFilter(StockInput.keys), F.text | F.document, not_a_command)
async def keys_sent(
    message: Message,
    state: FSMContext,
    bot: Bot,
    admin_service: AdminService,
    own_stock: OwnStock | None,
) -> None:
    """The keys asked for after ``/addkeys``: lines or a .txt/.csv document."""
    upload = (await state.get_data()).get("upload")
    if own_stock is None or not upload:
        await state.clear()
        await message.answer(_("admin.stock_off" if own_stock is None else "admin.stock_usage"))
        return
    lines = (
        await _document_lines(message, bot) if message.document else read_lines(message.text or "")
    )
    if isinstance(lines, str):
        await message.answer(lines)  # the state stays: another file or the lines may follow
        return
    await state.clear()
    await _upload(message, upload, lines, own_stock, admin_service)


@router.message(StateFilter(StockInput), not_a_command)
async def keys_hint(message: Message) -> None:
    """Anything but text or a document while keys are awaited: ask again."""
    await message.answer(_("admin.stock_send_keys"))
