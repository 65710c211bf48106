"""Loyalty in real Telegram Stars: cashback, referrals, promo codes (issue 17).

- A completed order accrues whole Stars: cashback to the customer (``cashback_percent``,
  per category if set) and a share to whoever referred them (``referral_percent``); a
  failed or refunded order takes its accruals back (a balance below zero is debt, paid by
  future accruals). Credits become available after ``hold_seconds``.
- A balance is withdrawn in real Stars through the supplier's Telegram Stars packs
  (:class:`services.stars.StarsPackSender`, as campaigns pay), one pack order per part,
  ``transactionId`` ``<prefix>-y<payout>-p<part>``: a restart or a retry never pays twice,
  and a pack the supplier fails to deliver returns its Stars to the balance.
- Or it is spent as a discount on the next invoice, as a promo code is; a discount never
  takes the price under the supplier cost (:func:`price_checkout`).

The worker (:meth:`LoyaltyService.run_worker`, :func:`services.workers.run_due_loop`)
does all of it from the order log, woken by order completions and refunds, so orders
need no loyalty code: every balance change is a ledger row that says why
(:mod:`storage.loyalty`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Protocol

from services.exports import csv_bytes
from services.pricing import PriceBook, PricingService
from services.stars import (
    IN_FLIGHT_ERRORS,
    Pacer,
    PackOrder,
    StarsPackSender,
    largest_payable,
    pack_status,
)
from services.suppliers.errors import SupplierAPIError
from services.suppliers.models import OfferDetails, OfferRef, SupplierOrder
from services.suppliers.registry import Suppliers, UnknownSupplier
from services.workers import PassCounter, run_due_loop
from storage.catalogue import CatalogueRepository, StoredOffer
from storage.loyalty import (
    AccrualCandidate,
    Balance,
    LoyaltyRepository,
    Member,
    Payout,
    PayoutPart,
    PromoCode,
    PromoStats,
)
from storage.orders import Order

logger = logging.getLogger(__name__)

#: promo codes: 3-32 of A-Z, 0-9, ``_`` and ``-`` (they travel in ``/start promo_<code>``)
PROMO_CODE = re.compile(r"^[A-Z0-9_-]{3,32}$")
#: personal referral codes: 8 characters of an alphabet without look-alikes
_REF_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
REF_CODE = re.compile(r"^[a-z0-9]{4,16}$")


# -- pricing arithmetic --------------------------------------------------------------


def cost_floor_stars(
    book: PriceBook, price: Decimal, currency: str, delivers_stars: int | None = None
) -> int:
    """The fewest Stars an offer may be sold for after discounts: its supplier cost in
    Stars, rounded up (``ceil(price x USD rate / Star value)``), never fewer than a Stars
    pack delivers, at least 1. Raises ``UnknownCurrency``."""
    cost = book.usd(price, currency) / book.star_usd
    return max(1, int(cost.to_integral_value(rounding=ROUND_CEILING)), delivers_stars or 0)


def price_still_fits(
    paid: int,
    discount: int,
    retail_now: int,
    book: PriceBook,
    price: Decimal,
    currency: str,
    delivers_stars: int | None = None,
) -> bool:
    """Whether an invoice of ``paid`` Stars after ``discount`` may still be paid now that
    the offer's retail price is ``retail_now`` and its supplier price ``price``: the list
    price on the invoice (paid + discount) covers the fresh retail price, and a discounted
    invoice still covers the supplier cost (:func:`cost_floor_stars`). Raises
    ``UnknownCurrency``."""
    if retail_now > paid + discount:
        return False
    return discount == 0 or paid >= cost_floor_stars(book, price, currency, delivers_stars)


@dataclass(frozen=True, slots=True)
class CheckoutPrice:
    """An invoice's price: ``list_stars`` (retail) less ``promo_stars`` (the code's
    discount) and ``balance_stars`` (loyalty balance spent). Whole Stars."""

    list_stars: int
    promo_code: str | None = None
    promo_stars: int = 0
    balance_stars: int = 0
    #: the code the customer entered that does not apply to this invoice
    refused_code: str | None = None

    @property
    def discount(self) -> int:
        return self.promo_stars + self.balance_stars

    @property
    def pay_stars(self) -> int:
        return self.list_stars - self.discount


def promo_discount(promo: PromoCode, list_stars: int) -> int:
    """Stars a code takes off ``list_stars`` before the cost floor: ``percent`` rounds
    down, ``fixed`` is its value."""
    if promo.kind == "percent":
        return int((Decimal(list_stars) * promo.value / 100).to_integral_value(ROUND_FLOOR))
    return promo.value


def price_checkout(
    list_stars: int, floor_stars: int, promo: PromoCode | None = None, balance: int = 0
) -> CheckoutPrice:
    """The invoice price: the promo code's discount first, then up to ``balance`` loyalty
    Stars, neither taking the price under ``floor_stars`` (:func:`cost_floor_stars`)."""
    room = max(0, list_stars - max(1, floor_stars))
    promo_stars = min(room, promo_discount(promo, list_stars)) if promo else 0
    balance_stars = min(max(0, balance), room - promo_stars)
    return CheckoutPrice(list_stars, promo.code if promo else None, promo_stars, balance_stars)


def reward_share(stars: int, percent: Decimal) -> int:
    """Whole Stars of ``percent`` % of ``stars`` (rounded down)."""
    return int((Decimal(stars) * percent / 100).to_integral_value(ROUND_FLOOR))


# -- promo code specs ------------------------------------------------------------------


class PromoSpecError(ValueError):
    """An admin's promo code spec that cannot be used: ``problem`` is ``format``,
    ``code``, ``value`` or ``option`` (each has a translated message); ``text`` the part
    at fault."""

    def __init__(self, problem: str, text: str = "") -> None:
        super().__init__(f"{problem}: {text}")
        self.problem = problem
        self.text = text


_PROMO_OPTIONS = {"min", "uses", "per_user", "days", "category", "product"}


def parse_promo_spec(text: str, admin_id: int, now: datetime | None = None) -> PromoCode:
    """``CODE 10%`` (percent off) or ``CODE 20`` (Stars off), then any of ``min=N``
    (order of at least N Stars), ``uses=N``, ``per_user=N``, ``days=N`` (expires in N days),
    ``category="Gift cards"``, ``product=<supplier>:<product id>``. Raises
    :class:`PromoSpecError`; numbers are ASCII digits."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise PromoSpecError("format", text[:60]) from exc
    if len(words) < 2:
        raise PromoSpecError("format", text[:60])
    code = words[0].upper()
    if not PROMO_CODE.match(code):
        raise PromoSpecError("code", words[0][:40])
    raw = words[1]
    kind = "percent" if raw.endswith("%") else "fixed"
    digits = raw.removesuffix("%")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 6:
        raise PromoSpecError("value", raw[:20])
    value = int(digits)
    if not (1 <= value <= 100 if kind == "percent" else 1 <= value <= 100_000):
        raise PromoSpecError("value", raw[:20])
    options: dict[str, str] = {}
    for word in words[2:]:
        name, sep, option = word.partition("=")
        if not sep or name not in _PROMO_OPTIONS or not option or name in options:
            raise PromoSpecError("option", word[:40])
        options[name] = option
    numbers: dict[str, int] = {}
    for name in ("min", "uses", "per_user", "days"):
        if name in options:
            number = options[name]
            if not number.isascii() or not number.isdigit() or len(number) > 7 or int(number) < 1:
                raise PromoSpecError("option", f"{name}={number}"[:40])
            numbers[name] = int(number)
    scope_kind, scope_value = "all", None
    if "category" in options and "product" in options:
        raise PromoSpecError("option", "category + product")
    if "category" in options:
        scope_kind, scope_value = "category", options["category"][:100]
    elif "product" in options:
        if ":" not in options["product"]:
            raise PromoSpecError("option", f"product={options['product']}"[:40])
        scope_kind, scope_value = "product", options["product"][:100]
    expires = None
    if "days" in numbers:
        expires = ((now or datetime.now(UTC)) + timedelta(days=numbers["days"])).isoformat()
    return PromoCode(
        code=code, kind=kind, value=value, min_order_stars=numbers.get("min", 0),
        scope_kind=scope_kind, scope_value=scope_value, max_uses=numbers.get("uses"),
        max_uses_per_user=numbers.get("per_user"), expires_at=expires, created_by=admin_id,
    )  # fmt: skip


