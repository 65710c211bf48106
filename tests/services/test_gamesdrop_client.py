"""GamesDrop client over httpx.MockTransport: envelopes, error codes, retries, money."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from services.suppliers import errors
from services.suppliers.base import Capability, Customer
from services.suppliers.gamesdrop.client import (
    CatalogueIncomplete,
    GamesDropClient,
    RetryPolicy,
    Timeouts,
)
from services.suppliers.models import SupplierOrder

TOKEN = "abcdef1234567890abcdef1234567890"


async def _no_sleep(_: float) -> None:
    return None


def make_client(handler, **kwargs) -> tuple[GamesDropClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    client = GamesDropClient(
        http, TOKEN, base_url="https://gd.test", user_info_url="https://gamesdrop.test/user-info",
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01), sleep=_no_sleep,
        timeouts=Timeouts(read=1, create_order=1), **kwargs,
    )  # fmt: skip
    return client, seen


def answer(status: int, body: object) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(status, text=text, headers={"content-type": "application/json"})


ENVELOPES = [
    {"error": {"code": "WRONG_PRICE", "message": "WRONG_PRICE (status=400)"}},
    {"code": "WRONG_PRICE", "message": "price changed"},
    {"error": "WRONG_PRICE"},
    {"message": "WRONG_PRICE"},
    {"message": "WRONG_PRICE (status=400)"},
]


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_every_error_envelope_in_the_field_notes_gives_the_same_typed_error(envelope) -> None:
    client, _ = make_client(lambda r: answer(400, envelope))
    with pytest.raises(errors.WrongPrice) as raised:
        await client.find_offer("1")
    assert raised.value.code == "WRONG_PRICE"
    assert raised.value.http_status == 400
    assert raised.value.raw_body == json.dumps(envelope)


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("INVALID_TOKEN", errors.FixRequestError),
        ("OFFER_NOT_FOUND", errors.RefreshPriceError),
        ("TRANSACTION_DUPLICATE", errors.FixRequestError),
        ("WRONG_PRICE", errors.RefreshPriceError),
        ("OUT_OF_STOCK", errors.RefreshPriceError),
        ("ORDER_NOT_FOUND", errors.FixRequestError),
        ("ORDER_NOT_PROCESSING", errors.FixRequestError),
        ("ORDER_NOT_COMPLETED", errors.FixRequestError),
        ("ORDER_ALREADY_CANCELED", errors.FixRequestError),
        ("ORDER_ALREADY_REFUNDED", errors.FixRequestError),
        ("SERVICE_UNAVAILABLE", errors.RetryLaterError),
        ("INVALID_REQUEST_BODY", errors.FixRequestError),
        ("INSUFFICIENT_BALANCE", errors.MoneyError),
        ("BALANCE_UNAVAILABLE", errors.RetryLaterError),
    ],
)
async def test_each_documented_code_has_its_own_exception_in_its_family(code, family) -> None:
    client, _ = make_client(lambda r: answer(409, {"error": {"code": code, "message": code}}))
    with pytest.raises(family) as raised:
        await client.get_order(order_id=1)
    assert type(raised.value) is errors.ERROR_BY_CODE[code]
    assert raised.value.code == code


async def test_an_unknown_code_still_raises_a_clear_error() -> None:
    client, _ = make_client(
        lambda r: answer(418, {"error": {"code": "TEAPOT_MODE", "message": "no"}})
    )
    with pytest.raises(errors.UnknownSupplierError, match="TEAPOT_MODE"):
        await client.find_offer("1")


async def test_the_token_is_sent_bare_and_never_in_an_exception() -> None:
    client, seen = make_client(
        lambda r: answer(401, {"error": {"code": "INVALID_TOKEN", "message": "x"}})
    )
    with pytest.raises(errors.InvalidToken) as raised:
        await client.get_balance()
    assert seen[0].headers["Authorization"] == TOKEN
    assert TOKEN not in str(raised.value) and TOKEN not in repr(client)


async def test_reads_retry_5xx_and_429_then_succeed() -> None:
    answers = iter(
        [
            answer(502, "<html>bad gateway</html>"),
            answer(429, {}),
            answer(200, {"status": "VALID", "gameUserLogin": "Zed"}),
        ]
    )
    client, seen = make_client(lambda r: next(answers))
    check = await client.check_player("5", "123")
    assert check.is_valid and check.game_user_login == "Zed"
    assert len(seen) == 3


async def test_reads_do_not_retry_4xx() -> None:
    client, seen = make_client(
        lambda r: answer(404, {"error": {"code": "OFFER_NOT_FOUND", "message": "x"}})
    )
    with pytest.raises(errors.OfferNotFound):
        await client.find_offer("1")
    assert len(seen) == 1


async def test_reads_give_up_after_the_retry_budget() -> None:
    client, seen = make_client(
        lambda r: answer(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "busy"}})
    )
    with pytest.raises(errors.ServiceUnavailable):
        await client.find_offer("1")
    assert len(seen) == 3


async def test_a_read_timeout_is_retried_then_raised_as_supplier_timeout() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, seen = make_client(hang)
    with pytest.raises(errors.SupplierTimeout):
        await client.get_balance()
    assert len(seen) == 3


async def test_create_order_timeout_is_outcome_unknown_and_never_retried() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, seen = make_client(hang)
    with pytest.raises(errors.OrderOutcomeUnknown) as raised:
        await client.create_order("999", Decimal("23.09"), "shop-1", Customer())
    assert raised.value.transaction_id == "shop-1"
    assert len(seen) == 1


@pytest.mark.parametrize("response", [answer(502, "<html>proxy</html>"), answer(200, "not json")])
async def test_create_order_answer_that_cannot_be_read_is_outcome_unknown(response) -> None:
    client, seen = make_client(lambda r: response)
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order("999", Decimal("23.09"), "shop-2", Customer())
    assert len(seen) == 1


async def test_create_order_sends_the_price_with_the_exact_digits_received() -> None:
    body = {
        "offerId": 1001,
        "productName": "PUBG",
        "offerName": "60 UC",
        "price": 560.10,
        "currency": "RUB",
    }
    raw = json.dumps(body).replace("560.1", "560.10")
    created = {
        "orderId": 7,
        "status": "COMPLETED",
        "key": "K",
        "price": 560.10,
        "createdAt": "2024-05-28 10:08:04.296+00",
    }
    answers = iter([httpx.Response(200, text=raw), answer(200, created)])
    client, seen = make_client(lambda r: next(answers))
    offer = await client.find_offer("1001")
    assert offer.price == Decimal("560.10") and str(offer.price) == "560.10"

    order = await client.create_order(
        "1001", offer.price, "shop-3", Customer(game_user_id="52357322414")
    )

    sent = seen[1].content.decode()
    assert '"price":560.10' in sent
    assert '"offerId":1001' in sent
    assert '"customer":{"gameUserId":"52357322414"}' in sent
    assert order.key == "K" and order.created_at is not None


async def test_create_order_refuses_a_float_price() -> None:
    client, seen = make_client(lambda r: answer(200, {}))
    with pytest.raises(TypeError):
        await client.create_order("1", 0.77, "shop-4", Customer())  # type: ignore[arg-type]
    assert not seen


async def test_both_created_at_formats_are_parsed() -> None:
    answers = iter(
        [answer(200, {"status": "COMPLETED", "createdAt": "2024-05-28 10:08:04.296+00"}),
         answer(200, {"status": "COMPLETED", "createdAt": "2025-08-26T12:30:15.234Z"})]
    )  # fmt: skip
    client, _ = make_client(lambda r: next(answers))
    first = await client.get_order(order_id=1)
    second = await client.get_order(transaction_id="t")
    assert (first.created_at.year, first.created_at.microsecond) == (2024, 296000)
    assert second.created_at.isoformat() == "2025-08-26T12:30:15.234000+00:00"


async def test_codegames_required_list_is_understood() -> None:
    body = {"offerId": 2061, "productName": "PUBG", "offerName": "60 UC", "price": 674.47,
            "currency": "KZT", "isReturnDataForCustomer": False, "required": ["gameUserId"]}  # fmt: skip
    client, _ = make_client(lambda r: answer(200, body))
    offer = await client.find_offer("2061")
    assert offer.requires_game_user_id and not offer.requires_game_server_id


async def test_codegames_minimal_order_status_is_accepted() -> None:
    client, _ = make_client(
        lambda r: answer(200, {"status": "PROCESSING", "isReturnDataForCustomer": True})
    )
    order = await client.get_order(order_id=10502)
    assert order.status.value == "PROCESSING" and order.order_id is None


async def test_balance_falls_back_to_the_older_path_and_remembers_it() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/offers/balance":
            return answer(404, {"message": "Cannot GET /api/v1/offers/balance"})
        return answer(
            200, {"balance": 500.00, "draftBalance": 50.00, "currency": {"id": 3, "code": "USD"}}
        )

    client, seen = make_client(route)
    first = await client.get_balance()
    await client.get_balance()
    assert (
        first.balance == Decimal("500.00")
        and first.currency == "USD"
        and first.is_postpaid is False
    )
    assert [r.url.path for r in seen] == [
        "/api/v1/offers/balance",
        "/api/v1/balance",
        "/api/v1/balance",
    ]


async def test_servers_fall_back_to_the_partner_path() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/offers/servers":
            return answer(404, "Not Found")
        return answer(200, {"Europe": "os_euro", "America": "os_usa"})

    client, _ = make_client(route)
    servers = await client.get_servers("1001")
    assert [(s.label, s.server_id) for s in servers] == [
        ("Europe", "os_euro"),
        ("America", "os_usa"),
    ]


def _sync_pages(count: int, pages: dict[int, list[int]]):
    def route(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["page"]
        rows = [{"productId": 1, "productName": "P", "offerGroupId": i, "offerGroupName": f"o{i}",
                 "price": 1.5, "currency": "USD", "inStock": True, "priceBreakdown": {"fxRate": 1}}
                for i in pages.get(page, [])]  # fmt: skip
        return answer(200, {"count": count, "rows": rows})

    return route


def _pages_asked(seen: list[httpx.Request]) -> list[int]:
    return sorted(json.loads(r.content)["page"] for r in seen)


async def test_sync_iterates_every_page_and_drops_duplicate_offer_groups() -> None:
    client, seen = make_client(_sync_pages(5, {1: [1, 2], 2: [3, 2], 3: [4, 5]}))
    rows = [row.offer_group_id async for row in client.iter_catalogue(page_size=2)]
    assert rows == ["1", "2", "3", "4", "5"]  # ids are text
    assert _pages_asked(seen) == [1, 2, 3, 4]  # page 3 was full: page 4 proves the end


async def test_a_row_repeated_across_pages_does_not_hide_the_last_offer() -> None:
    # the supplier repeats offer 2 at the top of page 2: offer 6 spills onto a 4th page
    client, seen = make_client(_sync_pages(6, {1: [1, 2], 2: [2, 3], 3: [4, 5], 4: [6]}))
    rows = [row.offer_group_id async for row in client.iter_catalogue(page_size=2)]
    assert rows == ["1", "2", "3", "4", "5", "6"]
    assert _pages_asked(seen) == [1, 2, 3, 4]


async def test_a_catalogue_whose_distinct_ids_fall_short_of_count_is_incomplete() -> None:
    # a repeated row fills the count, but offer 6 is nowhere
    client, _ = make_client(_sync_pages(6, {1: [1, 2], 2: [2, 3], 3: [4, 5]}))
    with pytest.raises(CatalogueIncomplete) as raised:
        [row async for row in client.iter_catalogue(page_size=2)]
    assert (raised.value.expected, raised.value.fetched) == (6, 5)


async def test_sync_that_does_not_add_up_to_count_raises() -> None:
    client, _ = make_client(_sync_pages(6, {1: [1, 2], 2: [3, 4]}))
    with pytest.raises(CatalogueIncomplete) as raised:
        [row async for row in client.iter_catalogue(page_size=2)]
    assert (raised.value.expected, raised.value.fetched) == (6, 4)


async def test_a_full_last_page_is_followed_until_an_empty_page() -> None:
    client, seen = make_client(_sync_pages(4, {1: [1, 2], 2: [3, 4]}))
    rows = [row.offer_group_id async for row in client.iter_catalogue(page_size=2)]
    assert rows == ["1", "2", "3", "4"]
    assert _pages_asked(seen) == [1, 2, 3]


async def test_an_empty_catalogue_is_complete() -> None:
    client, seen = make_client(_sync_pages(0, {}))
    assert [row async for row in client.iter_catalogue(page_size=2)] == []
    assert _pages_asked(seen) == [1]


async def test_a_supplier_that_never_ends_its_pages_is_incomplete() -> None:
    def same_full_page(request: httpx.Request) -> httpx.Response:
        return _sync_pages(4, {json.loads(request.content)["page"]: [1, 2]})(request)

    client, seen = make_client(same_full_page)
    with pytest.raises(CatalogueIncomplete):
        [row async for row in client.iter_catalogue(page_size=2)]
    assert len(seen) < 20


async def test_sync_keeps_at_most_sync_concurrency_pages_in_flight() -> None:
    in_flight = peak = 0

    async def route(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        page = json.loads(request.content)["page"]
        ids = list(range((page - 1) * 10 + 1, min(page * 10, 95) + 1))
        return _sync_pages(95, {page: ids})(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    client = GamesDropClient(http, TOKEN, base_url="https://gd.test", sync_concurrency=3)
    rows = [row.offer_group_id async for row in client.iter_catalogue(page_size=10)]
    assert rows == [str(n) for n in range(1, 96)]
    assert 1 < peak <= 3


async def test_user_info_goes_to_its_own_host() -> None:
    body = {
        "valid": True,
        "username": "igoryan34",
        "userInfo": {"id": 143594291, "first_name": "Igor", "username": "igoryan34"},
    }
    client, seen = make_client(lambda r: answer(200, body))
    info = await client.get_telegram_user("@igoryan34")
    assert info.user_id == 143594291
    assert seen[0].url.host == "gamesdrop.test"


async def test_resolve_order_treats_transaction_duplicate_as_the_first_order_existing() -> None:
    calls: list[str] = []

    def route(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("create-order"):
            return answer(409, {"error": {"code": "TRANSACTION_DUPLICATE", "message": "dup"}})
        if len(calls) == 1:
            return answer(404, {"error": {"code": "ORDER_NOT_FOUND", "message": "none"}})
        return answer(200, {"orderId": 9, "status": "COMPLETED", "key": "KEY"})

    client, _ = make_client(route)
    order = await client.resolve_order("999", Decimal("23.09"), "shop-9", Customer())
    assert order.order_id == "9"
    assert calls == [
        "/api/v1/offers/order-status",
        "/api/v1/offers/create-order",
        "/api/v1/offers/order-status",
    ]


# -- HTTP status first: an error code never turns a 429 or a 5xx into a refusal ---------

TOO_MANY = {"error": {"code": "TOO_MANY_REQUESTS", "message": "slow down"}}
FIELD_VALIDATION = {
    "error": {"code": "SERVICE_UNAVAILABLE", "message": "Field validation for 'GameUserID' failed"}
}


def answer_with(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, text=json.dumps(body), headers={"content-type": "application/json", **headers}
    )


def make_sleepy_client(handler) -> tuple[GamesDropClient, list[httpx.Request], list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = GamesDropClient(
        httpx.AsyncClient(transport=httpx.MockTransport(record)), TOKEN,
        base_url="https://gd.test",
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01, max_retry_after=10),
        timeouts=Timeouts(read=1, create_order=1), sleep=sleep,
    )  # fmt: skip
    return client, seen, slept


async def test_create_order_429_with_an_error_code_is_retry_later_with_its_retry_after() -> None:
    client, seen = make_client(lambda r: answer_with(429, TOO_MANY, **{"Retry-After": "7"}))
    with pytest.raises(errors.RetryLaterError) as raised:
        await client.create_order("999", Decimal("23.09"), "shop-11", Customer())
    assert raised.value.retry_after == 7
    assert raised.value.http_status == 429
    assert raised.value.code == "TOO_MANY_REQUESTS"
    assert len(seen) == 1  # never repeated by the client: the order flow decides when


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_create_order_5xx_with_service_unavailable_is_outcome_unknown(status) -> None:
    body = {"error": {"code": "SERVICE_UNAVAILABLE", "message": "busy"}}
    client, seen = make_client(lambda r: answer_with(status, body, **{"Retry-After": "30"}))
    with pytest.raises(errors.OrderOutcomeUnknown) as raised:
        await client.create_order("999", Decimal("23.09"), "shop-12", Customer())
    assert raised.value.transaction_id == "shop-12"
    assert raised.value.retry_after == 30
    assert len(seen) == 1


async def test_create_order_5xx_with_a_refusal_code_is_still_outcome_unknown() -> None:
    body = {"error": {"code": "OUT_OF_STOCK", "message": "gateway confused"}}
    client, _ = make_client(lambda r: answer_with(502, body))
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order("999", Decimal("23.09"), "shop-13", Customer())


async def test_field_validation_500_is_a_request_error_not_repeated() -> None:
    client, seen = make_client(lambda r: answer_with(500, FIELD_VALIDATION))
    with pytest.raises(errors.FixRequestError) as raised:
        await client.create_order("10001", Decimal("1.00"), "shop-14", Customer())
    assert "GameUserID" in str(raised.value)
    assert "SERVICE_UNAVAILABLE" in raised.value.raw_body
    assert len(seen) == 1

    with pytest.raises(errors.FixRequestError):
        await client.check_player("10001", "")
    assert len(seen) == 2  # a read is not retried either


async def test_reads_wait_the_retry_after_of_a_429_with_an_error_code() -> None:
    answers = iter(
        [
            answer_with(429, TOO_MANY, **{"Retry-After": "3"}),
            answer_with(503, {"error": {"code": "SERVICE_UNAVAILABLE"}}, **{"Retry-After": "2"}),
            answer(200, {"status": "VALID", "gameUserLogin": "Zed"}),
        ]
    )
    client, seen, slept = make_sleepy_client(lambda r: next(answers))
    check = await client.check_player("5", "123")
    assert check.is_valid
    assert slept == [3, 2]
    assert len(seen) == 3


async def test_reads_give_up_at_once_when_retry_after_is_longer_than_they_may_wait() -> None:
    client, seen, slept = make_sleepy_client(
        lambda r: answer_with(429, TOO_MANY, **{"Retry-After": "120"})
    )
    with pytest.raises(errors.RateLimited) as raised:
        await client.find_offer("1")
    assert raised.value.retry_after == 120
    assert (len(seen), slept) == (1, [])


async def test_text_offer_ids_go_out_as_the_numbers_gamesdrop_expects() -> None:
    client, seen = make_client(
        lambda r: answer(
            200,
            {"offerId": 999, "productName": "Steam US", "offerName": "Steam US 5",
             "price": "23.090", "currency": "KZT"},
        )
    )  # fmt: skip
    offer = await client.find_offer("999")
    assert json.loads(seen[0].content) == {"offerId": 999}
    assert offer.offer_id == "999" and str(offer.price) == "23.090"


async def test_an_id_that_is_not_a_gamesdrop_number_is_refused_without_a_request() -> None:
    client, seen = make_client(lambda r: answer(200, {}))
    with pytest.raises(errors.OfferNotFound):
        await client.find_offer("3f2c1a9e-0000-4000-8000-000000000000")
    assert seen == []


async def test_gamesdrop_declares_its_capabilities_and_has_no_separate_keys() -> None:
    client, _ = make_client(lambda r: answer(200, {}))
    assert (client.name, client.short) == ("gamesdrop", "g")
    assert Capability.CATALOGUE_SYNC in client.capabilities
    assert Capability.KEYS_SEPARATE not in client.capabilities
    with pytest.raises(NotImplementedError):
        await client.fetch_keys(SupplierOrder(status="COMPLETED"), "shop-1")
