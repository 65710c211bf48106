"""Buying: player ID and server, check with the supplier, Stars invoice, pre-checkout,
successful payment."""

from __future__ import annotations

import logging
import re
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import MagicData, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery
from aiogram.utils.i18n import gettext as _

from bot import keyboards
from bot.callbacks import BuyOffer, ConfirmOrder, ServerPick
from bot.handlers.catalog import offer_stars
from bot.settings import Settings
from bot.states import Checkout
from services.loyalty import LoyaltyService
from services.orders import (
    STARS_CURRENCY,
    OrderService,
    PreCheckoutRefusal,
    Quote,
    invoice_payload,
    parse_invoice_payload,
)
from services.pricing import UnknownCurrency
from services.suppliers.base import Capability
from services.suppliers.errors import OfferNotFound, RefreshPriceError, SupplierError
from services.suppliers.models import PlayerCheck
from services.suppliers.registry import UnknownSupplier
from storage.orders import ChargeRejection, IncomingCharge, Order
from storage.users import User as StoredUser

logger = logging.getLogger(__name__)
router = Router(name=__name__)

PLAYER_ID = re.compile(r"^[\w.\-#:]{2,40}$")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def send_invoice(
    bot: Bot, order: Order, settings: Settings, photo_url: str | None = None
) -> None:
    """``sendInvoice`` in Telegram Stars: currency XTR, one price, no provider token,
    the order id in the payload, the product picture (``photo_url``) when the supplier
    gives one. Test-mode orders say so in title and description."""
    prefix = _("invoice.test_prefix") if order.test_mode else ""
    if order.kind == "stars_gift":
        description = _("invoice.description_stars").format(
            recipient=order.recipient_name or order.game_user_id
        )
    elif order.game_user_id:
        description = _("invoice.description_topup").format(
            offer=order.offer_name, login=order.player_login or order.game_user_id
        )
    else:
        description = _("invoice.description_key").format(offer=order.offer_name)
    if order.discount_stars:  # one LabeledPrice only (Stars): the discount is said here
        description = _("invoice.discount").format(
            list=order.list_stars, discount=order.discount_stars, stars=order.stars,
            code=f" ({order.promo_code})" if order.promo_code else "",
        ) + "\n" + description  # fmt: skip
    await bot.send_invoice(
        chat_id=order.chat_id,
        title=_clip(prefix + order.product_name, 32),
        description=_clip(description, 255),
        payload=invoice_payload(order.id),
        currency=STARS_CURRENCY,
        prices=[LabeledPrice(label=_clip(order.offer_name, 32), amount=order.stars)],
        photo_url=photo_url or None,
    )


async def fresh_quote(
    target: Message | CallbackQuery, supplier: str, offer_id: str, order_service: OrderService
) -> Quote | None:
    """A fresh price of ``supplier``'s offer, or None after telling the customer why not
    (an unknown supplier is an unavailable offer)."""
    try:
        return await order_service.quote(supplier, offer_id)
    except (OfferNotFound, LookupError, RefreshPriceError):
        text = _("offer.unavailable")
    except UnknownCurrency:
        text = _("offer.not_priced")
    except SupplierError as exc:
        logger.warning("quote for offer %s failed: %s", offer_id, exc)
        text = _("common.supplier_down")
    if isinstance(target, CallbackQuery):
        await target.answer(text, show_alert=True)
    else:
        await target.answer(text)
    return None


async def open_and_invoice(
    user_id: int,
    chat_id: int,
    quote: Quote,
    bot: Bot,
    order_service: OrderService,
    settings: Settings,
    *,
    loyalty: LoyaltyService,
    shown_stars: int | None = None,
    **details: Any,
) -> None:
    """Create the order for ``quote`` (test mode in the sandbox) and send its invoice.
    When the customer was shown another price (``shown_stars``), say so first. A promo
    code or loyalty balance the customer chose is taken off (``services.loyalty``)."""
    if shown_stars and shown_stars != quote.stars:
        await bot.send_message(
            chat_id,
            _("checkout.price_changed").format(old=shown_stars, new=quote.stars),
        )
    price, problem = await loyalty.price_for(
        user_id, quote.offer, quote.details.price, quote.details.currency, quote.stars
    )
    if problem is not None:  # the code entered no longer applies: the invoice goes without
        await bot.send_message(chat_id, _(f"promo.refused.{problem.value}").format(
            code=escape(price.refused_code or ""), min=0))  # fmt: skip
    order = await order_service.open_checkout(
        user_id, chat_id, quote, test_mode=settings.sandbox, discount_stars=price.discount,
        promo_code=price.promo_code if price.promo_stars else None, **details,
    )  # fmt: skip
    if not await loyalty.hold(order, price):
        await bot.send_message(chat_id, _("loyalty.refused.balance"))
        return
    await send_invoice(bot, order, settings, quote.offer.image_url)