# -- outcomes ------------------------------------------------------------------------


class PromoProblem(StrEnum):
    """Why a promo code cannot be used (each has a translated message)."""

    UNKNOWN = "unknown"
    PAUSED = "paused"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    USED_BY_YOU = "used_by_you"
    MIN_ORDER = "min_order"
    SCOPE = "scope"


#: problems after which a code kept for the next invoice is forgotten (it cannot recover)
_CODE_GONE = (PromoProblem.UNKNOWN, PromoProblem.EXPIRED, PromoProblem.EXHAUSTED,
              PromoProblem.USED_BY_YOU)  # fmt: skip


class ReferralOutcome(StrEnum):
    """What a ``ref_<code>`` link did (each has a translated message)."""

    BOUND = "bound"
    UNKNOWN_CODE = "unknown_code"
    SELF = "self"
    LOOP = "loop"
    ALREADY = "already"  # tied to a referrer before: forever
    NOT_NEW = "not_new"  # has bought before: only new customers can be referred


class PayoutRefusal(StrEnum):
    """Why a withdrawal was not started (each has a translated message)."""

    BELOW_MINIMUM = "below_minimum"
    OPEN = "open"  # a payout is still being delivered
    NO_PACKS = "no_packs"  # no supplier sells Stars packs now


@dataclass(frozen=True, slots=True)
class LoyaltyConfig:
    """Percents of the Stars paid (``Decimal``); ``category_cashback`` overrides
    ``cashback_percent`` per catalogue category; orders under ``min_order_stars`` accrue
    nothing; credits wait ``hold_seconds`` before they can be withdrawn or spent;
    ``auto_payout`` withdraws as soon as a balance reaches the smallest Stars pack."""

    cashback_percent: Decimal = Decimal(0)
    category_cashback: dict[str, Decimal] = field(default_factory=dict)
    referral_percent: Decimal = Decimal(0)
    min_order_stars: int = 0
    hold_seconds: float = 0.0
    auto_payout: bool = False

    def cashback_for(self, category: str | None) -> Decimal:
        if category is not None and category in self.category_cashback:
            return self.category_cashback[category]
        return self.cashback_percent


