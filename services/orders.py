"""Orders: checkout, pre-checkout answers, payment, supplier order, delivery, refunds.

The flow of one order::

    open_checkout -> awaiting_payment --successful_payment--> paid
    paid --create-order--> completed | processing | failed (refund queued) | unknown
    processing --order-status, with backoff--> completed | failed
    unknown --order-status by transactionId (re-send with the same id if absent)--> ...
    unknown --supplier says "no such order" for ``absent_for`` (30 min)--> failed
    failed --refundStarPayment (outbox)--> refunded

The supplier ``transactionId`` is derived from the shop's order id, so no path can ever
create a second supplier order for one payment.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from services.catalogue import CatalogueService
from services.loyalty import price_still_fits
from services.pricing import PricingService, UnknownCurrency
from services.routing import Quotes, RoutingService, Source
from services.suppliers.base import Capability, Customer, OrderAttempt, Supplier
from services.suppliers.errors import (
    FixRequestError,
    MoneyError,
    OrderNotFound,
    OrderOutcomeUnknown,
    RefreshPriceError,
    RetryLaterError,
    SupplierAPIError,
    SupplierConnectionError,
    SupplierError,
    TransactionDuplicate,
    UnknownSupplierError,
    WrongPrice,
)
from services.suppliers.models import Balance, OfferDetails, SupplierOrder
from services.suppliers.models import OrderStatus as SupplierStatus
from services.suppliers.registry import Suppliers
from services.workers import PassCounter, run_due_loop
from storage.catalogue import StoredOffer
from storage.db import utcnow_iso
from storage.orders import (
    ChargeRejection,
    IncomingCharge,
    InvalidTransition,
    NewOrder,
    Order,
    OrdersRepository,
    OrderStatus,
    PendingRefund,
    RecordedCharge,
    SourceSwitch,
)

logger = logging.getLogger(__name__)

STARS_CURRENCY = "XTR"
#: ``failure_code`` of an order the supplier confirmed it never made
NOT_PLACED = "NOT_PLACED"
_PAYLOAD = re.compile(r"^order:(\d{1,12})$")


def invoice_payload(order_id: int) -> str:
    """The invoice payload of an order (1-128 bytes, as Telegram requires)."""
    return f"order:{order_id}"


def parse_invoice_payload(payload: str) -> int | None:
    """The order id in an invoice payload, or ``None`` for a payload that is not ours."""
    match = _PAYLOAD.match(payload)
    return int(match.group(1)) if match else None


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())


class OrderNotifier(Protocol):
    """Tells people what happened to an order (implemented by the bot layer)."""

    async def order_completed(self, order: Order) -> None: ...

    async def order_processing(self, order: Order) -> None: ...

    async def order_failed(self, order: Order) -> None: ...

    async def order_refunded(self, order: Order) -> None: ...

    async def order_stuck(self, order: Order) -> None: ...

    async def charge_rejected(self, charge: IncomingCharge, recorded: RecordedCharge) -> None:
        """A charge that could not be attached to an order is being refunded."""

    async def charge_refunded(self, refund: PendingRefund) -> None:
        """Telegram confirmed the refund of a charge that was never attached."""

    async def order_unknown(self, order: Order) -> None:
        """The customer: paid, the supplier's answer is pending, we keep working on it."""
        ...

    async def order_delayed(self, order: Order) -> None:
        """The customer: the order is taking much longer than usual (it became stuck)."""
        ...


class PreCheckoutRefusal(StrEnum):
    """Why a pre-checkout query gets ``ok=False`` (each has a translated message)."""

    ORDER_NOT_FOUND = "order_not_found"
    ALREADY_PAID = "already_paid"
    EXPIRED = "expired"
    AMOUNT_MISMATCH = "amount_mismatch"
    OFFER_GONE = "offer_gone"
    PRICE_ROSE = "price_rose"
    SUPPLIER_BALANCE = "supplier_balance"
    BANNED = "banned"
    BUSY = "busy"  # no decision within the deadline: the customer may tap Pay again


class ResolveOutcome(StrEnum):
    """What an admin's "resolve now" found (each has a translated answer)."""

    NOT_OPEN = "not_open"  # nothing to resolve: the order is settled or was never paid
    FOUND = "found"  # the supplier has the order: it moved to what the supplier says
    ABSENT_REFUNDED = "absent_refunded"  # the supplier confirmed no order: failed, refund queued
    ABSENT_REROUTED = "absent_rerouted"  # the supplier confirmed no order: sent to another source
    UNREACHABLE = "unreachable"  # the supplier did not answer: nothing changed
    UNCONFIRMED = "unconfirmed"  # the supplier gave us its order id, now denies it: nothing changed


