"""Loyalty rules on a real database: pricing arithmetic, promo code specs, accruals and
reversals once, debt after a payout, holding periods, balances held for invoices."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.loyalty import (
    CheckoutPrice,
    LoyaltyConfig,
    LoyaltyService,
    PayoutResult,
    PromoSpecError,
    cost_floor_stars,
    parse_promo_spec,
    price_checkout,
    price_still_fits,
)
from services.pricing import PriceBook, PricingService
from services.stars import largest_payable
from services.suppliers.errors import OrderOutcomeUnknown
from services.suppliers.models import OfferDetails
from services.suppliers.registry import Suppliers
from storage.catalogue import CatalogueRepository
from storage.db import Database
from storage.loyalty import LoyaltyRepository, Payout, PromoCode
from storage.orders import IncomingCharge, NewOrder, OrdersRepository, OrderStatus
from storage.settings import ShopSettingsRepository
from storage.users import UsersRepository

BOOK = PriceBook({"USD": Decimal(1)}, Decimal("0.15"), Decimal("0.013"))


def test_a_discount_never_takes_the_price_under_the_supplier_cost() -> None:
    floor = cost_floor_stars(BOOK, Decimal("5.15"), "USD")  # 396.15... -> 397 Stars
    assert floor == 397
    percent = PromoCode("SAVE10", "percent", 10)
    assert price_checkout(456, floor, percent) == CheckoutPrice(456, "SAVE10", 45, 0)
    big = PromoCode("HALF", "percent", 50)
    assert price_checkout(456, floor, big).pay_stars == floor  # clamped at cost
    fixed = PromoCode("TWENTY", "fixed", 20)
    priced = price_checkout(456, floor, fixed, balance=100)
    assert (priced.promo_stars, priced.balance_stars, priced.pay_stars) == (20, 39, 397)
    assert price_checkout(456, floor, None, balance=10).pay_stars == 446
    assert price_checkout(456, floor, None, balance=-5).pay_stars == 456  # debt spends nothing


def test_a_stars_pack_is_never_discounted_below_what_it_delivers() -> None:
    assert cost_floor_stars(BOOK, Decimal("0.10"), "USD", delivers_stars=50) == 50
    assert price_checkout(60, 50, PromoCode("ALL", "percent", 100)).pay_stars == 50


def test_pre_checkout_compares_the_fresh_price_with_paid_plus_discount() -> None:
    cost = Decimal("5.15")
    assert price_still_fits(411, 45, 456, BOOK, cost, "USD")
    assert not price_still_fits(411, 45, 457, BOOK, cost, "USD")  # retail rose
    # retail unchanged, but the supplier cost rose above what is paid: refused
    assert not price_still_fits(411, 45, 456, BOOK, Decimal("5.40"), "USD")
    assert price_still_fits(456, 0, 456, BOOK, Decimal("5.40"), "USD")  # no discount: as before


def test_promo_specs_are_parsed_or_refused_with_the_part_at_fault() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    promo = parse_promo_spec(
        'save10 10% min=100 uses=5 per_user=1 days=7 category="Gift cards"', 7, now
    )
    assert promo.code == "SAVE10" and promo.kind == "percent" and promo.value == 10
    assert (promo.min_order_stars, promo.max_uses, promo.max_uses_per_user) == (100, 5, 1)
    assert (promo.scope_kind, promo.scope_value) == ("category", "Gift cards")
    assert promo.expires_at == "2026-12-08T00:00:00+00:00" and promo.created_by == 7
    assert parse_promo_spec("BONUS 20 product=gamesdrop:1001", 7).scope_value == "gamesdrop:1001"
    for spec, problem in (
        ("", "format"), ("ONLYCODE", "format"), ("a 10%", "code"), ("SAVE 0%", "value"),
        ("SAVE 101%", "value"), ("SAVE ²", "value"), ("SAVE 10 uses=0", "option"),
        ("SAVE 10 colour=red", "option"), ("SAVE 10 uses=1 uses=2", "option"),
        ("SAVE 10 product=1001", "option"), ('SAVE 10 category="open', "format"),
    ):  # fmt: skip
        with pytest.raises(PromoSpecError) as caught:
            parse_promo_spec(spec, 7)
        assert caught.value.problem == problem, spec


def test_payouts_take_the_largest_amount_the_packs_make() -> None:
    assert largest_payable(178, [50, 100, 500, 1000]) == (150, [100, 50])
    assert largest_payable(49, [50, 100]) == (0, [])
    assert largest_payable(9999, [50, 100, 500, 1000])[0] == 2500  # one payout's limit


class _Told:
    def __init__(self) -> None:
        self.results: list[PayoutResult] = []
        self.stuck: list[int] = []

    async def payout_finished(self, result: PayoutResult) -> None:
        self.results.append(result)

    async def payout_stuck(self, payout: Payout) -> None:
        self.stuck.append(payout.id)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _service(
    db: Database, clock: _Clock, suppliers: Suppliers | None = None, **config: object
) -> LoyaltyService:
    pricing = PricingService(BOOK, ShopSettingsRepository(db))
    return LoyaltyService(
        LoyaltyRepository(db), CatalogueRepository(db), suppliers or Suppliers([]), pricing,
        _Told(), LoyaltyConfig(**config), clock=clock,  # type: ignore[arg-type]
    )  # fmt: skip


async def _completed_order(db: Database, user_id: int, stars: int) -> int:
    repo = OrdersRepository(db)
    await UsersRepository(db).touch(user_id, None, "U", "en")
    order = await repo.create(
        NewOrder(user_id=user_id, chat_id=user_id, supplier="gamesdrop", offer_id="999",
                 product_id="999", product_name="Steam", offer_name="Key", returns_key=True,
                 supplier_price=Decimal("1"), supplier_currency="USD", cost_usd=Decimal("1"),
                 stars=stars)
    )  # fmt: skip
    await repo.record_payment(
        IncomingCharge(f"ch-{order.id}", user_id, stars, "XTR", f"order:{order.id}", order.id), 0.0
    )
    await repo.transition(order.id, OrderStatus.COMPLETED, "delivered")
    return order.id


async def test_accruals_and_reversals_happen_once_and_a_reversal_after_a_payout_is_debt(
    db: Database,
) -> None:
    clock = _Clock()
    loyalty = await _service(db, clock, cashback_percent=Decimal(10))
    order_id = await _completed_order(db, 1, 500)
    await loyalty.process_due()
    await loyalty.process_due()
    assert (await loyalty.repo.balance(1, clock.now)).available == 50
    # the customer withdrew 50 (the debit a payout writes), then the order is refunded
    async with db.transaction() as conn:
        await conn.execute(
            """INSERT INTO loyalty_ledger (dedup_key, user_id, kind, stars, available_at_ts,
                   detail, at) VALUES ('payout:1', 1, 'payout', -50, 0, 'test', 'now')"""
        )
    orders = OrdersRepository(db)
    await orders.fail_and_queue_refund(order_id, "refund", "ADMIN_REFUND", 0.0)
    await loyalty.process_due()
    await loyalty.process_due()

    balance = await loyalty.repo.balance(1, clock.now)
    assert (balance.spendable, balance.debt) == (0, 50)
    kinds = [e.kind for e in await loyalty.repo.ledger(1)]
    assert kinds == ["cashback", "payout", "reversal"]
    await _completed_order(db, 1, 800)  # the next accrual pays the debt first
    await loyalty.process_due()
    balance = await loyalty.repo.balance(1, clock.now)
    assert (balance.spendable, balance.debt) == (30, 0)


async def test_rewards_wait_for_the_holding_period_and_small_orders_earn_nothing(
    db: Database,
) -> None:
    clock = _Clock()
    loyalty = await _service(
        db, clock, cashback_percent=Decimal(10), hold_seconds=3600.0, min_order_stars=100
    )
    await _completed_order(db, 2, 99)
    await _completed_order(db, 2, 300)
    await loyalty.process_due()
    held = await loyalty.repo.balance(2, clock.now)
    assert (held.available, held.held) == (0, 30)
    assert await loyalty.repo.next_available_ts(clock.now) == clock.now + 3600
    clock.now += 3600
    assert (await loyalty.repo.balance(2, clock.now)).available == 30


async def test_a_balance_held_for_an_invoice_comes_back_when_it_expires(db: Database) -> None:
    clock = _Clock()
    loyalty = await _service(db, clock, cashback_percent=Decimal(10))
    await _completed_order(db, 3, 500)
    await loyalty.process_due()
    orders = OrdersRepository(db)
    invoice = await orders.create(
        NewOrder(user_id=3, chat_id=3, supplier="gamesdrop", offer_id="999", product_id="999",
                 product_name="Steam", offer_name="Key", returns_key=True,
                 supplier_price=Decimal("1"), supplier_currency="USD", cost_usd=Decimal("1"),
                 stars=450, discount_stars=50)
    )  # fmt: skip
    assert await loyalty.hold(invoice, CheckoutPrice(500, None, 0, 50))
    assert (await loyalty.repo.balance(3, clock.now)).available == 0
    assert not await loyalty.repo.hold_spend(999, 3, 1, clock.now)  # nothing left to hold
    assert await loyalty.pre_checkout(invoice) is None

    await orders.expire_unpaid("9999")
    await loyalty.process_due()
    await loyalty.process_due()

    assert (await loyalty.repo.balance(3, clock.now)).available == 50
    assert [e.kind for e in await loyalty.repo.ledger(3)] == ["cashback", "spend", "spend_release"]


async def test_referrals_are_refused_for_oneself_loops_and_customers_who_bought(
    db: Database,
) -> None:
    loyalty = await _service(db, _Clock())
    a, b, c = [await loyalty.member(user) for user in (11, 12, 13)]
    assert (await loyalty.bind_referral(11, a.code)).value == "self"
    assert (await loyalty.bind_referral(12, a.code.upper())).value == "bound"
    assert (await loyalty.bind_referral(13, b.code)).value == "bound"
    assert (await loyalty.bind_referral(11, c.code)).value == "loop"  # 11 -> 12 -> 13 -> 11
    assert (await loyalty.bind_referral(12, c.code)).value == "already"
    await _completed_order(db, 14, 100)
    assert (await loyalty.bind_referral(14, a.code)).value == "not_new"
    assert (await loyalty.bind_referral(15, "nosuch")).value == "unknown_code"
    assert (await loyalty.bind_referral(15, "../../etc")).value == "unknown_code"


async def test_expired_and_too_small_orders_are_refused_a_code(db: Database) -> None:
    loyalty = await _service(db, _Clock())
    assert await loyalty.create_promo(
        PromoCode("OLD", "fixed", 5, expires_at="2020-01-01T00:00:00+00:00")
    )
    assert await loyalty.create_promo(PromoCode("BIG", "percent", 5, min_order_stars=1000))
    assert not await loyalty.create_promo(PromoCode("BIG", "percent", 7))  # exists
    with pytest.raises(ValueError):
        await loyalty.create_promo(PromoCode("PCT", "percent", 101))
    assert (await loyalty.promo_problem("old", 1))[1].value == "expired"  # type: ignore[union-attr]
    assert (await loyalty.promo_problem("BIG", 1, 999))[1].value == "min_order"  # type: ignore[union-attr]
    assert (await loyalty.promo_problem("BIG", 1, 1000))[1] is None
    _promo, problem = await loyalty.enter_promo(1, "old")
    assert problem is not None and (await loyalty.member(1)).promo_code is None


async def test_cashback_follows_the_category_of_the_offer(db: Database) -> None:
    clock = _Clock()
    loyalty = await _service(
        db, clock, cashback_percent=Decimal(10), category_cashback={"Telegram Stars": Decimal(0)}
    )
    await db.execute(
        """INSERT INTO offers (supplier, offer_id, product_id, product_name, offer_name, category,
               price, currency, in_stock, needs_player, needs_server, stars_amount, synced_at)
           VALUES ('gamesdrop', '999', '999', 'Stars', '50 Stars', 'Telegram Stars', '1', 'USD',
                   1, 1, 0, 50, 'now')"""
    )
    await _completed_order(db, 21, 500)
    await loyalty.process_due()
    assert await loyalty.repo.ledger(21) == []  # 0 % on Stars packs: nothing written
    assert (await loyalty.repo.balance(21, clock.now)).available == 0


class _SilentSupplier:
    """A supplier whose create-order and order-status never answer (outcome unknown)."""

    name, short, capabilities = "gamesdrop", "g", frozenset()

    def __init__(self) -> None:
        self.creates: list[str] = []
        self.resolves: list[str] = []

    async def find_offer(self, offer_id: str) -> OfferDetails:
        return OfferDetails(offer_id=offer_id, product_name="Telegram Stars",
                            offer_name="50 Stars", price=Decimal("0.20"), currency="USD")  # fmt: skip

    async def create_order(self, offer_id, price, transaction_id, customer):  # type: ignore[no-untyped-def]
        self.creates.append(transaction_id)
        raise OrderOutcomeUnknown(transaction_id, "read timeout")

    async def resolve_order(self, offer_id, price, transaction_id, customer):  # type: ignore[no-untyped-def]
        self.resolves.append(transaction_id)
        raise OrderOutcomeUnknown(transaction_id, "read timeout")


async def test_a_payout_whose_outcome_stays_unknown_is_never_ordered_again_and_is_reported(
    db: Database,
) -> None:
    clock = _Clock()
    clock.now = time.time()
    supplier = _SilentSupplier()
    loyalty = await _service(db, clock, Suppliers([supplier]))  # type: ignore[list-item]
    async with db.transaction() as conn:
        await conn.execute(
            """INSERT INTO loyalty_ledger (dedup_key, user_id, kind, stars, available_at_ts,
                   detail, at) VALUES ('accrual:1:5', 5, 'cashback', 60, 0, 'test', 'now')"""
        )
    payout = await loyalty.repo.create_payout(
        5, [(50, "gamesdrop", "2001")], "withdraw", "shop", clock.now
    )
    assert payout is not None

    for _ in range(3):
        await loyalty.process_due()
    clock.now += 90 * 60 + 1
    await loyalty.process_due()
    await loyalty.process_due()

    assert supplier.creates == ["shop-y1-p0"]  # once; then only asked by the same id
    assert supplier.resolves == ["shop-y1-p0"] * 4
    [part] = await loyalty.repo.payout_parts(payout.id)
    assert part.status == "sending"
    assert loyalty._notifier.stuck == [payout.id]  # type: ignore[attr-defined]
    assert (await loyalty.repo.balance(5, clock.now)).available == 10  # not returned: unknown
