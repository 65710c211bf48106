"""Texts built from orders and offers, in the current locale. Every value that came from
a user or a supplier is HTML-escaped here."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

from aiogram.utils.i18n import gettext as _

from services.catalogue import stars_amount_of
from storage.orders import Order, OrderStatus

_REASON_BY_CODE = {
    "WRONG_PRICE": "reason.wrong_price",
    "OUT_OF_STOCK": "reason.out_of_stock",
    "OFFER_NOT_FOUND": "reason.offer_not_found",
    "INSUFFICIENT_BALANCE": "reason.insufficient_balance",
    "UNDERPAID": "reason.underpaid",
    "ADMIN_REFUND": "reason.admin_refund",
    "NOT_PLACED": "reason.not_placed",
    "INVALID_REQUEST_BODY": "reason.request_rejected",
    "CANCELED": "reason.supplier_canceled",
    "FAILED": "reason.supplier_canceled",
    "REFUND": "reason.supplier_canceled",
}
_STARS_REASONS = {
    "user not found": "reason.stars_user_not_found",
    "stargift_invalid": "reason.stars_gift_invalid",
    "bot was blocked": "reason.stars_blocked",
}


def stars_failure_text(reason: str | None) -> str:
    """A customer-safe, translated reason for a Stars delivery the supplier failed (its own
    text stays in the logs and the admin's CSV)."""
    lowered = (reason or "").lower()
    for needle, key in _STARS_REASONS.items():
        if needle in lowered:
            return _(key)
    return _("reason.generic")


def payout_text(params: dict[str, Any]) -> str:
    """The message about a finished loyalty payout (``params`` of its outbox row):
    Stars delivered, and Stars returned to the balance with the reason."""
    parts = []
    if params.get("paid"):
        parts.append(_("loyalty.payout_done").format(stars=params["paid"]))
    if params.get("returned"):
        parts.append(
            _("loyalty.payout_failed").format(
                stars=params["returned"], reason=stars_failure_text(params.get("reason"))
            )
        )
    return "\n\n".join(parts)


def status_text(status: OrderStatus) -> str:
    return _(f"status.{status.value}")


def failure_reason(order: Order) -> str:
    """A customer-safe reason for a failed order, translated. The supplier's own text is
    written for merchants ("the funds were returned to your balance"), so it is never
    shown to customers: it stays in ``order.failure_reason`` and the order log for admins."""
    lowered = (order.failure_reason or "").lower()
    for needle, key in _STARS_REASONS.items():
        if needle in lowered:
            return _(key)
    return _(_REASON_BY_CODE.get(order.failure_code or "", "reason.generic"))


def player_line(order: Order) -> str:
    if not order.game_user_id or order.kind != "goods":
        return ""
    login = escape(order.player_login or order.game_user_id)
    text = _("orders.player").format(login=login, player_id=escape(order.game_user_id))
    if order.game_server_label:
        text += _("orders.server").format(server=escape(order.game_server_label))
    return text


def delivery_text(order: Order) -> str:
    """The message a customer gets when an order completes."""
    product, offer = escape(order.product_name), escape(order.offer_name)
    if order.kind == "stars_gift":
        amount = (order.fulfillment or {}).get("stars_amount") or stars_amount_of(
            order.product_name, order.offer_name
        )
        return _("delivery.stars").format(
            order=order.id,
            amount=escape(str(amount)),
            recipient=escape(order.recipient_name or order.game_user_id or ""),
        )
    if order.delivered_key:
        return _("delivery.key").format(
            order=order.id, product=product, offer=offer, key=keys_html(order),
            redeem=_("delivery.redeem").format(product=product),
        )  # fmt: skip
    server = ""
    if order.game_server_label:
        server = _("delivery.topup_server").format(server=escape(order.game_server_label))
    return _("delivery.topup").format(
        order=order.id, product=product, offer=offer,
        login=escape(order.player_login or order.game_user_id or ""),
        player_id=escape(order.game_user_id or ""), server=server,
    )  # fmt: skip


def receipt_text(order: Order) -> str:
    """The receipt appended to a delivery message: product, Stars paid, order number,
    payment date (UTC) and the Telegram charge id (``telegram_payment_charge_id``) the
    customer quotes to /paysupport; without a charge (an order an admin placed) that line
    is left out."""
    text = _("receipt.text").format(
        product=escape(order.product_name), offer=escape(order.offer_name), stars=order.stars,
        order=order.id, date=(order.paid_at or order.created_at)[:16].replace("T", " "),
    )  # fmt: skip
    if order.charge_id:
        text += _("receipt.charge").format(charge_id=escape(order.charge_id))
    return text


def keys_html(order: Order) -> str:
    """The delivered keys for a ``<code>{key}</code>`` template, escaped: several keys
    close and reopen the block, so each one sits in its own ``<code>`` (tap to copy)."""
    return "</code>\n<code>".join(escape(key) for key in order.delivered_keys)


def order_detail(order: Order) -> str:
    extra = ""
    if order.status is OrderStatus.COMPLETED and order.delivered_key:
        extra += _("orders.key").format(key=keys_html(order))
    extra += player_line(order)
    if order.kind == "stars_gift" and order.recipient_name:
        extra += _("orders.recipient").format(recipient=escape(order.recipient_name))
    if order.status in (OrderStatus.FAILED, OrderStatus.REFUNDED) and order.failure_reason:
        extra += _("orders.reason").format(reason=failure_reason(order))
    return _("orders.detail").format(
        order=order.id, product=escape(order.product_name), offer=escape(order.offer_name),
        status=status_text(order.status), stars=order.stars, date=(order.paid_at or order.created_at)[:16].replace("T", " "),
        extra=extra,
    )  # fmt: skip


def percent(fraction: Decimal) -> str:
    """A markup as people write it: ``Decimal("0.2")`` -> ``"+20 %"``, ``0.125`` ->
    ``"+12.5 %"``, ``0`` -> ``"0 %"`` (never ``2E+1``)."""
    value = fraction * 100
    digits = format(value.normalize(), "f") if value else "0"
    return f"{'+' if value > 0 else ''}{digits} %"