@dataclass(frozen=True, slots=True)
class OrderTimings:
    """Seconds. ``first_check``: first order-status after PROCESSING (7-10 s in the field);
    checks then back off by ``backoff`` up to ``max_check``. ``payment_grace``: how long
    the inline create-order owns a fresh payment before the worker may pick it up.
    ``stuck_after``: open this long, admins and the customer are told. ``precheck_budget``:
    time the pre-checkout answer may spend asking the supplier; ``precheck_deadline``: the
    hard limit for the whole decision, whatever storage does (Telegram allows 10 s).
    ``absent_for``: an unknown order the supplier has said for this long it does not have
    is failed and refunded. ``max_retry_after``: the longest supplier ``Retry-After``
    obeyed before the next check."""

    first_check: float = 7.0
    backoff: float = 1.5
    max_check: float = 300.0
    payment_grace: float = 40.0
    stuck_after: float = 90 * 60.0
    precheck_budget: float = 4.0
    precheck_deadline: float = 7.0
    worker_tick: float = 1.0
    absent_for: float = 30 * 60.0
    max_retry_after: float = 3600.0


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
        suppliers: Suppliers | Supplier,
        orders: OrdersRepository,
        catalogue: CatalogueService,
        pricing: PricingService,
        notifier: OrderNotifier,
        *,
        timings: OrderTimings | None = None,
        clock: Callable[[], float] = time.time,
        on_refund_queued: Callable[[], None] | None = None,
        routing: RoutingService | None = None,
    ) -> None:
        self.suppliers = suppliers if isinstance(suppliers, Suppliers) else Suppliers([suppliers])
        #: the sources of every good, supplier switches and the circuit breaker
        self.routing = routing or RoutingService(
            self.suppliers, catalogue.repo, pricing.settings, lambda: self.pricing.book
        )
        self.orders = orders
        self.catalogue = catalogue
        self.pricing = pricing
        self.notifier = notifier
        self.timings = timings or OrderTimings()
        self._clock = clock
        #: wakes the refund worker after a refund is queued (the composition root may make
        #: it reach another worker process)
        self.on_refund_queued = on_refund_queued or (lambda: None)
        #: per-order locks, kept only while someone holds or waits for them
        self._locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.passes = PassCounter()
        self._wake = asyncio.Event()

    # -- checkout --------------------------------------------------------------------

    def supplier_of(self, order: Order) -> Supplier:
        """The supplier an order (or offer) is bought from; ``UnknownSupplier`` (a
        ``LookupError``) when the shop no longer runs it."""
        return self.suppliers.get(order.supplier)

    async def quote(self, supplier: str, offer_id: str) -> Quote:
        """The price in Stars of the good ``supplier``'s offer is, from its cheapest source
        in stock (find-one asked of every usable linked source at once), and the source an
        order would be placed at: a preferred supplier whose cost gives the same Stars,
        else the cheapest. Raises ``OfferNotFound`` or ``LookupError`` (no source sells
        it), ``UnknownCurrency`` or any supplier error (a good with one source)."""
        sources = await self.routing.sources(supplier, offer_id)
        if not sources:
            if await self.catalogue.repo.get(supplier, offer_id) is None:
                raise LookupError(f"offer {supplier}:{offer_id} is not in the catalogue")
            if not self.routing.usable(supplier) or not (
                await self.routing.linked(supplier, offer_id)
            ):
                raise LookupError(f"no usable source sells {supplier}:{offer_id}")
            # the only source is priced in a currency without a rate: say so
            offer, details = await self.catalogue.quote(supplier, offer_id)
            return self._quote(offer, details)
        if len(sources) == 1:
            only = sources[0].offer
            offer, details = await self.catalogue.quote(only.supplier, only.offer_id)
            return self._quote(offer, details)
        # every source is asked at Buy: the price shown is the cheapest now; pre-checkout
        # and failover then ask the chosen source first and the others only if it fails
        fresh = await self.routing.fresh(sources)
        for gone in fresh.gone:
            await self.catalogue.repo.deactivate(gone.supplier, gone.offer.offer_id)
        if not fresh.in_stock and fresh.unanswered:
            raise SupplierConnectionError(f"no source of {supplier}:{offer_id} answered")
        if not fresh.in_stock:
            raise LookupError(f"no source has {supplier}:{offer_id} in stock")
        best = self._best(fresh.in_stock)
        assert best is not None and best.details is not None
        await self.catalogue.repo.set_offer_details(
            best.supplier, best.offer.offer_id, best.details.price, best.details.currency,
            best.details.is_return_data_for_customer,
            best.details.requires_game_user_id or best.offer.needs_player,
            best.details.requires_game_server_id or best.offer.needs_server,
        )  # fmt: skip
        stored = await self.catalogue.repo.get(best.supplier, best.offer.offer_id)
        return self._quote(stored or best.offer, best.details)

    def _quote(self, offer: StoredOffer, details: OfferDetails) -> Quote:
        book = self.pricing.book
        return Quote(
            offer, details, book.stars(details.price, details.currency, offer.stars_amount),
            book.usd(details.price, details.currency),
        )  # fmt: skip

    def _best(self, ranked: list[Source]) -> Source | None:
        """Of ranked sources in stock, the one a quote offers: the first (preferred, then
        cheapest) that sells for the cheapest Stars price among them."""
        cheapest = min(self.routing.stars(s) for s in ranked)
        return next((s for s in ranked if self.routing.stars(s) <= cheapest), None)

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
        discount_stars: int = 0,
        promo_code: str | None = None,
    ) -> Order:
        """Create the order the invoice will carry (status ``awaiting_payment``). With a
        discount (:func:`services.loyalty.price_checkout`) the invoice charges the quote's
        Stars less ``discount_stars``."""
        offer = quote.offer
        return await self.orders.create(
            NewOrder(
                source_code=self.suppliers.short_of(offer.supplier),
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
                stars=quote.stars - discount_stars,
                discount_stars=discount_stars,
                promo_code=promo_code,
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
        in time the local state decides: a later failure is refunded anyway. Nothing here
        waits for a database write (see ``_write_later``).
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
        sources = await self.routing.sources(order.supplier, order.offer_id)
        if not sources:
            return PreCheckoutRefusal.OFFER_GONE
        # the invoice's own source first: when it still fits, nobody else is asked
        sources.sort(
            key=lambda s: (s.supplier, s.offer.offer_id) != (order.supplier, order.offer_id)
        )
        try:
            async with asyncio.timeout(self.timings.precheck_budget):
                # the balance of the source asked first only (others' only when needed)
                fresh, balances = await asyncio.gather(
                    self.routing.fresh(sources, lambda first, _others: self._fits(first, order)),
                    self._balances({sources[0].supplier}),
                )
                if fresh.in_stock and not self._funded(
                    fresh.in_stock[0], balances.get(fresh.in_stock[0].supplier)
                ):
                    others = [s for s in sources if s.supplier != fresh.in_stock[0].supplier]
                    more, more_balances = await asyncio.gather(
                        self.routing.fresh(others), self._balances({s.supplier for s in others})
                    )
                    balances.update(more_balances)
                    fresh = Quotes(
                        self.routing.rank([*fresh.in_stock, *more.in_stock]),
                        [*fresh.gone, *more.gone], fresh.unanswered + more.unanswered,
                    )  # fmt: skip
        except (TimeoutError, SupplierError) as exc:
            logger.warning("pre-checkout of order %s: supplier re-check skipped: %s", order_id, exc)
            return None
        for gone in fresh.gone:
            self._write_later(
                self.catalogue.repo.deactivate(gone.supplier, gone.offer.offer_id),
                f"deactivating offer {gone.supplier}:{gone.offer.offer_id}",
            )
        fits = [s for s in fresh.in_stock if self._fits(s, order)]
        funded = [s for s in fits if self._funded(s, balances.get(s.supplier))]
        if not funded:
            if fresh.unanswered and not fresh.in_stock:
                logger.warning(
                    "pre-checkout of order %s: no source answered; local state decides", order_id
                )
                return None
            if fits:
                logger.error(
                    "no supplier balance can pay order %s (%s USD)", order_id, fits[0].cost_usd
                )
                return PreCheckoutRefusal.SUPPLIER_BALANCE
            return (
                PreCheckoutRefusal.PRICE_ROSE if fresh.in_stock else PreCheckoutRefusal.OFFER_GONE
            )
        best = funded[0]
        assert best.details is not None
        if (best.supplier, best.offer.offer_id, best.price, best.currency) != (
            order.supplier,
            order.offer_id,
            order.supplier_price,
            order.supplier_currency,
        ):
            # written after the answer: a write may wait for the database lock; the switch
            # applies only while the order awaits payment, and a create-order at an old
            # price is re-priced after WRONG_PRICE anyway
            detail = (
                f"pre-checkout: {best.supplier}:{best.offer.offer_id} at {best.price} "
                f"{best.currency}"
            )
            self._write_later(
                self.orders.switch_source(
                    order_id, self._switch(best), "planned", detail,
                    from_transaction=order.transaction_id,
                    statuses=(OrderStatus.AWAITING_PAYMENT,),
                ),
                f"new source of order {order_id}",
            )  # fmt: skip
        return None

    async def _balances(self, names: set[str]) -> dict[str, Balance | None]:
        """Balances of the named suppliers that have one (``None``: not answered)."""
        having = [n for n in sorted(names) if self.suppliers.can(n, Capability.BALANCE)]

        async def one(name: str) -> Balance | None:
            try:
                return await self.suppliers.get(name).get_balance()
            except SupplierError as exc:
                logger.warning("balance of %s not read: %s", name, exc)
                return None

        return dict(zip(having, await asyncio.gather(*(one(n) for n in having)), strict=True))

    def _fits(self, source: Source, order: Order) -> bool:
        """Whether ``source``'s fresh cost still fits the Stars the order is paid with: its
        retail price within the invoice's list price (paid + discount), and a discounted
        order still above the source's cost (:func:`services.loyalty.price_still_fits`)."""
        try:
            return price_still_fits(
                order.stars, order.discount_stars, self.routing.stars(source), self.pricing.book,
                source.price, source.currency, source.offer.stars_amount,
            )  # fmt: skip
        except UnknownCurrency:
            return False

    def _funded(self, source: Source, balance: Balance | None) -> bool:
        """Whether a prepaid balance (when known) covers ``source``'s cost."""
        if balance is None or balance.is_postpaid:
            return True
        try:
            cover = self.pricing.book.usd(balance.balance, balance.currency)
        except UnknownCurrency:
            cover = balance.balance
        if cover < source.cost_usd:
            logger.error(
                "supplier %s balance %s %s cannot pay %s USD",
                source.supplier, balance.balance, balance.currency, source.cost_usd,
            )  # fmt: skip
            return False
        return True

    def _switch(self, source: Source) -> SourceSwitch:
        assert source.details is not None
        return SourceSwitch(
            source.supplier, source.offer.offer_id, source.price, source.currency,
            source.cost_usd, source.details.is_return_data_for_customer,
            self.suppliers.short_of(source.supplier),
        )  # fmt: skip

    def _write_later(self, write: Coroutine[object, object, object], what: str) -> None:
        """Run a write that an answer must not wait for; its failure is logged."""

        async def run() -> None:
            try:
                await write
            except Exception:
                logger.exception("background write failed: %s", what)

        task = asyncio.create_task(run(), name=what)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def pre_checkout_within(
        self, order_id: int, user_id: int, total_amount: int, currency: str
    ) -> PreCheckoutRefusal | None:
        """:meth:`pre_checkout` under ``precheck_deadline``: past it the answer is
        ``BUSY`` (ok=False, nothing charged) and the decision finishes in the background."""
        decision = asyncio.create_task(
            self.pre_checkout(order_id, user_id, total_amount, currency),
            name=f"pre-checkout {order_id}",
        )
        try:
            return await asyncio.wait_for(asyncio.shield(decision), self.timings.precheck_deadline)
        except TimeoutError:
            logger.error(
                "pre-checkout of order %s: no decision within %.1f s; refused as busy",
                order_id, self.timings.precheck_deadline,
            )  # fmt: skip
            self._background.add(decision)
            decision.add_done_callback(self._background.discard)
            decision.add_done_callback(_log_failure)
            return PreCheckoutRefusal.BUSY

    # -- payment and fulfilment ------------------------------------------------------

    async def handle_payment(self, charge: IncomingCharge) -> RecordedCharge:
        """Record a ``successful_payment`` and place the supplier order.

        Every charge is recorded under its charge id. One that cannot be attached to this
        user's order awaiting payment (already paid, expired, unknown payload, another
        user's order, wrong amount or currency, a banned user) is refunded through the
        outbox and the customer is told. A charge id seen before changes nothing
        (``new`` is ``False``).
        """
        refuse = charge.refuse
        if refuse is None and charge.currency != STARS_CURRENCY:
            refuse = ChargeRejection.WRONG_CURRENCY
        if refuse is not charge.refuse:
            charge = IncomingCharge(
                charge.charge_id, charge.user_id, charge.stars, charge.currency,
                charge.payload, charge.order_id, charge.provider_charge_id, refuse,
            )  # fmt: skip
        async with self._lock(charge.order_id if charge.order_id is not None else -1):
            recorded = await self.orders.record_payment(charge, self._clock())
            if not recorded.new:
                logger.info("charge for order %s already recorded", charge.order_id)
                return recorded
            if recorded.rejection is not None:
                logger.warning(
                    "charge of user %s for order %s not attached (%s): %d %s refund queued",
                    charge.user_id, charge.order_id, recorded.rejection.value, charge.stars,
                    charge.currency,
                )  # fmt: skip
                self.on_refund_queued()
                try:
                    await self.notifier.charge_rejected(charge, recorded)
                except Exception:
                    logger.exception("could not tell user %s about a refund", charge.user_id)
                return recorded
            assert recorded.order_id is not None
            await self.orders.update(
                recorded.order_id, next_check_at_ts=self._clock() + self.timings.payment_grace
            )
            order = await self.orders.get(recorded.order_id)
            assert order is not None
            await self._place(order)
        return recorded

    def _customer(self, order: Order) -> Customer:
        return Customer(game_user_id=order.game_user_id, game_server_id=order.game_server_id)

    async def _place(self, order: Order) -> None:
        """Send create-order once at the order's source and act on the answer. Caller
        holds the order lock."""
        await self.orders.start_attempt(order)
        await self._settle(order, lambda: self._create(order))

    async def _create(self, order: Order) -> SupplierOrder:
        """create-order with the order's own ``transactionId`` (never another one)."""
        try:
            return await self.supplier_of(order).create_order(
                order.offer_id,
                order.supplier_price,
                order.transaction_id,
                self._customer(order),
            )
        except WrongPrice as exc:
            return await self._order_at_new_price(order, exc)
        except TransactionDuplicate as duplicate:
            # an order with our transactionId exists already: read it, never order again
            try:
                return await self.supplier_of(order).get_order(
                    transaction_id=order.transaction_id, attempt=self.attempt_of(order)
                )
            except OrderNotFound as exc:
                # the supplier says it exists: a lagging order-status proves nothing
                raise OrderOutcomeUnknown(
                    order.transaction_id, "duplicate transactionId, order-status has none yet"
                ) from exc
            except SupplierAPIError as exc:
                raise OrderOutcomeUnknown(order.transaction_id, str(exc)) from duplicate

    async def _settle(self, order: Order, attempt: Callable[[], Awaitable[SupplierOrder]]) -> None:
        """Run a supplier call that should end with the order's supplier state, and act:
        no answer -> ``unknown`` (asked again later); refused -> failed and refunded
        (a refused create-order made no supplier order); an answer -> applied."""
        try:
            result = await attempt()
        except (OrderOutcomeUnknown, SupplierConnectionError, RetryLaterError) as exc:
            await self.routing.breaker.failure(order.supplier, exc)
            await self._mark_unknown(order, str(exc), getattr(exc, "retry_after", None))
            return
        except (RefreshPriceError, MoneyError) as exc:
            # refused before any supplier order existed: another source may deliver it
            self.routing.breaker.success(order.supplier)
            await self._fail_over(order, exc.supplier_message or str(exc), exc.code, "refused")
            return
        except (FixRequestError, UnknownSupplierError) as exc:
            await self._fail(order, exc.supplier_message or str(exc), exc.code)
            return
        self.routing.breaker.success(order.supplier)
        await self._apply(order, result)

    async def _fail_over(self, order: Order, reason: str, code: str | None, outcome: str) -> None:
        """The order's current attempt made no supplier order (``outcome``: ``refused``, or
        ``absent``: proven never placed). Place it at the next usable source not tried yet
        whose fresh cost fits the Stars paid, with that source's own ``transactionId``;
        fail and refund when none can. Caller holds the order lock."""
        order = await self._reload(order)
        if not order.status.is_open:
            return
        tried = await self.orders.tried_sources(order.id) | {(order.supplier, order.offer_id)}
        candidates = await self.routing.sources(order.supplier, order.offer_id, exclude=tried)
        fresh = (
            await self.routing.fresh(candidates, lambda first, _others: self._fits(first, order))
            if candidates
            else None
        )
        for source in fresh.in_stock if fresh else []:
            if not self._fits(source, order):
                continue
            detail = (
                f"{order.supplier}:{order.offer_id} {outcome} ({code}: {reason}); "
                f"next source {source.supplier}:{source.offer.offer_id} at "
                f"{source.price} {source.currency}"
            )
            switched = await self.orders.switch_source(
                order.id, self._switch(source), outcome, detail,
                from_transaction=order.transaction_id,
                statuses=(OrderStatus.PAID, OrderStatus.UNKNOWN),
            )  # fmt: skip
            if switched is None:
                return
            logger.warning("order %s: %s", order.id, detail)
            await self._place(switched)
            return
        if candidates:
            logger.warning(
                "order %s: no other source can deliver it for %d Stars", order.id, order.stars
            )
        await self._fail(order, reason, code)

    async def _order_at_new_price(self, order: Order, refused: WrongPrice) -> SupplierOrder:
        """The price moved between pre-checkout and now. When the new price still fits the
        Stars paid, order once more at it (same transactionId: the first was refused);
        otherwise raise the refusal."""
        delivered = await self._stars_delivered(order)
        try:
            details = await self.supplier_of(order).find_offer(order.offer_id)
            stars_now = self.pricing.book.stars(details.price, details.currency, delivered)
        except (SupplierError, UnknownCurrency) as exc:
            logger.warning("order %s: price refresh after WRONG_PRICE failed: %s", order.id, exc)
            raise refused from exc
        if not price_still_fits(
            order.stars, order.discount_stars, stars_now, self.pricing.book, details.price,
            details.currency, delivered,
        ):  # fmt: skip
            logger.warning(
                "order %s: supplier price rose past the %d Stars paid", order.id, order.stars
            )
            raise refused
        await self.orders.update(
            order.id, supplier_price=details.price, supplier_currency=details.currency,
            cost_usd=self.pricing.book.usd(details.price, details.currency),
        )  # fmt: skip
        return await self.supplier_of(order).create_order(
            order.offer_id, details.price, order.transaction_id, self._customer(order)
        )

    @staticmethod
    def attempt_of(order: Order) -> OrderAttempt:
        """What create-order sent for ``order`` (for vendors that find orders by what they
        were): its offer, price and currency, placed after the payment (or the order's
        creation when not paid yet)."""
        return OrderAttempt(
            offer_id=order.offer_id,
            price=order.supplier_price,
            currency=order.supplier_currency,
            placed_after=datetime.fromisoformat(order.paid_at or order.created_at),
        )

    async def _stars_delivered(self, order: Order) -> int | None:
        offer = await self.catalogue.repo.get(order.supplier, order.offer_id)
        return offer.stars_amount if offer else None

    async def _reload(self, order: Order) -> Order:
        fresh = await self.orders.get(order.id)
        assert fresh is not None
        return fresh

    async def _mark_unknown(
        self, order: Order, reason: str, retry_after: float | None = None
    ) -> None:
        """No answer to act on: ask again later (not before the supplier's ``retry_after``
        seconds; on the vendor's own schedule where it has one, see :meth:`_recheck`).
        The customer hears once that the order is paid and being worked on."""
        attempts = order.check_attempts + 1
        schedule = {"check_attempts": attempts,
                    "next_check_at_ts": self._next_check(attempts, retry_after)}  # fmt: skip
        interval, limit = self._recheck(order)
        if interval is not None:
            schedule["next_check_at_ts"] = self._clock() + max(interval, retry_after or 0.0)
        if limit is not None and attempts >= limit and not order.stuck_flagged:
            # the vendor's checks are used up: a person takes it from here (checks go on)
            await self.orders.update(order.id, stuck_flagged=True)
            logger.error(
                "order %s: no answer after %d checks; handed to admins", order.id, attempts
            )
            await self._notify(self.notifier.order_stuck, order)
            await self._notify(self.notifier.order_delayed, order)
        if order.status is OrderStatus.PROCESSING:
            # the supplier has the order; only this check went unanswered
            await self.orders.update(order.id, **schedule)
            logger.warning("order %s: status check unanswered (%s)", order.id, reason)
            return
        first_time = order.status is not OrderStatus.UNKNOWN
        order = await self.orders.transition(
            order.id, OrderStatus.UNKNOWN, f"supplier outcome unknown: {reason}", **schedule
        )
        logger.warning("order %s outcome unknown (%s); will ask the supplier", order.id, reason)
        if first_time:
            await self._notify(self.notifier.order_unknown, order)
        self._wake.set()

    def _recheck(self, order: Order) -> tuple[float | None, int | None]:
        """The vendor's own re-check schedule after an unknown outcome, where it has one:
        ``recheck_interval`` seconds apart, ``recheck_limit`` checks before admins are
        told (CodeGames: 120 s, 100 checks). ``(None, None)`` otherwise."""
        supplier = self.suppliers.get(order.supplier) if order.supplier in self.suppliers else None
        return getattr(supplier, "recheck_interval", None), getattr(supplier, "recheck_limit", None)

    def _next_check(self, attempts: int, retry_after: float | None = None) -> float:
        t = self.timings
        delay = min(t.max_check, t.first_check * t.backoff ** max(0, attempts - 1))
        if retry_after is not None:
            delay = max(delay, min(retry_after, t.max_retry_after))
        return self._clock() + delay

    async def _apply(self, order: Order, result: SupplierOrder) -> None:
        """Move the order to what the supplier says and tell the customer."""
        order = await self._reload(order)
        if not order.status.is_open:
            return
        common = {"supplier_order_id": result.order_id or order.supplier_order_id,
                  "supplier_status": result.status.value}  # fmt: skip
        if result.fulfillment_data is not None:
            common["fulfillment"] = result.fulfillment_data
        keys = result.all_keys
        wants_key = order.returns_key and order.kind == "goods"
        if result.status is SupplierStatus.COMPLETED and wants_key and not keys:
            keys = await self._fetch_keys(order, result)
        if result.status is SupplierStatus.COMPLETED and not (wants_key and not keys):
            order = await self.orders.transition(
                order.id, OrderStatus.COMPLETED, f"supplier order {result.order_id} completed",
                delivered_key="\n".join(keys) or None, finished_at=utcnow_iso(),
                next_check_at_ts=None, **common,
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

    async def _fetch_keys(self, order: Order, result: SupplierOrder) -> list[str]:
        """Keys of a completed key order that came without them, from a supplier with
        ``KEYS_SEPARATE``; ``[]`` (checked again later) when it has none to give yet, cannot
        fetch them, or does not answer."""
        supplier = self.supplier_of(order)
        if Capability.KEYS_SEPARATE not in supplier.capabilities:
            return []
        try:
            return [key for key in await supplier.fetch_keys(result, order.transaction_id) if key]
        except SupplierError as exc:
            logger.warning("order %s: keys of a completed order not fetched: %s", order.id, exc)
            return []

    async def refund_by_admin(self, order: Order, reason: str) -> Order:
        """Refund a delivered order on an admin's word: the refund goes to the outbox and
        the customer hears about it when Telegram confirms. Raises
        :class:`~storage.orders.InvalidTransition` when, once the lock is held, the order is
        no longer delivered (a simultaneous confirm refunded it first)."""
        async with self._lock(order.id):
            current = await self.orders.get(order.id)
            if current is None or current.status is not OrderStatus.COMPLETED:
                status = current.status if current else "missing"
                raise InvalidTransition(order.id, status, OrderStatus.FAILED)
            order = await self.orders.fail_and_queue_refund(
                order.id, reason, "ADMIN_REFUND", self._clock()
            )
        self.on_refund_queued()
        return order

    async def _fail(self, order: Order, reason: str, code: str | None) -> None:
        order = await self.orders.fail_and_queue_refund(order.id, reason, code, self._clock())
        logger.warning("order %s failed (%s: %s); refund queued", order.id, code, reason)
        self.on_refund_queued()
        await self._notify(self.notifier.order_failed, order)

    async def _notify(self, method: Callable[[Order], Awaitable[None]], order: Order) -> None:
        try:
            await method(order)
        except Exception:
            logger.exception("could not notify about order %s", order.id)

    # -- background checks -----------------------------------------------------------

    @asynccontextmanager
    async def _lock(self, order_id: int) -> AsyncIterator[None]:
        """Hold the order's lock; the lock is forgotten when nobody holds or awaits it, so
        the process does not keep one per order ever handled."""
        entry = self._locks.get(order_id)
        if entry is None:
            entry = self._locks[order_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[order_id]

    async def _resolve(self, order: Order) -> None:
        """Settle a paid order whose supplier state is not known (after a lost answer,
        a restart, or a payment whose create-order never finished).

        Asks order-status by ``transactionId``: an order found is applied. When the
        supplier says it has none, create-order is sent again with the same id, until the
        supplier has said so for ``absent_for`` seconds: then the order is failed and
        refunded. An unanswered or refused status check proves nothing: asked again later.
        Caller holds the order lock."""
        try:
            found = await self.supplier_of(order).get_order(
                transaction_id=order.transaction_id, attempt=self.attempt_of(order)
            )
        except OrderNotFound:
            found = None
        except SupplierError as exc:
            await self._mark_unknown(
                order, f"order-status: {exc}", getattr(exc, "retry_after", None)
            )
            return
        if found is not None:
            await self._apply(order, found)
            return
        if order.status is OrderStatus.PROCESSING:
            # the supplier told us it has this order: "no such order" now proves nothing
            await self._mark_unknown(order, "order-status has no such order yet")
            return
        now = self._clock()
        since = order.supplier_absent_since_ts
        if since is None:
            since = now
            await self.orders.update(order.id, supplier_absent_since_ts=since)
        absent = now - since
        if absent >= self.timings.absent_for:
            await self._fail_over(
                order,
                f"the supplier has had no order {order.transaction_id} for {absent / 60:.0f} min",
                NOT_PLACED,
                "absent",
            )
            return
        logger.info(
            "order %s unknown to the supplier for %.0f s; re-sending with the same id",
            order.id, absent,
        )  # fmt: skip
        await self._place(order)

    async def resolve_now(self, order_id: int) -> tuple[Order | None, ResolveOutcome]:
        """An admin's "resolve now" on an open order: ask the supplier (order-status by the
        supplier's order id when known, else by ``transactionId``) and act on the answer.

        Fails and refunds only when the supplier confirms it has no order with our
        ``transactionId``; never sends create-order. Returns the order as it is now and
        what was found."""
        async with self._lock(order_id):
            order = await self.orders.get(order_id)
            if order is None or not order.status.is_open:
                return order, ResolveOutcome.NOT_OPEN
            try:
                supplier = self.supplier_of(order)
                if order.supplier_order_id is not None:
                    found = await supplier.get_order(order_id=order.supplier_order_id)
                else:
                    found = await supplier.get_order(
                        transaction_id=order.transaction_id, attempt=self.attempt_of(order)
                    )
            except OrderNotFound:
                if order.supplier_order_id is not None:
                    logger.error(
                        "order %s: supplier denies its own order %s",
                        order.id, order.supplier_order_id,
                    )  # fmt: skip
                    return order, ResolveOutcome.UNCONFIRMED
                await self._fail_over(
                    order,
                    f"an admin asked: the supplier has no order {order.transaction_id}",
                    NOT_PLACED,
                    "absent",
                )
                order = await self._reload(order)
                if order.status.is_open or order.status is OrderStatus.COMPLETED:
                    return order, ResolveOutcome.ABSENT_REROUTED
                return order, ResolveOutcome.ABSENT_REFUNDED
            except SupplierError as exc:
                logger.warning("order %s: resolve now: supplier did not answer: %s", order.id, exc)
                return order, ResolveOutcome.UNREACHABLE
            await self._apply(order, found)
            return await self._reload(order), ResolveOutcome.FOUND

    async def check_order(self, order: Order) -> None:
        """One supplier check of an open order (used by the worker and by admins)."""
        async with self._lock(order.id):
            order = await self._reload(order)
            if not order.status.is_open:
                return
            if order.status is OrderStatus.PROCESSING and order.supplier_order_id:
                try:
                    result = await self.supplier_of(order).get_order(
                        order_id=order.supplier_order_id
                    )
                except SupplierError as exc:
                    # unanswered or refused: the order exists at the supplier; ask again later
                    logger.warning("order %s: status check failed: %s", order.id, exc)
                    attempts = order.check_attempts + 1
                    await self.orders.update(
                        order.id,
                        check_attempts=attempts,
                        next_check_at_ts=self._next_check(
                            attempts, getattr(exc, "retry_after", None)
                        ),
                    )
                    await self._flag_if_stuck(await self._reload(order))
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
            await self._notify(self.notifier.order_delayed, order)

    async def check_due_orders(self) -> int:
        """Check every open order whose time has come; returns how many were checked."""
        due = await self.orders.due_for_check(self._clock())
        for order in due:
            try:
                await self.check_order(order)
            except Exception:
                # one order's trouble never stops the others; it is asked again later
                logger.exception("order %s: check failed", order.id)
                await self._postpone(order)
        return len(due)

    async def _postpone(self, order: Order) -> None:
        attempts = order.check_attempts + 1
        try:
            await self.orders.update(
                order.id, check_attempts=attempts, next_check_at_ts=self._next_check(attempts)
            )
        except Exception:
            logger.exception("order %s: could not reschedule its check", order.id)

    def wake(self) -> None:
        self._wake.set()

    async def run_worker(self) -> None:
        """Forever: check due orders, then sleep until the next is due (at most a tick)."""
        tick = self.timings.worker_tick
        await run_due_loop(
            "order worker", self.check_due_orders, self.orders.next_check_ts, self._wake,
            self._clock, idle=tick, max_wait=tick, passes=self.passes,
        )  # fmt: skip