@dataclass(frozen=True, slots=True)
class RewardsView:
    """What the Rewards screen shows: Stars ``balance`` (available), ``held``, ``debt``,
    earnings by kind, referrals, and the smallest pack a withdrawal needs (0: none sold)."""

    member: Member
    balance: Balance
    cashback: int
    referral: int
    paid_out: int
    referrals: int
    min_pack: int


@dataclass(frozen=True, slots=True)
class PayoutResult:
    """A finished payout: Stars delivered, Stars returned to the balance and the
    supplier's reason for the first pack that failed."""

    payout: Payout
    paid: int
    returned: int
    reason: str | None


class LoyaltyNotifier(Protocol):
    """Tells customers about their payouts (implemented by the bot layer, through the
    delivery outbox so a message is sent once) and admins about payouts that hang."""

    async def payout_finished(self, result: PayoutResult) -> None: ...

    async def payout_stuck(self, payout: Payout) -> None: ...


class LoyaltyService:
    """The loyalty programme. ``transaction_prefix``: as orders' (``<prefix>-y<payout>-p<part>``
    for payout packs); ``supplier_rate``: supplier calls per second while paying;
    ``recheck``: seconds between order-status checks of a pack the supplier has not
    settled (7-10 s in the field); ``idle``: the longest sleep with nothing due;
    ``stuck_after``: seconds after which a payout still open is reported to admins
    (once per process; the worker keeps asking the supplier)."""

    def __init__(
        self,
        repo: LoyaltyRepository,
        catalogue: CatalogueRepository,
        suppliers: Suppliers,
        pricing: PricingService,
        notifier: LoyaltyNotifier,
        config: LoyaltyConfig,
        *,
        transaction_prefix: str = "shop",
        supplier_rate: float = 25.0,
        clock: Callable[[], float] = time.time,
        idle: float = 30.0,
        recheck: float = 7.0,
        stuck_after: float = 90 * 60.0,
    ) -> None:
        self.repo = repo
        self.config = config
        self.catalogue = catalogue
        self._pricing = pricing
        self._notifier = notifier
        self._prefix = transaction_prefix
        self._rate = supplier_rate
        self._clock = clock
        self._idle = idle
        self._recheck = recheck
        self._stuck_after = stuck_after
        self._stuck_told: set[int] = set()
        self._sender = StarsPackSender(suppliers, catalogue)
        self._wake = asyncio.Event()
        self.passes = PassCounter()

    # -- members and referrals ---------------------------------------------------------

    async def member(self, user_id: int) -> Member:
        """``user_id``'s member row, created (with a fresh personal code) on first use."""
        found = await self.repo.member(user_id)
        if found is not None:
            return found
        for _ in range(5):
            code = "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))
            added = await self.repo.add_member(user_id, code)
            if added is not None:
                return added
            # another member has this code: draw again
        raise RuntimeError("could not draw a free referral code")

    async def bind_referral(self, user_id: int, code: str) -> ReferralOutcome:
        """Tie a new customer to the owner of referral ``code``, once and forever. Refused:
        an unknown code, one's own, a loop (the referrer was referred by this customer,
        however far up), a customer already tied, and one who has bought before."""
        code = code.lower()
        referrer = await self.repo.member_by_code(code) if REF_CODE.match(code) else None
        if referrer is None:
            return ReferralOutcome.UNKNOWN_CODE
        if referrer.user_id == user_id:
            return ReferralOutcome.SELF
        member = await self.member(user_id)
        if member.referrer_id is not None:
            return ReferralOutcome.ALREADY
        if user_id in await self.repo.referrer_chain(referrer.user_id):
            return ReferralOutcome.LOOP
        if await self.repo.has_paid_orders(user_id):
            return ReferralOutcome.NOT_NEW
        if not await self.repo.bind_referrer(user_id, referrer.user_id):
            return ReferralOutcome.ALREADY
        logger.info("user %s referred by %s", user_id, referrer.user_id)
        return ReferralOutcome.BOUND

    async def rewards(self, user_id: int) -> RewardsView:
        """What the Rewards screen of ``user_id`` shows (:class:`RewardsView`)."""
        member = await self.member(user_id)
        totals = await self.repo.totals_by_kind(user_id)
        packs = await self._sender.packs()
        paid_out = -totals.get("payout", 0) - totals.get("payout_return", 0)
        return RewardsView(
            member, await self.repo.balance(user_id, self._clock()),
            totals.get("cashback", 0), totals.get("referral", 0), paid_out,
            await self.repo.referral_count(user_id), min(packs) if packs else 0,
        )  # fmt: skip

    async def set_spend_next(self, user_id: int, spend: bool) -> None:
        """Whether the balance goes into ``user_id``'s next invoice."""
        await self.member(user_id)
        await self.repo.set_spend_next(user_id, spend)

    # -- promo codes ---------------------------------------------------------------------

    @staticmethod
    def normalise_code(text: str) -> str:
        """A promo code as stored: trimmed, upper case."""
        return text.strip().upper()

    async def promo_problem(
        self,
        code: str,
        user_id: int,
        list_stars: int | None = None,
        offer: StoredOffer | None = None,
        *,
        invoiced: bool = False,
    ) -> tuple[PromoCode | None, PromoProblem | None]:
        """The code and ``None``, or why it cannot be used by ``user_id`` (for an order of
        ``list_stars`` for ``offer``, when given). ``invoiced``: the order already has its
        invoice (pre-checkout), so other customers' unpaid invoices do not count against
        it; before the invoice they do (each holds a use until paid or expired)."""
        code = self.normalise_code(code)
        promo = await self.repo.promo(code) if PROMO_CODE.match(code) else None
        if promo is None or promo.status == "deleted":
            return None, PromoProblem.UNKNOWN
        if promo.status == "paused":
            return promo, PromoProblem.PAUSED
        if promo.expires_at and datetime.fromisoformat(promo.expires_at) <= datetime.now(UTC):
            return promo, PromoProblem.EXPIRED
        held = None if invoiced else user_id
        if (
            promo.max_uses is not None
            and await self.repo.promo_uses(code, holding_for=held) >= promo.max_uses
        ):
            return promo, PromoProblem.EXHAUSTED
        if (
            promo.max_uses_per_user is not None
            and await self.repo.promo_uses(code, user_id) >= promo.max_uses_per_user
        ):
            return promo, PromoProblem.USED_BY_YOU
        if list_stars is not None and list_stars < promo.min_order_stars:
            return promo, PromoProblem.MIN_ORDER
        if offer is not None and not self._in_scope(promo, offer):
            return promo, PromoProblem.SCOPE
        return promo, None

    @staticmethod
    def _in_scope(promo: PromoCode, offer: StoredOffer) -> bool:
        if promo.scope_kind == "category":
            return (promo.scope_value or "").casefold() == offer.category.casefold()
        if promo.scope_kind == "product":
            return promo.scope_value == f"{offer.supplier}:{offer.product_id}"
        return True

    async def enter_promo(
        self, user_id: int, code: str
    ) -> tuple[PromoCode | None, PromoProblem | None]:
        """Keep ``code`` for the customer's next invoice when it can be used; a bad,
        expired or exhausted code changes nothing."""
        promo, problem = await self.promo_problem(code, user_id)
        if problem is None and promo is not None:
            await self.member(user_id)
            await self.repo.set_member_promo(user_id, promo.code)
        return promo, problem

    async def clear_promo(self, user_id: int) -> None:
        """Forget the code kept for ``user_id``'s next invoice."""
        await self.member(user_id)
        await self.repo.set_member_promo(user_id, None)

    # -- checkout ------------------------------------------------------------------------

    async def price_for(
        self, user_id: int, offer: StoredOffer, price: Decimal, currency: str, list_stars: int
    ) -> tuple[CheckoutPrice, PromoProblem | None]:
        """The invoice price of ``offer`` (supplier ``price`` in ``currency``, retail
        ``list_stars``) for ``user_id``: the promo code they entered (when it still
        applies: otherwise the problem, and no promo discount) and, when they chose to,
        their loyalty balance. Raises ``UnknownCurrency``."""
        member = await self.repo.member(user_id)
        if member is None or (member.promo_code is None and not member.spend_next):
            return CheckoutPrice(list_stars), None
        floor = cost_floor_stars(self._pricing.book, price, currency, offer.stars_amount)
        promo, problem = None, None
        if member.promo_code is not None:
            promo, problem = await self.promo_problem(member.promo_code, user_id, list_stars, offer)
            if problem is not None:
                promo = None
            if problem in _CODE_GONE:  # it will never apply again: said once, forgotten
                await self.repo.set_member_promo(user_id, None)
        balance = 0
        if member.spend_next:
            balance = (await self.repo.balance(user_id, self._clock())).spendable
        price = price_checkout(list_stars, floor, promo, balance)
        if problem is not None:
            price = replace(price, refused_code=member.promo_code)
        return price, problem

    async def hold(self, order: Order, price: CheckoutPrice) -> bool:
        """Take the balance spent on ``order`` off the customer's balance (a ``spend``
        row; returned if the invoice expires or the order is refunded) and forget the
        promo code entered. ``False`` when the balance no longer covers it (nothing
        changed: the invoice must not be sent)."""
        if price.balance_stars and not await self.repo.hold_spend(
            order.id, order.user_id, price.balance_stars, self._clock()
        ):
            return False
        if price.promo_code:
            await self.repo.set_member_promo(order.user_id, None)
        if price.balance_stars:
            await self.repo.set_spend_next(order.user_id, False)
        return True

    async def pre_checkout(self, order: Order) -> str | None:
        """A discounted invoice's loyalty checks at pre-checkout (local reads only): the
        code is still usable (paused, expired or exhausted since the invoice: refused) and
        the balance spent on it is still held. ``None`` or the refusal's message key."""
        if order.promo_code:
            _, problem = await self.promo_problem(order.promo_code, order.user_id, invoiced=True)
            if problem is not None:
                return f"promo.refused.{problem.value}"
        promo_part = 0
        if order.promo_code:
            promo = await self.repo.promo(order.promo_code)
            promo_part = promo_discount(promo, order.list_stars) if promo else 0
        if order.discount_stars > promo_part and not await self.repo.spent_on(order.id):
            return "loyalty.refused.balance"
        return None

    # -- the worker ----------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the order log now (an order completed or was refunded, a payment came,
        a withdrawal was asked for)."""
        self._wake.set()

    async def run_worker(self) -> None:
        """Forever: :meth:`process_due`, then sleep until woken or something is due."""
        await run_due_loop(
            "loyalty worker", self.process_due, self._next_due, self._wake, self._clock,
            idle=self._idle, max_wait=self._idle, passes=self.passes,
        )  # fmt: skip

    async def _next_due(self) -> float | None:
        if await self.repo.open_parts(limit=1):  # the supplier is at it: ask again soon
            return self._clock() + self._recheck
        return await self.repo.next_available_ts(self._clock()) if self.config.auto_payout else None

    async def process_due(self) -> None:
        """One pass: accrue completed orders, reverse refunded ones, return balances spent
        on invoices that expired or were refunded, start automatic payouts, pay open
        payout packs and report finished payouts. One item's trouble never stops the rest."""
        for candidate in await self.repo.orders_to_accrue():
            try:
                await self._accrue(candidate.order_id, candidate)
            except Exception:
                logger.exception("loyalty: accrual of order %s failed", candidate.order_id)
        for order_id in await self.repo.orders_to_reverse():
            try:
                for user_id, stars in await self.repo.reverse(order_id, self._clock()):
                    logger.info("loyalty: %d Stars of user %s taken back (order %s)",
                                stars, user_id, order_id)  # fmt: skip
            except Exception:
                logger.exception("loyalty: reversal of order %s failed", order_id)
        for spend in await self.repo.spends_to_release():
            try:
                await self.repo.release_spend(spend, self._clock(), "invoice not paid or refunded")
            except Exception:
                logger.exception("loyalty: balance of order %s not returned", spend.order_id)
        if self.config.auto_payout:
            await self._auto_payouts()
        await self._pay_open_parts()
        await self._finish_payouts()
        await self._report_stuck()

    async def _report_stuck(self) -> None:
        cutoff = datetime.fromtimestamp(self._clock() - self._stuck_after, UTC)
        for payout in await self.repo.open_payouts():
            if payout.id in self._stuck_told or datetime.fromisoformat(payout.created_at) > cutoff:
                continue
            self._stuck_told.add(payout.id)
            logger.error("loyalty: payout %s open since %s", payout.id, payout.created_at)
            try:
                await self._notifier.payout_stuck(payout)
            except Exception:
                logger.exception("loyalty: admins not told about payout %s", payout.id)

    async def _accrue(self, order_id: int, candidate: AccrualCandidate) -> None:
        credits: list[tuple[int, str, int, str]] = []
        if candidate.stars >= self.config.min_order_stars:
            cashback = reward_share(candidate.stars, self.config.cashback_for(candidate.category))
            credits.append((candidate.user_id, "cashback", cashback,
                            f"cashback on order {order_id} ({candidate.stars} Stars paid)"))  # fmt: skip
            if candidate.referrer_id is not None:
                share = reward_share(candidate.stars, self.config.referral_percent)
                credits.append((candidate.referrer_id, "referral", share,
                                f"referral share of order {order_id} by user {candidate.user_id}"))  # fmt: skip
        written = await self.repo.accrue(
            order_id, credits, self._clock() + self.config.hold_seconds
        )
        if written:
            logger.info("loyalty: order %s accrued (%d entries)", order_id, written)

    async def _auto_payouts(self) -> None:
        packs = await self._sender.packs()
        if not packs:
            return
        for user_id in await self.repo.auto_payout_candidates(self._clock(), min(packs)):
            try:
                await self.request_payout(user_id, trigger="auto")
            except Exception:
                logger.exception("loyalty: automatic payout of user %s failed", user_id)

    async def request_payout(
        self, user_id: int, trigger: str = "withdraw"
    ) -> Payout | PayoutRefusal:
        """Withdraw the largest amount of the available balance that the Stars packs on
        sale make (at most 2,500 Stars a payout): the payout row, its packs and the debit
        in one transaction; the worker pays it. A refusal changes nothing."""
        if await self.repo.open_payout(user_id) is not None:
            return PayoutRefusal.OPEN
        packs = await self._sender.packs()
        if not packs:
            return PayoutRefusal.NO_PACKS
        balance = await self.repo.balance(user_id, self._clock())
        total, amounts = largest_payable(balance.spendable, sorted(packs))
        if total == 0:
            return PayoutRefusal.BELOW_MINIMUM
        parts = [(stars, packs[stars].supplier, packs[stars].offer_id) for stars in amounts]
        payout = await self.repo.create_payout(user_id, parts, trigger, self._prefix, self._clock())
        if payout is None:
            return PayoutRefusal.OPEN
        logger.info("loyalty: payout %s of %d Stars for user %s (%s)",
                    payout.id, total, user_id, trigger)  # fmt: skip
        self.wake()
        return payout

    async def _pay_open_parts(self) -> None:
        pacer = Pacer(self._rate)
        prices: dict[OfferRef, OfferDetails] = {}
        for part in await self.repo.open_parts():
            try:
                await self._pay(part, pacer, prices)
            except Exception:
                logger.exception("loyalty: payout pack %s failed unexpectedly; tried again",
                                 part.transaction_id)  # fmt: skip

    async def _pay(
        self, part: PayoutPart, pacer: Pacer, prices: dict[OfferRef, OfferDetails]
    ) -> None:
        payout = await self.repo.payout(part.payout_id)
        assert payout is not None
        ref = OfferRef(part.supplier, part.offer_id)
        order = PackOrder(ref, payout.user_id, part.transaction_id, part.status == "sending")
        now = self._clock
        try:
            result = await self._sender.send(
                order, lambda: self.repo.mark_part(part, "sending", now()), pacer, prices
            )
        except UnknownSupplier as exc:
            await self.repo.mark_part(part, "failed", now(), reason=str(exc))
            return
        except IN_FLIGHT_ERRORS as exc:
            await self.repo.mark_part(part, "sending", now(), reason=str(exc)[:300])
            return
        except SupplierAPIError as exc:  # refused: nothing was ordered
            await self.repo.mark_part(
                part, "failed", now(), reason=exc.supplier_message or str(exc)
            )
            return
        await self._apply(part, result, prices.get(ref))

    async def _apply(
        self, part: PayoutPart, result: SupplierOrder, details: OfferDetails | None
    ) -> None:
        status = pack_status(result)
        price = None
        if details is not None and status == "completed":
            try:
                cost = self._pricing.book.usd(details.price, details.currency)
                price = (details.price, details.currency, cost)
            except ValueError:
                logger.warning("loyalty: pack %s priced in %s has no USD rate",
                               part.transaction_id, details.currency)  # fmt: skip
        reason = None if status == "completed" else (result.message or result.status.value)
        await self.repo.mark_part(
            part, status, self._clock(), supplier_order_id=result.order_id, reason=reason,
            price=price,
        )  # fmt: skip
        if status == "failed":
            logger.warning("loyalty: payout pack %s not delivered (%s); Stars returned",
                           part.transaction_id, reason)  # fmt: skip

    async def _finish_payouts(self) -> None:
        for payout in await self.repo.settled_payouts():
            try:
                parts = await self.repo.payout_parts(payout.id)
                failed = [p for p in parts if p.status == "failed"]
                result = PayoutResult(
                    payout,
                    sum(p.stars for p in parts if p.status == "completed"),
                    sum(p.stars for p in failed),
                    failed[0].reason if failed else None,
                )
                await self._notifier.payout_finished(result)  # queued once (outbox)
                await self.repo.finish_payout(payout.id)
            except Exception:
                logger.exception("loyalty: payout %s not finished", payout.id)

    # -- admin ---------------------------------------------------------------------------

    async def create_promo(self, promo: PromoCode) -> bool:
        """Save a new code (``False``: the code exists). Raises ``ValueError`` for a code or
        a value out of range."""
        if not PROMO_CODE.match(promo.code):
            raise ValueError(f"bad promo code {promo.code!r}")
        if promo.kind == "percent" and not 1 <= promo.value <= 100:
            raise ValueError("percent off is 1 to 100")
        if promo.kind == "fixed" and not 1 <= promo.value <= 100_000:
            raise ValueError("Stars off are 1 to 100000")
        return await self.repo.create_promo(promo)

    async def promo_stats(self, code: str) -> PromoStats:
        """Uses, Stars discounted and revenue of ``code``."""
        return await self.repo.promo_stats(code)

    async def ledger_csv(self) -> bytes:
        """Every accrual, reversal, discount and payout, one row per ledger entry, with the
        supplier cost (USD) of each payout's delivered packs on its payout row
        (:func:`services.exports.csv_bytes`)."""
        costs = await self.repo.payout_costs()
        header = ("id", "at", "user_id", "kind", "stars", "order_id", "payout_id",
                  "payout_cost_usd", "detail")  # fmt: skip
        rows = [
            (e.id, e.at, e.user_id, e.kind, e.stars, e.order_id, e.payout_id,
             costs.get(e.payout_id) if e.kind == "payout" and e.payout_id else None, e.detail)
            for e in await self.repo.ledger()
        ]  # fmt: skip
        return csv_bytes(header, rows)