@router.callback_query(BuyOffer.filter())
async def buy(
    callback: CallbackQuery,
    callback_data: BuyOffer,
    state: FSMContext,
    bot: Bot,
    order_service: OrderService,
    settings: Settings,
    loyalty: LoyaltyService,
) -> None:
    try:
        ref = order_service.suppliers.resolve(callback_data.s, callback_data.offer_id)
    except UnknownSupplier:
        await callback.answer(_("offer.unavailable"), show_alert=True)
        return
    quote = await fresh_quote(callback, ref.supplier, ref.offer_id, order_service)
    if quote is None or callback.message is None:
        return
    offer = quote.offer
    await state.clear()
    if offer.needs_player:
        await state.set_state(Checkout.player_id)
        await state.update_data(
            supplier=offer.supplier,
            offer_id=offer.offer_id,
            product=offer.product_name,
            needs_server=offer.needs_server,
        )
        await callback.answer()
        await bot.send_message(
            callback.message.chat.id,
            _("player.ask").format(product=escape(offer.product_name), hint=_("player.hint")),
            reply_markup=keyboards.cancel_only(),
        )
        return
    await callback.answer()
    await open_and_invoice(
        callback.from_user.id, callback.message.chat.id, quote, bot, order_service, settings,
        loyalty=loyalty, shown_stars=callback_data.stars,
    )  # fmt: skip


@router.message(StateFilter(Checkout.player_id), F.text)
async def player_id_entered(
    message: Message, state: FSMContext, order_service: OrderService
) -> None:
    player_id = (message.text or "").strip()
    if not PLAYER_ID.match(player_id):
        await message.answer(_("player.invalid_format"), reply_markup=keyboards.cancel_only())
        return
    data = await state.get_data()
    await state.update_data(player_id=player_id)
    supplier = order_service.suppliers.get(data["supplier"])
    if data.get("needs_server") and Capability.SERVERS in supplier.capabilities:
        try:
            servers = await supplier.get_servers(data["offer_id"])
        except SupplierError as exc:
            logger.warning("servers of offer %s: %s", data["offer_id"], exc)
            await message.answer(_("player.check_unavailable"))
            return
        if servers:
            await state.update_data(servers=[[s.label, s.server_id] for s in servers])
            await state.set_state(Checkout.server)
            await message.answer(
                _("player.choose_server"),
                reply_markup=keyboards.servers([s.label for s in servers]),
            )
            return
    await _check_player(message, state, order_service, None)


@router.message(StateFilter(Checkout.player_id))
async def player_id_not_text(message: Message) -> None:
    await message.answer(_("player.invalid_format"), reply_markup=keyboards.cancel_only())


@router.callback_query(StateFilter(Checkout.server), ServerPick.filter())
async def server_picked(
    callback: CallbackQuery,
    callback_data: ServerPick,
    state: FSMContext,
    order_service: OrderService,
) -> None:
    servers = (await state.get_data()).get("servers") or []
    if not 0 <= callback_data.index < len(servers) or not isinstance(callback.message, Message):
        await callback.answer()
        return
    await callback.answer()
    label, server_id = servers[callback_data.index]
    await state.update_data(server_id=server_id, server_label=label)
    await _check_player(callback.message, state, order_service, (label, server_id))


@router.message(StateFilter(Checkout.server))
async def server_expected(message: Message, state: FSMContext) -> None:
    servers = (await state.get_data()).get("servers") or []
    await message.answer(
        _("player.choose_server"), reply_markup=keyboards.servers([s[0] for s in servers])
    )


async def _check_player(
    message: Message, state: FSMContext, order_service: OrderService, server: tuple[str, str] | None
) -> None:
    data = await state.get_data()
    supplier = order_service.suppliers.get(data["supplier"])
    try:
        check = (
            await supplier.check_player(
                data["offer_id"], data["player_id"], server[1] if server else None
            )
            if Capability.PLAYER_CHECK in supplier.capabilities
            else PlayerCheck(status="VALID")  # cannot be checked: the order itself will tell
        )
    except SupplierError as exc:
        logger.warning("check-game-data for offer %s failed: %s", data["offer_id"], exc)
        await state.set_state(Checkout.player_id)
        await message.answer(_("player.check_unavailable"), reply_markup=keyboards.cancel_only())
        return
    if not check.is_valid:
        await state.set_state(Checkout.player_id)
        reason = (
            _("player.invalid").format(reason=escape(check.message))
            if check.message
            else _("player.invalid_no_reason")
        )
        await message.answer(reason, reply_markup=keyboards.cancel_only())
        return
    login = check.game_user_login or data["player_id"]
    await state.update_data(login=login)
    await state.set_state(Checkout.confirm)
    offer = await order_service.catalogue.repo.get(data["supplier"], data["offer_id"])
    if offer is None:
        await state.clear()
        await message.answer(_("offer.unavailable"), reply_markup=keyboards.home_only())
        return
    stars = offer_stars(order_service, offer) or 0
    await state.update_data(stars=stars)
    details = _("confirm.player").format(login=escape(login), player_id=escape(data["player_id"]))
    if server:
        details += _("confirm.server").format(server=escape(server[0]))
    await message.answer(
        _("confirm.title").format(
            product=escape(offer.product_name),
            offer=escape(offer.offer_name),
            details=details,
            stars=stars,
        ),
        reply_markup=keyboards.confirm(stars),
    )


