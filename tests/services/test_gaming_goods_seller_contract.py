"""Contract: the Gaming Goods Seller API client against the sandbox over real HTTP on
127.0.0.1, every endpoint of gaming-goods-seller-api.txt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from sandboxes.gaming_goods import (
    FOREIGN_LISTING_ID,
    GIFT_CARD_PRODUCT_ID,
    OTHER_SELLER_KEY,
    GamingGoodsSandbox,
    create_sandbox,
)
from services.suppliers import errors
from services.suppliers.gaming_goods import VENDOR, GamingGoodsClient, SellerClient, Timeouts
from services.suppliers.marketplace import ListingNotFound, RuleViolation, WriteOutcomeUnknown
from services.suppliers.retry import RetryPolicy


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def gg() -> AsyncIterator[GamingGoodsSandbox]:
    sandbox = create_sandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make(sandbox: GamingGoodsSandbox, http: httpx.AsyncClient, key: str | None = None):
    return SellerClient(
        http, api_key=key or sandbox.config.seller_keys[0], base_url=sandbox.partner_url,
        timeouts=Timeouts(read=2.0, create_order=2.0),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=5.0),
        sleep=_no_sleep,
    )  # fmt: skip


@pytest.fixture
def seller(gg: GamingGoodsSandbox, http: httpx.AsyncClient) -> SellerClient:
    return make(gg, http)


async def auto_listing(seller: SellerClient, name: str = "Cyberpunk 2077 Steam Key", **kw):
    fields = {"price": Decimal("19.99"), "codes": ["AAAA-BBBB-CCCC", "DDDD-EEEE-FFFF"]} | kw
    return await seller.create_listing(name=name, delivery_type="AUTO", **fields)


async def test_the_vendor_builds_the_seller_client_from_the_sandbox_settings_sharing_the_budget(
    gg: GamingGoodsSandbox, http: httpx.AsyncClient
) -> None:
    section = VENDOR.settings(**gg.supplier_settings())
    buyer = VENDOR.build(section, http)
    market = VENDOR.marketplace(section, http, buyer)
    assert isinstance(market, SellerClient) and isinstance(buyer, GamingGoodsClient)
    assert market.limiter is buyer.limiter
    assert (await market.dashboard()).total_products == 0
    no_key = VENDOR.settings(**(gg.supplier_settings() | {"seller_api_key": None}))
    assert VENDOR.marketplace(no_key, http, None) is None


async def test_dashboard_counts_products_sales_and_rewards_in_cents(
    gg: GamingGoodsSandbox, seller: SellerClient
) -> None:
    made = await auto_listing(seller)
    await seller.create_listing(name="Manual Key", price=Decimal("5"), delivery_type="MANUAL")
    gg.seller.moderate(made.id, "approved")
    assert gg.seller.sell(made.id, 2) == 2
    board = await seller.dashboard()
    assert (board.total_products, board.active_products, board.total_sales) == (2, 2, 2)
    assert board.pending_rewards == 3998 and board.available_rewards == 0
    gg.seller.release_rewards()
    board = await seller.dashboard()
    assert (board.pending_rewards, board.available_rewards) == (0, 3998)


async def test_a_new_auto_listing_is_pending_then_approved_with_its_codes_in_stock(
    seller: SellerClient,
) -> None:
    made = await auto_listing(seller, price=Decimal("19.90"))
    assert made.moderation_status == "pending" and made.delivery_type == "AUTO"
    assert made.price == Decimal("19.90") and str(made.price) == "19.90"
    assert made.is_active is True and made.currency == "EUR"
    detail = await seller.listing(made.id)
    assert detail.moderation_status == "approved"
    assert (detail.stock_quantity, detail.stock_available) == (2, 2)
    assert str(detail.price) == "19.90"


async def test_moderation_can_stay_pending_and_can_reject(http: httpx.AsyncClient) -> None:
    sandbox = create_sandbox(moderation_seconds=3600)
    await sandbox.start()
    try:
        seller = make(sandbox, http)
        made = await auto_listing(seller)
        assert (await seller.listing(made.id)).moderation_status == "pending"
        assert (await seller.dashboard()).pending_products == 1
        sandbox.seller.moderate(made.id, "rejected")
        assert (await seller.listing(made.id)).moderation_status == "rejected"
    finally:
        await sandbox.stop()


async def test_a_listing_with_a_refused_word_is_rejected_by_moderation(
    seller: SellerClient,
) -> None:
    made = await auto_listing(seller, name="Counterfeit Windows Key")
    assert (await seller.listing(made.id)).moderation_status == "rejected"


async def test_a_manual_listing_takes_no_codes_and_refuses_an_upload(seller: SellerClient) -> None:
    made = await seller.create_listing(
        name="Coaching Session", price=Decimal("30.00"), delivery_type="MANUAL",
        description="By hand", category="Services", brand="Me",
    )  # fmt: skip
    assert made.delivery_type == "MANUAL"
    with pytest.raises(RuleViolation) as caught:
        await seller.upload_codes(made.id, ["CODE-1"])
    assert caught.value.http_status == 422 and caught.value.code == "BUSINESS_RULE_VIOLATION"
    with pytest.raises(errors.InvalidRequestBody):
        await seller.create_listing(
            name="Manual With Codes", price=Decimal("1"), delivery_type="MANUAL", codes=["X"]
        )


async def test_an_auto_listing_needs_codes(seller: SellerClient) -> None:
    with pytest.raises(errors.InvalidRequestBody) as caught:
        await seller.create_listing(name="No Codes", price=Decimal("1.00"), delivery_type="AUTO")
    assert caught.value.code == "VALIDATION_ERROR" and caught.value.http_status == 400


async def test_a_taken_title_is_refused_and_nothing_is_created(seller: SellerClient) -> None:
    await auto_listing(seller)
    with pytest.raises(RuleViolation):
        await auto_listing(seller, codes=["OTHER-1"])
    assert (await seller.listings()).total == 1


async def test_upload_codes_reports_uploaded_and_stock_and_refuses_duplicates_whole(
    seller: SellerClient,
) -> None:
    made = await auto_listing(seller)
    result = await seller.upload_codes(made.id, ["C-1", "C-2"])
    assert (result.uploaded, result.stock_available) == (2, 4)
    with pytest.raises(RuleViolation):
        await seller.upload_codes(made.id, ["C-3", "C-1"])
    assert (await seller.listing(made.id)).stock_available == 4


async def test_update_sends_a_renamed_listing_back_to_moderation_but_not_a_price_change(
    gg: GamingGoodsSandbox, http: httpx.AsyncClient
) -> None:
    gg.seller.moderation_seconds = 3600
    seller = make(gg, http)
    made = await auto_listing(seller)
    gg.seller.moderate(made.id, "approved")
    cheaper = await seller.update_listing(made.id, price=Decimal("17.99"))
    assert cheaper.moderation_status == "approved" and str(cheaper.price) == "17.99"
    renamed = await seller.update_listing(
        made.id, name="Cyberpunk 2077 Steam Key — RU", image_url="https://img.test/cp.webp"
    )
    assert renamed.moderation_status == "pending"
    assert renamed.title == "Cyberpunk 2077 Steam Key — RU"
    assert (await seller.listing(made.id)).moderation_status == "pending"


async def test_deactivate_then_re_enable_through_put(seller: SellerClient) -> None:
    made = await auto_listing(seller)
    off = await seller.deactivate(made.id)
    assert off.id == made.id and off.is_active is False
    assert (await seller.listing(made.id)).is_active is False
    on = await seller.update_listing(made.id, is_active=True)
    assert on.is_active is True and (await seller.listing(made.id)).is_active is True


async def test_listings_page_by_limit_and_offset(seller: SellerClient) -> None:
    for n in range(5):
        await auto_listing(seller, name=f"Key {n}", codes=[f"K-{n}"])
    first = await seller.listings(limit=2)
    assert [x.title for x in first.items] == ["Key 0", "Key 1"] and first.total == 5
    last = await seller.listings(limit=2, offset=4)
    assert [x.title for x in last.items] == ["Key 4"] and last.offset == 4
    assert all(x.created_at is not None and x.slug for x in first.items)


async def test_another_sellers_product_is_not_found(seller: SellerClient) -> None:
    for call in (
        seller.listing(FOREIGN_LISTING_ID),
        seller.update_listing(FOREIGN_LISTING_ID, price=Decimal("1.00")),
        seller.deactivate(FOREIGN_LISTING_ID),
        seller.upload_codes(FOREIGN_LISTING_ID, ["X-1"]),
    ):
        with pytest.raises(ListingNotFound) as caught:
            await call
        assert caught.value.http_status == 404 and caught.value.code == "NOT_FOUND"


async def test_a_bad_seller_key_is_unauthorized(
    gg: GamingGoodsSandbox, http: httpx.AsyncClient
) -> None:
    with pytest.raises(errors.InvalidToken) as caught:
        await make(gg, http, key="sk_wrong").dashboard()
    assert caught.value.code == "UNAUTHORIZED" and "sk_wrong" not in str(caught.value)
    with pytest.raises(errors.InvalidToken):
        await make(gg, http, key="sk_wrong").add_offers(GIFT_CARD_PRODUCT_ID, 100, ["Z"])


async def test_offers_add_list_reprice_and_delete_in_cents(
    gg: GamingGoodsSandbox, seller: SellerClient
) -> None:
    assert await seller.add_offers(GIFT_CARD_PRODUCT_ID, 1799, ["O-1", "O-2", "O-3"]) == 2 + 1
    assert await seller.add_offers(FOREIGN_LISTING_ID, 899, ["O-4"]) == 1
    gg.seller.sell(GIFT_CARD_PRODUCT_ID, 1)
    page = await seller.offers()
    rows = {(o.product_id, o.price_cents): (o.available, o.sold) for o in page.offers}
    assert rows == {(GIFT_CARD_PRODUCT_ID, 1799): (2, 1), (FOREIGN_LISTING_ID, 899): (1, 0)}
    assert page.total == 2 and page.page == 1
    assert await seller.update_offer_price(GIFT_CARD_PRODUCT_ID, 1799, 1699) == 2
    assert await seller.update_offer_price(GIFT_CARD_PRODUCT_ID, 1799, 1599) == 0
    rows = {
        (o.product_id, o.price_cents): (o.available, o.sold) for o in (await seller.offers()).offers
    }
    assert rows[(GIFT_CARD_PRODUCT_ID, 1699)] == (2, 0) and rows[(GIFT_CARD_PRODUCT_ID, 1799)] == (
        0,
        1,
    )
    assert await seller.delete_offers(GIFT_CARD_PRODUCT_ID) == 2
    rows = {
        (o.product_id, o.price_cents): (o.available, o.sold) for o in (await seller.offers()).offers
    }
    assert (GIFT_CARD_PRODUCT_ID, 1699) not in rows and rows[(GIFT_CARD_PRODUCT_ID, 1799)] == (0, 1)


async def test_offers_page_by_page_number(seller: SellerClient) -> None:
    for n in range(3):
        await seller.add_offers(GIFT_CARD_PRODUCT_ID, 1000 + n, [f"P-{n}"])
    second = await seller.offers(page=2, page_size=2)
    assert [o.price_cents for o in second.offers] == [1002] and second.total == 3


async def test_offers_on_an_unknown_product_or_with_a_held_code_are_refused(
    seller: SellerClient,
) -> None:
    with pytest.raises(ListingNotFound):
        await seller.add_offers("no-such-product", 100, ["Q-1"])
    await seller.add_offers(GIFT_CARD_PRODUCT_ID, 100, ["Q-1"])
    with pytest.raises(RuleViolation):
        await seller.add_offers(GIFT_CARD_PRODUCT_ID, 200, ["Q-1"])
    with pytest.raises(ListingNotFound):
        await seller.delete_offers("no-such-product")


async def test_one_sellers_offers_are_not_anothers(
    gg: GamingGoodsSandbox, http: httpx.AsyncClient, seller: SellerClient
) -> None:
    other = make(gg, http, key=OTHER_SELLER_KEY)
    await other.add_offers(GIFT_CARD_PRODUCT_ID, 500, ["R-1"])
    assert (await seller.offers()).total == 0
    assert await seller.delete_offers(GIFT_CARD_PRODUCT_ID) == 0
    assert (await other.offers()).offers[0].available == 1


async def test_reads_wait_out_a_429_and_a_503_then_succeed(
    gg: GamingGoodsSandbox, seller: SellerClient
) -> None:
    gg.faults.rate_limited = 1
    assert (await seller.dashboard()).total_products == 0
    gg.faults.unavailable = 1
    assert (await seller.listings()).total == 0


async def test_a_write_is_sent_again_after_a_429_but_not_after_a_503(
    gg: GamingGoodsSandbox, seller: SellerClient
) -> None:
    gg.faults.rate_limited = 1
    assert await seller.add_offers(GIFT_CARD_PRODUCT_ID, 700, ["S-1"]) == 1
    gg.faults.unavailable = 1
    with pytest.raises(WriteOutcomeUnknown):
        await seller.add_offers(GIFT_CARD_PRODUCT_ID, 700, ["S-2"])
    assert (await seller.offers()).offers[0].available == 1


async def test_the_sandbox_rate_limit_answers_429_with_retry_after(http: httpx.AsyncClient) -> None:
    sandbox = create_sandbox(rate_limit=2)
    await sandbox.start()
    try:
        seller = SellerClient(
            http, api_key=sandbox.config.seller_keys[0], base_url=sandbox.partner_url,
            retry=RetryPolicy(attempts=1), sleep=_no_sleep,
        )  # fmt: skip
        await seller.dashboard()
        await seller.dashboard()
        with pytest.raises(errors.RateLimited) as caught:
            await seller.dashboard()
        assert caught.value.retry_after is not None and caught.value.retry_after > 0
        assert seller.limiter.blocked_for > 0
    finally:
        await sandbox.stop()
