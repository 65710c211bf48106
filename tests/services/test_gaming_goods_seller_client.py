"""Gaming Goods Seller API client over httpx.MockTransport: exact money both ways, error
codes, a bad key, a refused listing, 429 Retry-After, lost write answers, cents checks."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from services.suppliers import errors
from services.suppliers.gaming_goods import SellerClient, Timeouts
from services.suppliers.marketplace import ListingNotFound, RuleViolation, WriteOutcomeUnknown
from services.suppliers.retry import RetryPolicy

PID = "a1b2c3d4-0000-4000-8000-000000000001"


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(
        status, text=text, headers={"content-type": "application/json"} | (headers or {})
    )


def error(status: int, code: str, message: str = "no") -> httpx.Response:
    return answer(status, {"error": {"code": code, "message": message}})


def make(handler, sleeps: list[float] | None = None) -> tuple[SellerClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    client = SellerClient(
        httpx.AsyncClient(transport=httpx.MockTransport(record)), api_key="sk-secret",
        base_url="https://gg.test/api/partner/v1/", timeouts=Timeouts(read=1, create_order=2),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01, max_retry_after=30.0),
        sleep=sleep,
    )  # fmt: skip
    return client, seen


async def test_every_request_carries_the_key_and_goes_to_the_seller_paths() -> None:
    client, seen = make(lambda r: answer(200, {"deleted": 3}))
    assert await client.delete_offers("id/with slash") == 3
    request = seen[0]
    assert request.method == "DELETE" and request.headers["X-API-Key"] == "sk-secret"
    assert request.url.raw_path == b"/api/partner/v1/seller/offers/id%2Fwith%20slash"
    assert "sk-secret" not in repr(client)


async def test_a_listing_price_is_sent_and_read_back_with_the_same_digits() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return answer(201, '{"product": {"id": "p1", "title": "T", "price": 19.90, '
                           '"currency": "EUR", "delivery_type": "AUTO", '
                           '"moderation_status": "pending", "is_active": true}}')  # fmt: skip

    client, _ = make(handler)
    made = await client.create_listing(
        name="T", price=Decimal("19.90"), delivery_type="AUTO", codes=["A-1"]
    )
    assert b'"price":19.90' in bodies[0] and b'"codes":["A-1"]' in bodies[0]
    assert b'"delivery_type":"AUTO"' in bodies[0] and b'"currency":"EUR"' in bodies[0]
    assert str(made.price) == "19.90" and made.moderation_status == "pending"


@pytest.mark.parametrize(
    ("price", "raised"),
    [(19.99, TypeError), (1999, TypeError), ("19.99", TypeError), (Decimal("0"), ValueError),
     (Decimal("-1.00"), ValueError), (Decimal("1.999"), ValueError), (Decimal("NaN"), ValueError)],
)  # fmt: skip
async def test_a_listing_price_that_is_not_positive_whole_cents_is_never_sent(
    price: object, raised: type[Exception]
) -> None:
    client, seen = make(lambda r: answer(200, {}))
    with pytest.raises(raised):
        await client.create_listing(name="T", price=price, delivery_type="MANUAL")  # type: ignore[arg-type]
    with pytest.raises(raised):
        await client.update_listing(PID, price=price)  # type: ignore[arg-type]
    assert seen == []


@pytest.mark.parametrize(
    ("cents", "raised"),
    [(17.99, TypeError), (Decimal("1799"), TypeError), (True, TypeError), ("1799", TypeError),
     (0, ValueError), (-5, ValueError)],
)  # fmt: skip
async def test_offer_prices_must_be_positive_int_cents_before_anything_is_sent(
    cents: object, raised: type[Exception]
) -> None:
    client, seen = make(lambda r: answer(200, {"added": 1, "updated": 1}))
    with pytest.raises(raised):
        await client.add_offers(PID, cents, ["A"])  # type: ignore[arg-type]
    with pytest.raises(raised):
        await client.update_offer_price(PID, 1799, cents)  # type: ignore[arg-type]
    with pytest.raises(raised):
        await client.update_offer_price(PID, cents, 1799)  # type: ignore[arg-type]
    assert seen == []


async def test_offer_prices_go_as_integers_and_come_back_as_integers() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if request.method == "GET":
            return answer(200, {"offers": [{"product_id": PID, "price_cents": 1799,
                                            "available": 12, "sold": 4}],
                                "total": 18, "page": 1, "page_size": 20})  # fmt: skip
        return answer(200, {"updated": 12})

    client, seen = make(handler)
    assert await client.update_offer_price(PID, 1799, 1699) == 12
    assert json.loads(bodies[0]) == {"old_price_cents": 1799, "new_price_cents": 1699}
    assert seen[0].method == "PATCH" and seen[0].url.path.endswith(f"/seller/offers/{PID}/price")
    page = await client.offers(page=2, page_size=500)
    assert seen[1].url.params["page_size"] == "100" and seen[1].url.params["page"] == "2"
    assert page.offers[0].price_cents == 1799 and page.total == 18


@pytest.mark.parametrize("bad", ["17.99", '"1799"', "true"])
async def test_an_offer_price_that_is_not_whole_cents_is_refused_on_reading(bad: str) -> None:
    body = f'{{"offers": [{{"product_id": "{PID}", "price_cents": {bad}}}], "total": 1}}'
    client, _ = make(lambda r: answer(200, body))
    with pytest.raises(errors.UnknownSupplierError):
        await client.offers()


async def test_a_bad_key_raises_invalid_token_at_once_without_the_key() -> None:
    client, seen = make(lambda r: error(401, "UNAUTHORIZED", "missing or invalid X-API-Key"))
    with pytest.raises(errors.InvalidToken) as caught:
        await client.dashboard()
    assert len(seen) == 1 and caught.value.http_status == 401
    assert "sk-secret" not in str(caught.value) and "sk-secret" not in caught.value.raw_body


@pytest.mark.parametrize(
    ("status", "code", "raised"),
    [(400, "VALIDATION_ERROR", errors.InvalidRequestBody), (404, "NOT_FOUND", ListingNotFound),
     (422, "BUSINESS_RULE_VIOLATION", RuleViolation), (422, "SOMETHING_NEW", RuleViolation),
     (409, "CONFLICT", errors.UnknownSupplierError), (403, "FORBIDDEN", errors.InvalidToken)],
)  # fmt: skip
async def test_error_codes_map_to_typed_errors(
    status: int, code: str, raised: type[Exception]
) -> None:
    client, seen = make(lambda r: error(status, code, "refused"))
    with pytest.raises(raised) as caught:
        await client.listing(PID)
    assert caught.value.code == code and len(seen) == 1  # type: ignore[attr-defined]


async def test_a_refused_listing_is_a_rule_violation_sent_once() -> None:
    client, seen = make(lambda r: error(422, "BUSINESS_RULE_VIOLATION", "duplicate code"))
    with pytest.raises(RuleViolation) as caught:
        await client.create_listing(
            name="T", price=Decimal("1.00"), delivery_type="AUTO", codes=["A"]
        )
    assert caught.value.supplier_message == "duplicate code" and len(seen) == 1


async def test_a_200_carrying_an_error_body_is_an_error() -> None:
    client, _ = make(lambda r: answer(200, {"error": {"code": "NOT_FOUND", "message": "x"}}))
    with pytest.raises(ListingNotFound):
        await client.listing(PID)


async def test_a_read_waits_retry_after_through_the_limiter_then_succeeds() -> None:
    answers = iter([
        answer(429, {"error": {"code": "TOO_MANY_REQUESTS"}}, {"Retry-After": "7"}),
        answer(200, {"total_products": 1, "pending_rewards": 24500}),
    ])  # fmt: skip
    sleeps: list[float] = []
    client, seen = make(lambda r: next(answers), sleeps)
    board = await client.dashboard()
    assert board.pending_rewards == 24500 and len(seen) == 2
    assert sleeps and 6.9 < sleeps[0] <= 7.0  # the limiter slept it out, once


async def test_a_retry_after_longer_than_allowed_is_raised_at_once() -> None:
    client, seen = make(lambda r: answer(429, {}, {"Retry-After": "120"}))
    with pytest.raises(errors.RateLimited) as caught:
        await client.listings()
    assert caught.value.retry_after == 120 and len(seen) == 1


async def test_a_write_refused_with_429_is_sent_again_after_retry_after() -> None:
    answers = iter([answer(429, {}, {"Retry-After": "2"}), answer(201, {"added": 2})])
    sleeps: list[float] = []
    client, seen = make(lambda r: next(answers), sleeps)
    assert await client.add_offers(PID, 1799, ["A", "B"]) == 2
    assert len(seen) == 2 and sleeps and 1.9 < sleeps[0] <= 2.0


async def test_a_write_answered_503_is_unknown_and_not_repeated() -> None:
    client, seen = make(lambda r: error(503, "SERVICE_UNAVAILABLE", "down"))
    with pytest.raises(WriteOutcomeUnknown) as caught:
        await client.upload_codes(PID, ["A"])
    assert len(seen) == 1 and "SERVICE_UNAVAILABLE" in caught.value.reason
    reads, seen_reads = make(lambda r: error(503, "SERVICE_UNAVAILABLE", "down"))
    with pytest.raises(errors.ServiceUnavailable):
        await reads.dashboard()
    assert len(seen_reads) == 3


async def test_a_write_whose_answer_times_out_is_unknown_and_not_repeated() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, seen = make(handler)
    with pytest.raises(WriteOutcomeUnknown):
        await client.create_listing(name="T", price=Decimal("2.50"), delivery_type="MANUAL")
    assert len(seen) == 1


async def test_a_write_that_could_not_connect_is_a_connection_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = make(handler)
    with pytest.raises(errors.SupplierConnectionError):
        await client.add_offers(PID, 100, ["A"])


async def test_update_is_retried_after_a_timeout_because_it_repeats_safely() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return answer(200, {"product": {"id": PID, "title": "T", "price": 17.99,
                                        "moderation_status": "pending"}})  # fmt: skip

    client, seen = make(handler)
    updated = await client.update_listing(PID, name="T", price=Decimal("17.99"))
    assert len(seen) == 2 and seen[1].method == "PUT"
    assert json.loads(seen[1].content) == {"name": "T", "price": 17.99}
    assert updated.moderation_status == "pending" and str(updated.price) == "17.99"


async def test_empty_or_blank_codes_and_empty_updates_are_refused_before_sending() -> None:
    client, seen = make(lambda r: answer(200, {}))
    for call in (
        client.upload_codes(PID, []),
        client.upload_codes(PID, ["A", "  "]),
        client.add_offers(PID, 100, []),
        client.update_listing(PID),
        client.create_listing(name="T", price=Decimal("1"), delivery_type="AUTOMATIC"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError):
            await call
    assert seen == []


async def test_an_answer_without_the_documented_count_is_an_unknown_shape() -> None:
    client, _ = make(lambda r: answer(200, {"deleted": "12"}))
    with pytest.raises(errors.UnknownSupplierError):
        await client.delete_offers(PID)


async def test_listing_page_parameters_are_capped() -> None:
    client, seen = make(lambda r: answer(200, {"items": [], "limit": 100, "offset": 0, "total": 0}))
    await client.listings(limit=1000, offset=-3)
    assert seen[0].url.params["limit"] == "100" and seen[0].url.params["offset"] == "0"