@router.callback_query(StateFilter(Checkout.confirm), ConfirmOrder.filter(F.action == "change"))
async def change_player(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(Checkout.player_id)
    await callback.answer()
    data = await state.get_data()
    if isinstance(callback.message, Message):
        await callback.message.answer(
            _("player.ask").format(product=escape(data.get("product", "")), hint=_("player.hint")),
            reply_markup=keyboards.cancel_only(),
        )


@router.callback_query(StateFilter(Checkout.confirm), ConfirmOrder.filter(F.action == "pay"))
async def confirm_pay(
    callback: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    order_service: OrderService,
    settings: Settings,
    loyalty: LoyaltyService,
) -> None:
    data = await state.get_data()
    if callback.message is None:
        return
    quote = await fresh_quote(callback, data["supplier"], data["offer_id"], order_service)
    if quote is None:
        await state.clear()
        return
    await state.clear()
    await callback.answer()
    await open_and_invoice(
        callback.from_user.id, callback.message.chat.id, quote, bot, order_service, settings,
        loyalty=loyalty, shown_stars=data.get("stars"), game_user_id=data["player_id"],
        game_server_id=data.get("server_id"),
        game_server_label=data.get("server_label"), player_login=data.get("login"),
    )  # fmt: skip


@router.callback_query(ConfirmOrder.filter())
async def stale_confirm(callback: CallbackQuery) -> None:
    """A Pay button from a conversation that is over (cancelled, or paid already)."""
    await callback.answer(_("confirm.stale"), show_alert=True)


# -- payment ---------------------------------------------------------------------------


@router.pre_checkout_query()
async def pre_checkout(
    query: PreCheckoutQuery,
    order_service: OrderService,
    loyalty: LoyaltyService,
    user_record: StoredUser | None = None,
) -> None:
    """Answer within Telegram's 10 s whatever storage or the supplier do: local state plus
    a bounded supplier re-check, under a hard deadline (see ``OrderService.pre_checkout_within``)."""
    order_id = parse_invoice_payload(query.invoice_payload)
    if user_record is not None and user_record.is_banned:
        refusal: PreCheckoutRefusal | None = PreCheckoutRefusal.BANNED
    elif order_id is None:
        refusal = PreCheckoutRefusal.ORDER_NOT_FOUND
    else:
        refusal = await order_service.pre_checkout_within(
            order_id, query.from_user.id, query.total_amount, query.currency
        )
    loyalty_refusal, code = None, ""
    if refusal is None and order_id is not None:  # a discounted invoice: code and balance
        order = await order_service.orders.get(order_id)
        if order is not None and order.discount_stars:
            loyalty_refusal, code = await loyalty.pre_checkout(order), order.promo_code or ""
    if loyalty_refusal is not None:
        logger.info("pre-checkout of order %s refused: %s", order_id, loyalty_refusal)
        await query.answer(ok=False, error_message=_(loyalty_refusal).format(code=code, min=0))
    elif refusal is None:
        await query.answer(ok=True)
    else:
        logger.info("pre-checkout of order %s refused: %s", order_id, refusal.value)
        await query.answer(ok=False, error_message=_(f"precheckout.{refusal.value}"))


@router.message(MagicData(F.event.successful_payment))
async def successful_payment(
    message: Message, order_service: OrderService, user_record: StoredUser | None = None
) -> None:
    """Record the charge and fulfil its order; a charge that fits no open order of this
    user (or comes from a banned user) is refunded (``OrderService.handle_payment``)."""
    payment = message.successful_payment
    assert payment is not None and message.from_user is not None
    banned = user_record is not None and user_record.is_banned
    await order_service.handle_payment(
        IncomingCharge(
            charge_id=payment.telegram_payment_charge_id,
            user_id=message.from_user.id,
            stars=payment.total_amount,
            currency=payment.currency,
            payload=payment.invoice_payload,
            order_id=parse_invoice_payload(payment.invoice_payload),
            provider_charge_id=payment.provider_payment_charge_id,
            refuse=ChargeRejection.BANNED if banned else None,
        )
    )
