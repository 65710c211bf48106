"""Contract: the Gaming Goods client against its sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from sandboxes.gaming_goods import (
    FAILING_PRODUCT_ID,
    GIFT_CARD_PRODUCT_ID,
    SOLD_OUT_PRODUCT_ID,
    TWO_KEY_PRODUCT_ID,
    GamingGoodsSandbox,
    create_sandbox,
)
from services.suppliers import errors
from services.suppliers.base import Capability, Customer, OrderAttempt, Supplier
from services.suppliers.gaming_goods import (
    VENDOR,
    GamingGoodsClient,
    RateLimiter,
    RetryPolicy,
    Timeouts,
)
from services.suppliers.models import OrderStatus


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def gg_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
async def gg() -> AsyncIterator[GamingGoodsSandbox]:
    sandbox = create_sandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


def make(
    sandbox: GamingGoodsSandbox, http: httpx.AsyncClient, order_api: str = "partner", **over
) -> GamingGoodsClient:
    settings = sandbox.supplier_settings() | {"order_api": order_api} | over
    section = VENDOR.settings(**settings)
    return GamingGoodsClient(
        http, jwt=section.jwt, api_key=section.api_key, order_api=section.order_api,
        catalog_url=section.catalog_url, partner_url=section.partner_url,
        timeouts=Timeouts(read=2.0, create_order=0.5),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=65.0),
        sleep=_no_sleep,
    )  # fmt: skip


@pytest.fixture
def partner(gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient) -> GamingGoodsClient:
    return make(gg, gg_http, "partner")


@pytest.fixture
def catalog(gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient) -> GamingGoodsClient:
    return make(gg, gg_http, "catalog")


async def test_vendor_spec_builds_an_enabled_supplier_from_the_sandbox_settings(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient
) -> None:
    assert gg.vendor == VENDOR.name == "gaming_goods" and VENDOR.short == "gg"
    section = VENDOR.settings(**gg.supplier_settings())
    assert section.enabled()
    assert not VENDOR.settings(order_api="catalog", api_key="k").enabled()
    client = VENDOR.build(section, gg_http)
    assert isinstance(client, Supplier)
    assert client.capabilities == {Capability.CATALOGUE_SYNC}
    assert Capability.IDEMPOTENT_CREATE in make(gg, gg_http, "catalog").capabilities


async def test_catalog_reads_products_filters_slug_search_categories_brands(
    catalog: GamingGoodsClient,
) -> None:
    page = await catalog.list_products(page=1, page_size=10, category="Steam")
    assert page.page_size == 10 and page.products and page.total >= 2
    assert all(p.category == "Steam" for p in page.products)
    two_keys = await catalog.get_product(page.products[0].slug)
    assert (two_keys.id, two_keys.price) == (TWO_KEY_PRODUCT_ID, Decimal("19.99"))
    assert two_keys.meta and two_keys.description
    by_brand = await catalog.list_products(brand="Sony")
    assert {p.brand for p in by_brand.products} == {"Sony"}
    found = await catalog.search("steam wallet")
    assert [p.id for p in found.products] == [GIFT_CARD_PRODUCT_ID]
    assert found.products[0].price == Decimal("21.49")
    categories = {c.name: c.product_count for c in await catalog.categories()}
    brands = {b.name: b.product_count for b in await catalog.brands()}
    assert sum(categories.values()) == sum(brands.values()) == 60 and "Steam" in categories


async def test_unknown_slug_is_offer_not_found(catalog: GamingGoodsClient) -> None:
    with pytest.raises(errors.OfferNotFound) as raised:
        await catalog.get_product("no-such-product")
    assert raised.value.code == "product_not_found" and raised.value.http_status == 404


async def test_partner_reads_brands_categories_products_in_exact_euros(
    partner: GamingGoodsClient,
) -> None:
    brands = await partner.partner_brands(limit=3)
    assert len(brands.items) == 3 and brands.total > 3
    kinds = await partner.partner_brand_categories("Steam")
    assert kinds.brand == "Steam" and kinds.categories[0].category == "Gift Card"
    gift = await partner.partner_product(GIFT_CARD_PRODUCT_ID)
    assert (gift.price, gift.price_euros, gift.currency) == (2149, Decimal("21.49"), "EUR")
    assert gift.images and gift.specifications
    cards = await partner.partner_products(category="Gift Card", limit=100)
    assert GIFT_CARD_PRODUCT_ID in {p.id for p in cards.items}
    with pytest.raises(errors.OfferNotFound):
        await partner.partner_product("00000000-0000-0000-0000-000000000000")
    with pytest.raises(errors.SupplierAPIError) as raised:
        await partner.partner_brand_categories("Nobody")
    assert raised.value.http_status == 404


@pytest.mark.parametrize("order_api", ["partner", "catalog"])
async def test_a_big_catalogue_syncs_completely_with_images_and_page_size_capped(
    gg_http: httpx.AsyncClient, order_api: str
) -> None:
    big = create_sandbox(offers=1234)
    await big.start()
    try:
        client = make(big, gg_http, order_api)
        rows = [row async for row in client.iter_catalogue(page_size=1000)]
        assert len({r.offer_group_id for r in rows}) == 1234
        assert all(len(r.offer_group_id) == 36 and r.image_url for r in rows)
        sold_out = next(r for r in rows if r.offer_group_id == SOLD_OUT_PRODUCT_ID)
        assert not sold_out.in_stock
    finally:
        await big.stop()


@pytest.mark.parametrize("order_api", ["partner", "catalog"])
async def test_an_order_of_the_two_key_product_delivers_both_codes(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient, order_api: str
) -> None:
    client = make(gg, gg_http, order_api)
    offer = await client.find_offer(TWO_KEY_PRODUCT_ID)
    assert offer.price == Decimal("19.99") and offer.image_url
    placed = await client.create_order(TWO_KEY_PRODUCT_ID, offer.price, "t-two", Customer())
    assert placed.status is OrderStatus.SUBMITTED and placed.price == Decimal("19.99")
    done = await client.get_order(order_id=placed.order_id)
    assert done.status is OrderStatus.COMPLETED and len(done.all_keys) == 2
    assert len(set(done.all_keys)) == 2
    assert (await client.get_order(transaction_id="t-two")).all_keys == done.all_keys


async def test_a_gift_card_delivers_one_code(partner: GamingGoodsClient) -> None:
    placed = await partner.create_order(
        GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-gift", Customer()
    )
    assert len((await partner.get_order(order_id=placed.order_id)).all_keys) == 1


async def test_order_not_yet_fulfilled_has_no_codes_then_completes(
    gg_http: httpx.AsyncClient,
) -> None:
    now = [1000.0]
    slow = create_sandbox(fulfil_seconds=5, clock=lambda: now[0])
    await slow.start()
    try:
        for api in ("partner", "catalog"):
            client = make(slow, gg_http, api)
            placed = await client.create_order(
                GIFT_CARD_PRODUCT_ID, Decimal("21.49"), f"t-slow-{api}", Customer()
            )
            pending = await client.get_order(order_id=placed.order_id)
            assert pending.status is OrderStatus.SUBMITTED and pending.all_keys == []
        now[0] += 60  # also a new rate-limit window
        assert (await client.get_order(order_id=placed.order_id)).status is OrderStatus.COMPLETED
    finally:
        await slow.stop()


async def test_a_canceled_order_is_a_failure_and_refunded(
    gg: GamingGoodsSandbox, partner: GamingGoodsClient
) -> None:
    placed = await partner.create_order(FAILING_PRODUCT_ID, Decimal("12.99"), "t-f", Customer())
    order = await partner.get_order(order_id=placed.order_id)
    assert order.status is OrderStatus.CANCELED and order.status.is_failure
    assert gg.balance_cents == 50_000


async def test_price_rise_and_sold_out_are_refused_before_ordering(
    gg: GamingGoodsSandbox, partner: GamingGoodsClient
) -> None:
    gg.set_price(GIFT_CARD_PRODUCT_ID, 2200)
    with pytest.raises(errors.WrongPrice):
        await partner.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-wp", Customer())
    with pytest.raises(errors.OutOfStock):
        await partner.create_order(SOLD_OUT_PRODUCT_ID, Decimal("29.99"), "t-oos", Customer())
    assert gg.create_calls == 0
    cheaper = await partner.create_order(GIFT_CARD_PRODUCT_ID, Decimal("23"), "t-ok", Customer())
    assert cheaper.price == Decimal("22.00")


async def test_errors_from_the_vendor_on_order_endpoints(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient, partner: GamingGoodsClient
) -> None:
    with pytest.raises(errors.OrderNotFound) as missing:
        await partner.get_order(order_id="00000000-0000-0000-0000-000000000000")
    assert missing.value.code == "order_not_found"
    with pytest.raises(errors.OrderNotFound):
        await make(gg, gg_http, "catalog").get_order(order_id="nope")
    gg.balance_cents = 100
    with pytest.raises(errors.InsufficientBalance):
        await partner.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-poor", Customer())
    gg.balance_cents = 50_000
    gg.set_stock(GIFT_CARD_PRODUCT_ID, 0)
    gg.products[GIFT_CARD_PRODUCT_ID].quantity = 0
    with pytest.raises(errors.OutOfStock):
        await partner._checkout(GIFT_CARD_PRODUCT_ID, "t-raw-oos")


async def test_bad_credentials_are_invalid_token_without_leaking_them(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient
) -> None:
    bad_key = make(gg, gg_http, "partner", api_key="pk_wrong")
    with pytest.raises(errors.InvalidToken) as raised:
        await bad_key.partner_brands()
    assert raised.value.http_status == 401 and "pk_wrong" not in str(raised.value)
    bad_jwt = make(gg, gg_http, "catalog", jwt="wrong.jwt")
    assert (await bad_jwt.list_products(page_size=1)).products  # public: no token needed
    with pytest.raises(errors.InvalidToken):
        await bad_jwt.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-jwt", Customer())


async def test_page_size_over_100_is_refused_by_the_sandbox(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient
) -> None:
    raw = await gg_http.get(f"{gg.catalog_url}/products", params={"page_size": 101})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_request"
    raw = await gg_http.get(
        f"{gg.partner_url}/products",
        params={"limit": 101},
        headers={"X-API-Key": "pk_test_sandbox"},
    )
    assert raw.status_code == 400


async def test_idempotency_key_replays_the_first_order_after_a_lost_answer(
    gg: GamingGoodsSandbox, catalog: GamingGoodsClient
) -> None:
    gg.faults.drop_create_answers = 1
    with pytest.raises(errors.OrderOutcomeUnknown):
        await catalog.create_order(TWO_KEY_PRODUCT_ID, Decimal("19.99"), "t-lost", Customer())
    assert len(gg.orders) == 1
    with pytest.raises(errors.OrderOutcomeUnknown):
        await catalog.get_order(transaction_id="t-lost")  # no lookup by key: cannot tell
    resolved = await catalog.resolve_order(
        TWO_KEY_PRODUCT_ID, Decimal("19.99"), "t-lost", Customer()
    )
    assert len(gg.orders) == 1 and resolved.order_id == next(iter(gg.orders))
    assert len((await catalog.get_order(transaction_id="t-lost")).all_keys) == 2


async def test_the_same_idempotency_key_with_another_body_is_a_duplicate(
    gg: GamingGoodsSandbox, catalog: GamingGoodsClient
) -> None:
    await catalog.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-k", Customer())
    with pytest.raises(errors.TransactionDuplicate) as raised:
        await catalog._place_catalog_order(TWO_KEY_PRODUCT_ID, "t-k")
    assert raised.value.code == "idempotency_key_reused" and len(gg.orders) == 1


@pytest.mark.parametrize("fault", ["drop_create_answers", "create_unavailable_after_making"])
async def test_partner_checkout_lost_answer_is_found_in_the_order_list(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient, fault: str
) -> None:
    client = make(gg, gg_http, "partner")
    await client.create_order(TWO_KEY_PRODUCT_ID, Decimal("19.99"), "t-other", Customer())
    attempt = OrderAttempt(TWO_KEY_PRODUCT_ID, Decimal("19.99"), "EUR", datetime.now(UTC))
    setattr(gg.faults, fault, 1)
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(TWO_KEY_PRODUCT_ID, Decimal("19.99"), "t-cut", Customer())
    fresh = make(gg, gg_http, "partner")  # e.g. after a restart: knows only the attempt
    found = await fresh.get_order(transaction_id="t-cut", attempt=attempt)
    assert found.status is OrderStatus.COMPLETED and len(found.all_keys) == 2
    assert gg.create_calls == 2 and len(gg.orders) == 2
    # the other order of the same product at the same price is not claimed twice
    assert (
        found.order_id
        != (await fresh.get_order(transaction_id="t-other", attempt=attempt)).order_id
    )


async def test_partner_checkout_refused_before_making_is_proven_absent(
    gg: GamingGoodsSandbox, partner: GamingGoodsClient
) -> None:
    gg.faults.create_unavailable = 1
    with pytest.raises(errors.OrderOutcomeUnknown):
        await partner.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-503", Customer())
    with pytest.raises(errors.OrderNotFound):
        await partner.get_order(transaction_id="t-503")
    with pytest.raises(errors.OrderNotFound):
        await partner.resolve_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-503", Customer())
    assert gg.orders == {}


async def test_checkout_timeout_is_unknown_and_never_repeated(
    gg: GamingGoodsSandbox, partner: GamingGoodsClient
) -> None:
    gg.faults.create_latency = 1.5
    with pytest.raises(errors.OrderOutcomeUnknown):
        await partner.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-slow", Customer())
    assert gg.create_calls == 1


async def test_rate_limit_429_and_headers_are_honoured(gg_http: httpx.AsyncClient) -> None:
    skipped = [0.0]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:  # the sandbox's minute passes while we wait
        waited.append(seconds)
        skipped[0] += seconds

    tight = create_sandbox(rate_limit=3, clock=lambda: time.time() + skipped[0])
    await tight.start()
    try:
        raw = await gg_http.get(f"{tight.catalog_url}/brands")
        assert (
            raw.headers["X-RateLimit-Limit"] == "3" and raw.headers["X-RateLimit-Remaining"] == "2"
        )
        await gg_http.get(f"{tight.catalog_url}/brands")
        await gg_http.get(f"{tight.catalog_url}/brands")
        raw = await gg_http.get(f"{tight.catalog_url}/brands")
        assert raw.status_code == 429 and raw.json()["error"]["code"] == "rate_limit_exceeded"
        assert (
            1 <= int(raw.headers["Retry-After"]) <= 60
            and raw.headers["X-RateLimit-Remaining"] == "0"
        )

        client = make(tight, gg_http, "partner")
        client._sleep = sleep
        client.limiter = RateLimiter(
            sleep=sleep,
            clock=lambda: time.monotonic() + skipped[0],
            wall_clock=lambda: time.time() + skipped[0],
        )
        assert (await client.partner_brands(limit=1)).items  # 429, waits Retry-After, retries
        assert len(waited) == 1 and 1 <= waited[0] <= 60
        await client.partner_brands(limit=1)
        await client.partner_brands(limit=1)  # Remaining is now 0
        assert len(waited) == 1
        await client.partner_brands(limit=1)  # waits for X-RateLimit-Reset, never gets a 429
        assert len(waited) == 2 and 55 <= waited[1] <= 61
    finally:
        await tight.stop()


async def test_injected_429_and_5xx_on_reads_are_retried(
    gg: GamingGoodsSandbox, partner: GamingGoodsClient
) -> None:
    gg.faults.rate_limited = 1
    gg.faults.unavailable = 1
    assert (await partner.partner_brands()).items
    gg.faults.unavailable = 5
    with pytest.raises(errors.RetryLaterError) as raised:
        await partner.partner_brands()
    assert raised.value.code == "service_unavailable"
    gg.faults.create_rate_limited = 1
    with pytest.raises(errors.RateLimited):
        await partner.create_order(GIFT_CARD_PRODUCT_ID, Decimal("21.49"), "t-429", Customer())
    assert gg.orders == {}


async def test_read_timeout_is_supplier_timeout(
    gg: GamingGoodsSandbox, gg_http: httpx.AsyncClient
) -> None:
    client = make(gg, gg_http, "partner")
    client._timeouts = Timeouts(read=0.2, create_order=0.2)
    gg.faults.latency = 0.5
    with pytest.raises(errors.SupplierTimeout):
        await client.partner_brands()
