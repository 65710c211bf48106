"""Gaming Goods client over httpx.MockTransport: envelopes, errors, cents, paging,
Idempotency-Key, rate-limit headers, and a partner checkout whose answer was lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from services.suppliers import errors
from services.suppliers.base import Customer, OrderAttempt
from services.suppliers.gaming_goods import (
    GamingGoodsClient,
    RateLimiter,
    RetryPolicy,
    Timeouts,
    idempotency_key,
)
from services.suppliers.gaming_goods.models import cents_to_euros, map_status
from services.suppliers.models import OrderStatus

PID = "a1b2c3d4-0000-4000-8000-000000000001"
OTHER = "a1b2c3d4-0000-4000-8000-000000000002"
NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(
        status, text=text, headers={"content-type": "application/json"} | (headers or {})
    )


def make(handler, order_api: str = "partner", sleeps: list[float] | None = None, **kw):
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    client = GamingGoodsClient(
        httpx.AsyncClient(transport=httpx.MockTransport(record)),
        jwt="jwt-secret", api_key="pk-secret", order_api=order_api,
        catalog_url="https://gg.test/api/v1", partner_url="https://gg.test/api/partner/v1",
        timeouts=Timeouts(read=1, create_order=1),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01, max_retry_after=65.0),
        sleep=sleep,
        now=lambda: NOW, **kw,
    )  # fmt: skip
    return client, seen


def partner_product(cents: object = 1999, **over) -> dict:
    return {
        "id": PID, "title": "Cyberpunk 2077 Steam Key", "brand": "CD Projekt",
        "category": "Game Keys", "price": cents, "currency": "EUR", "quantity": 12,
        "is_available": True, "images": ["https://gaming-goods.ru/cp.webp"], "new_field": 1,
    } | over  # fmt: skip


@pytest.mark.parametrize(
    ("cents", "euros"),
    [(1999, "19.99"), (10, "0.10"), (1, "0.01"), (0, "0.00"), (123456789, "1234567.89")],
)
async def test_partner_cents_become_exact_decimal_euros(cents: int, euros: str) -> None:
    client, _ = make(lambda r: answer(200, partner_product(cents)))
    offer = await client.find_offer(PID)
    assert offer.price == Decimal(euros) and str(offer.price) == euros
    assert cents_to_euros(cents) == Decimal(euros)


@pytest.mark.parametrize("bad", ["19.99", '"1999"', "true"])
async def test_a_partner_price_that_is_not_whole_cents_is_refused(bad: str) -> None:
    text = json.dumps(partner_product()).replace('"price": 1999', f'"price": {bad}')
    client, _ = make(lambda r: answer(200, text))
    with pytest.raises(errors.UnknownSupplierError, match="unexpected answer shape"):
        await client.find_offer(PID)


async def test_catalog_answers_are_unwrapped_and_prices_read_from_the_json_text() -> None:
    product = {"id": PID, "name": "Cyberpunk 2077", "slug": "cp", "price": 19.99,
               "currency": "EUR", "stock_quantity": 3, "image_url": "https://x/cp.png",
               "is_active": True}  # fmt: skip
    text = json.dumps({"data": {"products": [product], "total": 1, "page": 1, "page_size": 100}})
    client, seen = make(lambda r: answer(200, text.replace("19.99", "19.990")), "catalog")
    rows = [row async for row in client.iter_catalogue()]
    assert rows[0].price == Decimal("19.990") and str(rows[0].price) == "19.990"
    assert rows[0].image_url == "https://x/cp.png" and rows[0].offer_group_id == PID
    assert "authorization" not in seen[0].headers  # public catalogue: no token sent


@pytest.mark.parametrize("order_api", ["partner", "catalog"])
async def test_page_size_is_capped_at_100_and_every_page_is_read(order_api: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        size = int(q.get("limit") or q.get("page_size"))
        start = int(q["offset"]) if "offset" in q else (int(q["page"]) - 1) * size
        ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(start, min(start + size, 250))]
        if order_api == "partner":
            return answer(200, {"items": [partner_product(100, id=i) for i in ids], "total": 250})
        rows = [{"id": i, "name": "n", "slug": i, "price": 1} for i in ids]
        return answer(200, {"data": {"products": rows, "total": 250, "page": 1, "page_size": size}})

    client, seen = make(handler, order_api)
    rows = [row async for row in client.iter_catalogue(page_size=1000)]
    assert len({r.offer_group_id for r in rows}) == 250 and len(seen) == 3
    assert all(int(r.url.params.get("limit") or r.url.params["page_size"]) == 100 for r in seen)


ERRORS = [
    (400, "invalid_request", errors.InvalidRequestBody),
    (422, "validation_error", errors.InvalidRequestBody),
    (401, "unauthorized", errors.InvalidToken),
    (403, "forbidden", errors.InvalidToken),
    (401, None, errors.InvalidToken),
    (402, "insufficient_balance", errors.InsufficientBalance),
    (404, "product_not_found", errors.OfferNotFound),
    (404, None, errors.OfferNotFound),
    (409, "out_of_stock", errors.OutOfStock),
    (409, "price_changed", errors.WrongPrice),
    (422, "idempotency_key_reused", errors.TransactionDuplicate),
    (418, "teapot", errors.UnknownSupplierError),
]


@pytest.mark.parametrize(("status", "code", "expected"), ERRORS)
async def test_every_error_envelope_maps_to_a_shared_typed_error(status, code, expected) -> None:
    body = {"error": {"code": code, "message": "Parameter 'page' must be a positive integer"}}
    client, _ = make(lambda r: answer(status, body if code else "not json"))
    with pytest.raises(expected) as raised:
        await client.partner_product(PID)
    assert raised.value.http_status == status and raised.value.code in (code, expected.default_code)
    assert "pk-secret" not in str(raised.value) and "pk-secret" not in raised.value.raw_body


async def test_404_on_an_order_endpoint_is_order_not_found() -> None:
    client, _ = make(lambda r: answer(404, {"error": {"code": "not_found", "message": "x"}}))
    with pytest.raises(errors.OrderNotFound):
        await client.get_order(order_id="e5f6")


async def test_an_error_envelope_in_a_200_is_an_error() -> None:
    client, _ = make(lambda r: answer(200, {"error": {"code": "invalid_request", "message": "m"}}))
    with pytest.raises(errors.InvalidRequestBody):
        await client.partner_brands()


async def test_5xx_reads_are_retried_then_raised_as_retry_later() -> None:
    calls = iter([answer(503, {"error": {"code": "service_unavailable", "message": "m"}})] * 3)
    client, seen = make(lambda r: next(calls))
    with pytest.raises(errors.ServiceUnavailable):
        await client.partner_brands()
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("completed", OrderStatus.COMPLETED), ("pending_payment", OrderStatus.SUBMITTED),
     ("created", OrderStatus.SUBMITTED), ("PAID", OrderStatus.PROCESSING),
     ("cancelled", OrderStatus.CANCELED), ("failed", OrderStatus.FAILED),
     ("refunded", OrderStatus.REFUND), ("on_hold", OrderStatus.PROCESSING)],
)  # fmt: skip
def test_lower_case_statuses_map_to_the_shared_ones(raw: str, expected: OrderStatus) -> None:
    assert map_status(raw) is expected


def catalog_order(status: str = "completed", keys: list[str] | None = None) -> dict:
    item = {"product_id": PID, "product_name": "CP", "price": 1999, "quantity": 1}
    if keys is not None:
        item["keys"] = keys
    return {"data": {"id": "e5f6", "status": status, "items": [item], "total": 1799,
                     "currency": "EUR", "created_at": "2026-03-14T12:00:00Z"}}  # fmt: skip


async def test_catalog_order_sends_a_bearer_and_an_idempotency_key_from_the_transaction_id() -> (
    None
):
    product = {"data": {"products": [{"id": PID, "name": "CP", "slug": "cp", "price": 19.99,
                                      "stock_quantity": 5}], "total": 1}}  # fmt: skip
    detail = {"data": {"id": PID, "name": "CP", "slug": "cp", "price": 19.99, "stock_quantity": 5}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(201, catalog_order("pending_payment"))
        if request.url.path.endswith("/orders/e5f6"):
            return answer(200, catalog_order("completed", ["K-1", "K-2"]))
        return answer(200, product if request.url.path.endswith("/products") else detail)

    client, seen = make(handler, "catalog")
    placed = await client.create_order(PID, Decimal("19.99"), "shop-42", Customer())
    assert placed.status is OrderStatus.SUBMITTED and placed.price == Decimal("17.99")
    again = await client.resolve_order(PID, Decimal("19.99"), "shop-42", Customer())
    assert again.all_keys == ["K-1", "K-2"]  # known order id: read, not re-sent
    client._order_ids.clear()  # as after a lost answer: re-send with the same key
    await client.resolve_order(PID, Decimal("19.99"), "shop-42", Customer())
    posts = [r for r in seen if r.method == "POST"]
    assert len(posts) == 2
    assert {r.headers["Idempotency-Key"] for r in posts} == {idempotency_key("shop-42")}
    assert idempotency_key("shop-42") != idempotency_key("shop-43")
    assert posts[0].headers["Authorization"] == "Bearer jwt-secret"
    assert json.loads(posts[0].content) == {
        "items": [{"product_id": PID, "quantity": 1}],
        "payment_method": "balance",
    }


async def test_remaining_zero_waits_until_the_reset_before_the_next_call() -> None:
    sleeps: list[float] = []
    wall = 1710403190.0
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": "1710403200"}  # fmt: skip
    client, _ = make(lambda r: answer(200, {"items": [], "total": 0}, headers), sleeps=sleeps)
    client.limiter = RateLimiter(sleep=_recorder(sleeps), wall_clock=lambda: wall)
    await client.partner_brands()
    assert sleeps == []
    await client.partner_brands()
    assert len(sleeps) == 1 and 9.5 <= sleeps[0] <= 10.0


def _recorder(sleeps: list[float]):
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return sleep


async def test_a_429_waits_its_retry_after_and_a_long_one_is_raised() -> None:
    sleeps: list[float] = []
    replies = iter([
        answer(429, {"error": {"code": "rate_limit_exceeded", "message": "m"}}, {"Retry-After": "7"}),
        answer(200, {"items": [], "total": 0}),
        answer(429, {"error": {"code": "rate_limit_exceeded", "message": "m"}}, {"Retry-After": "3600"}),
    ])  # fmt: skip
    client, seen = make(lambda r: next(replies), sleeps=sleeps)
    client.limiter = RateLimiter(sleep=_recorder(sleeps))
    await client.partner_brands()
    assert len(seen) == 2 and 6.5 <= sleeps[0] <= 7
    with pytest.raises(errors.RateLimited) as raised:
        await client.partner_brands()
    assert raised.value.retry_after == 3600 and len(seen) == 3


def order_row(order_id: str, total: int, minutes: int) -> dict:
    created = (NOW + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": order_id, "status": "completed", "total": total, "currency": "EUR",
            "created_at": created}  # fmt: skip


def order_detail(order_id: str, product: str, codes: list[str]) -> dict:
    return {"id": order_id, "status": "completed",
            "items": [{"product_id": product, "title": "t", "unit_price": 1999, "quantity": 1}],
            "amounts": {"buyer_total": 1999, "platform_fee": 0},
            "delivery": {"type": "EXTERNAL", "codes": codes}}  # fmt: skip


def checkout_world(rows: list[dict], details: dict[str, dict], *, lose: bool = True):
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST":
            if lose:
                raise httpx.ReadTimeout("lost", request=request)
            return answer(201, {"orders": [{"id": "o-new", "status": "created", "total": 1999}]})
        if path.endswith(f"/products/{PID}"):
            return answer(200, partner_product())
        if path.endswith("/orders"):
            offset = int(request.url.params["offset"])
            return answer(200, {"items": rows[offset : offset + 100], "total": len(rows)})
        order_id = path.rsplit("/", 1)[1]
        return answer(200, details[order_id]) if order_id in details else answer(404, {})

    return handler


async def test_lost_checkout_is_unknown_then_found_by_time_product_and_amount() -> None:
    rows = [order_row("o-late", 1999, 1), order_row("o-other-product", 1999, 1),
            order_row("o-dearer", 2999, 1), order_row("o-old", 1999, -30)]  # fmt: skip
    details = {"o-late": order_detail("o-late", PID, ["A", "B"]),
               "o-other-product": order_detail("o-other-product", OTHER, ["C"])}  # fmt: skip
    client, seen = make(checkout_world(rows, details))
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(PID, Decimal("19.99"), "t-1", Customer())
    found = await client.get_order(transaction_id="t-1")
    assert found.order_id == "o-late" and found.all_keys == ["A", "B"]
    assert found.status is OrderStatus.COMPLETED
    assert len([r for r in seen if r.method == "POST"]) == 1  # never checked out again
    opened = {r.url.path.rsplit("/", 1)[1] for r in seen if "/orders/" in r.url.path}
    assert "o-old" not in opened and "o-dearer" not in opened


async def test_lost_checkout_proven_absent_only_when_the_list_has_none() -> None:
    rows = [order_row("o-other-product", 1999, 1)]
    details = {"o-other-product": order_detail("o-other-product", OTHER, ["C"])}
    client, seen = make(checkout_world(rows, details))
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(PID, Decimal("19.99"), "t-2", Customer())
    with pytest.raises(errors.OrderNotFound):
        await client.resolve_order(PID, Decimal("19.99"), "t-2", Customer())
    assert len([r for r in seen if r.method == "POST"]) == 1


async def test_without_the_attempt_a_lost_checkout_stays_unknown() -> None:
    client, _ = make(checkout_world([], {}))
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.get_order(transaction_id="never-seen-here")
    attempt = OrderAttempt(PID, Decimal("19.99"), "EUR", NOW)
    with pytest.raises(errors.OrderNotFound):
        await client.get_order(transaction_id="never-seen-here", attempt=attempt)


async def test_an_order_list_too_long_to_read_proves_nothing() -> None:
    rows = [order_row(f"o-{n}", 1999, -n) for n in range(-300, 0)]  # oldest first, all late
    client, _ = make(checkout_world(rows, {}), max_order_pages=2)
    attempt = OrderAttempt(PID, Decimal("19.99"), "EUR", NOW)
    with pytest.raises(errors.OrderOutcomeUnknown, match="longer than"):
        await client.get_order(transaction_id="t-3", attempt=attempt)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_on_checkout_is_unknown_and_a_connect_error_is_not(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return answer(status, {"error": {"code": "internal_error", "message": "m"}})
        return answer(200, partner_product())

    client, _ = make(handler)
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(PID, Decimal("19.99"), "t-5xx", Customer())

    def refused(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ConnectError("refused", request=request)
        return answer(200, partner_product())

    client, _ = make(refused)
    with pytest.raises(errors.SupplierConnectionError):
        await client.create_order(PID, Decimal("19.99"), "t-conn", Customer())


async def test_checkout_body_uses_lines_and_the_api_key() -> None:
    client, seen = make(checkout_world([], {}, lose=False))
    order = await client.create_order(PID, Decimal("19.99"), "t-ok", Customer())
    post = next(r for r in seen if r.method == "POST")
    assert json.loads(post.content) == {
        "source": "lines",
        "lines": [{"product_id": PID, "quantity": 1}],
    }
    assert post.headers["X-API-Key"] == "pk-secret" and "idempotency-key" not in post.headers
    assert (order.order_id, order.price, order.status) == (
        "o-new",
        Decimal("19.99"),
        OrderStatus.SUBMITTED,
    )


async def test_missing_capabilities_raise_not_implemented() -> None:
    client, _ = make(lambda r: answer(200, {}))
    for call in (client.get_balance(), client.list_transactions(), client.get_servers(PID),
                 client.check_player(PID, "1"), client.get_telegram_user("x")):  # fmt: skip
        with pytest.raises(NotImplementedError):
            await call
