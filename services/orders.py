"""Orders: checkout, pre-checkout answers, payment, supplier order, delivery, refunds.

The flow of one order::

    open_checkout -> awaiting_payment --successful_payment--> paid
    paid --create-order--> completed | processing | failed (refund queued) | unknown
    processing --order-status, with backoff--> completed | failed
    unknown --order-status by transactionId (re-send with the same id if absent)--> ...
    failed --refundStarPayment (outbox)--> refunded

The supplier ``transactionId`` is derived from the shop's order id, so no path can ever
create a second supplier order for one payment.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from services.catalogue import CatalogueService
from services.pricing import PricingService, UnknownCurrency
from services.redact import fingerprint
from services.suppliers.base import Customer, Supplier
from services.suppliers.errors import (
    FixRequestError,
    MoneyError,
    OfferNotFound,
    OrderNotFound,
    OrderOutcomeUnknown,
    RefreshPriceError,
    RetryLaterError,
    SupplierConnectionError,
    SupplierError,
    TransactionDuplicate,
    UnknownSupplierError,
    WrongPrice,
)
from services.suppliers.models import OfferDetails, SupplierOrder
from services.suppliers.models import OrderStatus as SupplierStatus
from storage.catalogue import StoredOffer
from storage.db import utcnow_iso
from storage.orders import InvalidTransition, NewOrder, Order, OrdersRepository, OrderStatus

logger = logging.getLogger(__name__)

STARS_CURRENCY = "XTR"
_PAYLOAD = re.compile(r"^order:(\d{1,12})$")


def invoice_payload(order_id: int) -> str:
    """The invoice payload of an order (1-128 bytes, as Telegram requires)."""
    return f"order:{order_id}"


def parse_invoice_payload(payload: str) -> int | None:
    """The order id in an invoice payload, or ``None`` for a payload that is not ours."""
    match = _PAYLOAD.match(payload)
    return int(match.group(1)) if match else None


class OrderNotifier(Protocol):
    """Tells people what happened to an order (implemented by the bot layer)."""

    async def order_completed(self, order: Order) -> None: ...

    async def order_processing(self, order: Order) -> None: ...

    async def order_failed(self, order: Order) -> None: ...

    async def order_refunded(self, order: Order) -> None: ...

    async def order_stuck(self, order: Order) -> None: ...


class PreCheckoutRefusal(StrEnum):
    """Why a pre-checkout query gets ``ok=False`` (each has a translated message)."""

    ORDER_NOT_FOUND = "order_not_found"
    ALREADY_PAID = "already_paid"
    EXPIRED = "expired"
    AMOUNT_MISMATCH = "amount_mismatch"
    OFFER_GONE = "offer_gone"
    PRICE_ROSE = "price_rose"
    SUPPLIER_BALANCE = "supplier_balance"


@dataclass(frozen=True, slots=True)
class OrderTimings:
    """Seconds. ``first_check``: first order-status after PROCESSING (7-10 s in the field);
    checks then back off by ``backoff`` up to ``max_check``. ``payment_grace``: how long
    the inline create-order owns a fresh payment before the worker may pick it up.
    ``stuck_after``: open this long, admins are told. ``precheck_budget``: time the
    pre-checkout answer may spend asking the supplier (Telegram allows 10 s)."""

    first_check: float = 7.0
    backoff: float = 1.5
    max_check: float = 300.0
    payment_grace: float = 40.0
    stuck_after: float = 90 * 60.0
    precheck_budget: float = 4.0
    worker_tick: float = 1.0


@dataclass(frozen=True, slots=True)
class Quote:
    """A fresh price: the stored offer, what find-one said, and the retail Stars."""

    offer: StoredOffer
    details: OfferDetails
    stars: int
    cost_usd: Decimal


class OrderService:
    """Owns every order from invoice to delivery or refund."""

    def __init__(
        self,
        supplier: Supplier,
        orders: OrdersRepository,
        catalogue: CatalogueService,
        pricing: PricingService,
        notifier: OrderNotifier,
        *,
        timings: OrderTimings | None = None,
        clock: Callable[[], float] = time.time,
        on_refund_queued: Callable[[], None] | None = None,
    ) -> None:
        self.supplier = supplier
        self.orders = orders
        self.catalogue = catalogue
        self.pricing = pricing
        self.notifier = notifier
        self.timings = timings or OrderTimings()
        self._clock = clock
        self._on_refund_queued = on_refund_queued or (lambda: None)
        self._locks: dict[int, asyncio.Lock] = {}
        self._wake = asyncio.Event()

    # -- checkout --------------------------------------------------------------------

    async def quote(self, offer_id: int) -> Quote:
        """Fresh find-one price in Stars. Raises ``OfferNotFound``, ``LookupError``,
        ``UnknownCurrency`` or any supplier error."""
        offer, details = await self.catalogue.quote(offer_id)
        book = self.pricing.book
        return Quote(
            offer, details, book.stars(details.price, details.currency, offer.stars_amount),
            book.usd(details.price, details.currency),
        )  # fmt: skip

    async def open_checkout(
        self,
        user_id: int,
        chat_id: int,
        quote: Quote,
        *,
        game_user_id: str | None = None,
        game_server_id: str | None = None,
        game_server_label: str | None = None,
        player_login: str | None = None,
        recipient_name: str | None = None,
        kind: str = "goods",
        test_mode: bool = False,
    ) -> Order:
        """Create the order the invoice will carry (status ``awaiting_payment``)."""
        offer = quote.offer
        return await self.orders.create(
            NewOrder(
                user_id=user_id,
                chat_id=chat_id,
                kind=kind,
                supplier=offer.supplier,
                offer_id=offer.offer_id,
                product_id=offer.product_id,
                product_name=offer.product_name,
                offer_name=offer.offer_name,
                returns_key=quote.details.is_return_data_for_customer,
                supplier_price=quote.details.price,
                supplier_currency=quote.details.currency,
                cost_usd=quote.cost_usd,
                stars=quote.stars,
                game_user_id=game_user_id,
                game_server_id=game_server_id,
                game_server_label=game_server_label,
                player_login=player_login,
                recipient_name=recipient_name,
                test_mode=test_mode,
            )
        )

    async def pre_checkout(
        self, order_id: int, user_id: int, total_amount: int, currency: str
    ) -> PreCheckoutRefusal | None:
        """Decide a pre-checkout query: ``None`` means ``ok=True``.

        Local state first (order exists, is this user's, unpaid, amount and currency
        match), then a supplier re-check bounded by ``precheck_budget``: the latest price
        must still fit the Stars being paid (the order takes the latest price), the offer
        must exist and a prepaid balance must cover it. When the supplier does not answer
        in time the local state decides: a later failure is refunded anyway.
        """
        order = await self.orders.get(order_id)
        if order is None or order.user_id != user_id:
            return PreCheckoutRefusal.ORDER_NOT_FOUND
        if order.status is OrderStatus.EXPIRED:
            return PreCheckoutRefusal.EXPIRED
        if order.status is not OrderStatus.AWAITING_PAYMENT:
            return PreCheckoutRefusal.ALREADY_PAID
        if currency != STARS_CURRENCY or total_amount != order.stars:
            return PreCheckoutRefusal.AMOUNT_MISMATCH
        try:
            async with asyncio.timeout(self.timings.precheck_budget):
                details, balance = await asyncio.gather(
                    self.supplier.find_offer(order.offer_id), self.supplier.get_balance()
                )
        except OfferNotFound:
            await self.catalogue.repo.deactivate(order.supplier, order.offer_id)
            return PreCheckoutRefusal.OFFER_GONE
        except (TimeoutError, SupplierError) as exc:
            logger.warning("pre-checkout of order %s: supplier re-check skipped: %s", order_id, exc)
            return None
        book = self.pricing.book
        try:
            stars_now = book.stars(
                details.price, details.currency, await self._stars_delivered(order)
            )
            cost_now = book.usd(details.price, details.currency)
        except UnknownCurrency:
            logger.error(
                "order %s: offer now priced in %s, which has no rate", order_id, details.currency
            )
            return PreCheckoutRefusal.OFFER_GONE
        if stars_now > order.stars:
            return PreCheckoutRefusal.PRICE_ROSE
        if not balance.is_postpaid and balance.balance < cost_now:
            logger.error(
                "supplier balance %s %s cannot pay order %s (%s USD)",
                balance.balance, balance.currency, order_id, cost_now,
            )  # fmt: skip
            return PreCheckoutRefusal.SUPPLIER_BALANCE
        if details.price != order.supplier_price or details.currency != order.supplier_currency:
            await self.orders.update(
                order_id, supplier_price=details.price, supplier_currency=details.currency,
                cost_usd=cost_now,
            )  # fmt: skip
        return None

    # -- payment and fulfilment ------------------------------------------------------

    async def handle_payment(
        self,
        order_id: int,
        user_id: int,
        charge_id: str,
        total_amount: int,
        currency: str,
        provider_charge_id: str | None = None,
    ) -> bool:
        """Record a ``successful_payment`` and place the supplier order.

        Returns ``False`` when this charge id was seen before (a repeated update): nothing
        happens then. Raises ``LookupError`` for a payload naming no order of this user.
        """
        order = await self.orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise LookupError(
                f"payment {fingerprint(charge_id)} names order {order_id}, not this user's"
            )
        async with self._lock(order_id):
            recorded = await self.orders.record_payment(
                order_id, user_id, charge_id, total_amount, currency, provider_charge_id
            )
            if not recorded:
                logger.info(
                    "payment %s for order %s already recorded", fingerprint(charge_id), order_id
                )
                return False
            await self.orders.update(
                order_id, next_check_at_ts=self._clock() + self.timings.payment_grace
            )
            order = await self.orders.get(order_id)
            assert order is not None
            if total_amount < order.stars:
                await self._fail(order, f"paid {total_amount} of {order.stars} Stars", "UNDERPAID")
                return True
            await self._place(order)
        return True

    def _customer(self, order: Order) -> Customer:
        return Customer(game_user_id=order.game_user_id, game_server_id=order.game_server_id)

    async def _place(self, order: Order) -> None:
        """Send create-order once and act on the answer. Caller holds the order lock."""

        async def create() -> SupplierOrder:
            try:
                return await self.supplier.create_order(
                    order.offer_id,
                    order.supplier_price,
                    order.transaction_id,
                    self._customer(order),
                )
            except WrongPrice as exc:
                return await self._order_at_new_price(order, exc)
            except TransactionDuplicate:
                # an order with our transactionId exists already: read it, never order again
                return await self.supplier.get_order(transaction_id=order.transaction_id)

        await self._settle(order, create)

    async def _settle(self, order: Order, attempt: Callable[[], Awaitable[SupplierOrder]]) -> None:
        """Run a supplier call that should end with the order's supplier state, and act:
        no answer -> ``unknown`` (asked again later); refused -> failed and refunded
        (a refused create-order made no supplier order); an answer -> applied."""
        try:
            result = await attempt()
        except (OrderOutcomeUnknown, SupplierConnectionError, RetryLaterError) as exc:
            await self._mark_unknown(order, str(exc))
            return
        except (RefreshPriceError, MoneyError, FixRequestError, UnknownSupplierError) as exc:
            await self._fail(order, exc.supplier_message or str(exc), exc.code)
            return
        await self._apply(order, result)

    async def _order_at_new_price(self, order: Order, refused: WrongPrice) -> SupplierOrder:
        """The price moved between pre-checkout and now. When the new price still fits the
        Stars paid, order once more at it (same transactionId: the first was refused);
        otherwise raise the refusal."""
        try:
            details = await self.supplier.find_offer(order.offer_id)
            stars_now = self.pricing.book.stars(
                details.price, details.currency, await self._stars_delivered(order)
            )
        except (SupplierError, UnknownCurrency) as exc:
            logger.warning("order %s: price refresh after WRONG_PRICE failed: %s", order.id, exc)
            raise refused from exc
        if stars_now > order.stars:
            logger.warning(
                "order %s: supplier price rose past the %d Stars paid", order.id, order.stars
            )
            raise refused
        await self.orders.update(
            order.id, supplier_price=details.price, supplier_currency=details.currency,
            cost_usd=self.pricing.book.usd(details.price, details.currency),
        )  # fmt: skip
        return await self.supplier.create_order(
            order.offer_id, details.price, order.transaction_id, self._customer(order)
        )

    async def _stars_delivered(self, order: Order) -> int | None:
        offer = await self.catalogue.repo.get(order.supplier, order.offer_id)
        return offer.stars_amount if offer else None

    async def _reload(self, order: Order) -> Order:
        fresh = await self.orders.get(order.id)
        assert fresh is not None
        return fresh

    async def _mark_unknown(self, order: Order, reason: str) -> None:
        attempts = order.check_attempts + 1
        await self.orders.transition(
            order.id, OrderStatus.UNKNOWN, f"supplier outcome unknown: {reason}",
            check_attempts=attempts, next_check_at_ts=self._next_check(attempts),
        )  # fmt: skip
        logger.warning("order %s outcome unknown (%s); will ask the supplier", order.id, reason)
        self._wake.set()

    def _next_check(self, attempts: int) -> float:
        t = self.timings
        return self._clock() + min(t.max_check, t.first_check * t.backoff ** max(0, attempts - 1))

    async def _apply(self, order: Order, result: SupplierOrder) -> None:
        """Move the order to what the supplier says and tell the customer."""
        order = await self._reload(order)
        if not order.status.is_open:
            return
        common = {"supplier_order_id": result.order_id or order.supplier_order_id,
                  "supplier_status": result.status.value}  # fmt: skip
        if result.fulfillment_data is not None:
            common["fulfillment"] = result.fulfillment_data
        if result.status is SupplierStatus.COMPLETED and not (
            order.returns_key and order.kind == "goods" and not result.key
        ):
            order = await self.orders.transition(
                order.id, OrderStatus.COMPLETED, f"supplier order {result.order_id} completed",
                delivered_key=result.key, finished_at=utcnow_iso(), next_check_at_ts=None, **common,
            )  # fmt: skip
            await self._notify(self.notifier.order_completed, order)
        elif result.status.is_failure:
            reason = result.message or f"supplier status {result.status.value}"
            await self.orders.update(order.id, **common)
            await self._fail(order, reason, result.status.value)
        else:
            first_time = order.status is not OrderStatus.PROCESSING
            attempts = order.check_attempts + 1
            order = await self.orders.transition(
                order.id, OrderStatus.PROCESSING,
                f"supplier order {result.order_id} {result.status.value}" if first_time else None,
                check_attempts=attempts, next_check_at_ts=self._next_check(attempts), **common,
            )  # fmt: skip
            if first_time:
                await self._notify(self.notifier.order_processing, order)
            self._wake.set()

    async def refund_by_admin(self, order: Order, reason: str) -> Order:
        """Refund a delivered order on an admin's word: the refund goes to the outbox and
        the customer hears about it when Telegram confirms."""
        async with self._lock(order.id):
            order = await self.orders.fail_and_queue_refund(
                order.id, reason, "ADMIN_REFUND", self._clock()
            )
        self._on_refund_queued()
        return order

    async def _fail(self, order: Order, reason: str, code: str | None) -> None:
        order = await self.orders.fail_and_queue_refund(order.id, reason, code, self._clock())
        logger.warning("order %s failed (%s: %s); refund queued", order.id, code, reason)
        self._on_refund_queued()
        await self._notify(self.notifier.order_failed, order)

    async def _notify(self, method: Callable[[Order], Awaitable[None]], order: Order) -> None:
        try:
            await method(order)
        except Exception:
            logger.exception("could not notify about order %s", order.id)

    # -- background checks -----------------------------------------------------------

    def _lock(self, order_id: int) -> asyncio.Lock:
        lock = self._locks.get(order_id)
        if lock is None:
            lock = self._locks[order_id] = asyncio.Lock()
        return lock

    async def _resolve(self, order: Order) -> None:
        """Settle a paid order whose supplier state is not known (after a lost answer,
        a restart, or a payment whose create-order never finished)."""
        await self._settle(
            order,
            lambda: self.supplier.resolve_order(
                order.offer_id, order.supplier_price, order.transaction_id, self._customer(order)
            ),
        )

    async def check_order(self, order: Order) -> None:
        """One supplier check of an open order (used by the worker and by admins)."""
        async with self._lock(order.id):
            order = await self._reload(order)
            if not order.status.is_open:
                return
            if order.status is OrderStatus.PROCESSING and order.supplier_order_id:
                try:
                    result = await self.supplier.get_order(order_id=order.supplier_order_id)
                except (SupplierConnectionError, RetryLaterError, OrderNotFound) as exc:
                    logger.warning("order %s: status check failed: %s", order.id, exc)
                    attempts = order.check_attempts + 1
                    await self.orders.update(
                        order.id,
                        check_attempts=attempts,
                        next_check_at_ts=self._next_check(attempts),
                    )
                    return
                await self._apply(order, result)
            else:
                await self._resolve(order)
            await self._flag_if_stuck(await self._reload(order))

    async def _flag_if_stuck(self, order: Order) -> None:
        if not order.status.is_open or order.stuck_flagged or order.paid_at is None:
            return
        paid = datetime.fromisoformat(order.paid_at).timestamp()
        if self._clock() - paid >= self.timings.stuck_after:
            await self.orders.update(order.id, stuck_flagged=True)
            logger.error("order %s open for over %.0f s", order.id, self.timings.stuck_after)
            await self._notify(self.notifier.order_stuck, order)

    async def check_due_orders(self) -> int:
        """Check every open order whose time has come; returns how many were checked."""
        due = await self.orders.due_for_check(self._clock())
        for order in due:
            try:
                await self.check_order(order)
            except (InvalidTransition, SupplierError):
                logger.exception("order %s: check failed", order.id)
        return len(due)

    def wake(self) -> None:
        self._wake.set()

    async def run_worker(self) -> None:
        """Forever: check due orders, then sleep until the next is due (at most a tick)."""
        logger.info("order worker started")
        while True:
            try:
                await self.check_due_orders()
            except Exception:
                logger.exception("order worker pass failed")
            self._wake.clear()
            next_ts = await self.orders.next_check_ts()
            delay = self.timings.worker_tick
            if next_ts is not None:
                delay = min(delay, max(0.0, next_ts - self._clock()))
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
