"""CodeGames client over httpx.MockTransport: both envelopes, error codes, required list,
minimal status, keys, retries on reads and none on create-order, exact money."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from services import exact_json
from services.suppliers import errors
from services.suppliers.base import Capability, Customer, Supplier
from services.suppliers.codegames import VENDOR, CodeGamesSettings
from services.suppliers.codegames.client import (
    CodeGamesClient,
    KeysNotReturned,
    RetryPolicy,
    Timeouts,
)
from services.suppliers.models import OrderStatus, SupplierOrder

TOKEN = "cg-token-0123456789"
BASE = "https://cg.test"

FIND_ONE_KEY = {
    "offerId": 2061, "productName": "PUBG", "offerName": "60 UC", "price": 674.47,
    "currency": "KZT", "isReturnDataForCustomer": True,
}  # fmt: skip
FIND_ONE_TOP_UP = {**FIND_ONE_KEY, "isReturnDataForCustomer": False, "required": ["gameUserId"]}
ORDER_COMPLETED = {
    "orderId": 10502, "price": 674.47, "currency": "KZT", "offerId": 2061,
    "productName": "PUBG", "offerName": "60 UC", "status": "COMPLETED",
    "key": "001434249936", "isReturnDataForCustomer": True,
}  # fmt: skip
ORDER_PROCESSING = {
    **{k: v for k, v in ORDER_COMPLETED.items() if k != "key"}, "count": 1, "status": "PROCESSING",
}  # fmt: skip


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(handler, *, attempts: int = 3) -> tuple[CodeGamesClient, list[httpx.Request], Sleeps]:  # fmt: skip
    seen: list[httpx.Request] = []
    sleeps = Sleeps()

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = CodeGamesClient(
        httpx.AsyncClient(transport=httpx.MockTransport(record)), TOKEN, base_url=BASE,
        retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.01, max_retry_after=10),
        timeouts=Timeouts(read=1, create_order=2), sleep=sleeps,
    )  # fmt: skip
    return client, seen, sleeps


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(
        status, text=text, headers={"content-type": "application/json", **(headers or {})}
    )


def sent(request: httpx.Request) -> dict:
    return exact_json.loads(request.content)


def legacy_ok(fields: dict) -> dict:
    """The older envelope's success: fields beside ``status: OK``; an order's status as
    ``orderStatus``."""
    body: dict = {"status": "OK", "comment": ""}
    for name, value in fields.items():
        body["orderStatus" if name == "status" else name] = value
    return body


# -- the vendor spec -------------------------------------------------------------------


def test_vendor_spec_builds_a_supplier_enabled_by_its_token() -> None:
    assert (VENDOR.name, VENDOR.short, VENDOR.sandbox) == ("codegames", "c", "sandboxes.codegames")
    assert not CodeGamesSettings().enabled()
    section = CodeGamesSettings(token="t", offer_ids="2061, 2062,2061")
    assert section.enabled() and section.offer_ids == ["2061", "2062"]
    assert CodeGamesSettings(token="t", offer_ids=[2061, "2071"]).offer_ids == ["2061", "2071"]
    with pytest.raises(ValueError, match="offer ids are numbers"):
        CodeGamesSettings(offer_ids=["abc"])
    client = VENDOR.build(section, httpx.AsyncClient())
    assert isinstance(client, Supplier) and client.name == "codegames"
    assert repr(client) == "CodeGamesClient(base_url='https://api.codegames.gg', token=**********)"


def test_capabilities_and_the_recheck_schedule() -> None:
    client, _, _ = make_client(lambda r: answer(200, {}))
    assert client.capabilities == {Capability.KEYS_SEPARATE, Capability.IDEMPOTENT_CREATE}
    assert (client.recheck_limit, client.recheck_interval) == (100, 120.0)


async def test_endpoints_the_document_lacks_raise_not_implemented() -> None:
    client, seen, _ = make_client(lambda r: answer(200, {}))
    for call in (
        client.get_balance(), client.list_transactions(), client.get_servers("1"),
        client.check_player("1", "2"), client.get_telegram_user("@x"),
    ):  # fmt: skip
        with pytest.raises(NotImplementedError):
            await call
    with pytest.raises(NotImplementedError):
        client.iter_catalogue()
    assert seen == []


# -- find-one --------------------------------------------------------------------------


async def test_find_one_sends_a_numeric_offer_id_with_the_bare_token() -> None:
    client, seen, _ = make_client(lambda r: answer(200, FIND_ONE_KEY))
    offer = await client.find_offer("2061")
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/api/v1/offers/find-one")
    assert request.headers["Authorization"] == TOKEN
    assert request.content == b'{"offerId":2061}'
    assert (offer.offer_id, offer.product_name, offer.offer_name) == ("2061", "PUBG", "60 UC")
    assert (offer.price, offer.currency) == (Decimal("674.47"), "KZT")
    assert offer.is_return_data_for_customer and not offer.requires_game_user_id


async def test_find_one_required_list_marks_a_top_up_needing_the_player_id() -> None:
    client, _, _ = make_client(lambda r: answer(200, FIND_ONE_TOP_UP))
    offer = await client.find_offer("2061")
    assert offer.requires_game_user_id and not offer.is_return_data_for_customer
    assert not offer.requires_game_server_id


@pytest.mark.parametrize(
    "body",
    [legacy_ok(FIND_ONE_TOP_UP), {"status": "OK", "comment": None, "data": FIND_ONE_TOP_UP}],
    ids=["fields-beside-status", "under-data"],
)
async def test_find_one_in_the_older_ok_envelope(body: dict) -> None:
    client, _, _ = make_client(lambda r: answer(200, body))
    offer = await client.find_offer("2061")
    assert (offer.offer_id, offer.price, offer.requires_game_user_id) == (
        "2061", Decimal("674.47"), True,
    )  # fmt: skip


# -- errors ----------------------------------------------------------------------------

CODES = [
    ("INVALID_TOKEN", 401, errors.InvalidToken),
    ("OFFER_NOT_FOUND", 404, errors.OfferNotFound),
    ("TRANSACTION_DUPLICATE", 409, errors.TransactionDuplicate),
    ("TXN_DUPLICATE", 409, errors.TransactionDuplicate),
    ("WRONG_PRICE", 409, errors.WrongPrice),
    ("OUT_OF_STOCK", 409, errors.OutOfStock),
    ("ORDER_NOT_FOUND", 404, errors.OrderNotFound),
    ("ORDER_NOT_PROCESSING", 409, errors.OrderNotProcessing),
    ("ORDER_NOT_COMPLETED", 409, errors.OrderNotCompleted),
    ("ORDER_ALREADY_CANCELED", 409, errors.OrderAlreadyCanceled),
    ("ORDER_ALREADY_REFUNDED", 409, errors.OrderAlreadyRefunded),
    ("INVALID_REQUEST_BODY", 400, errors.InvalidRequestBody),
    ("INSUFFICIENT_BALANCE", 402, errors.InsufficientBalance),
    ("SOMETHING_NEW", 400, errors.UnknownSupplierError),
]


@pytest.mark.parametrize(("code", "http_status", "expected"), CODES)
async def test_every_code_in_the_documented_envelope(code, http_status, expected) -> None:
    body = {"error": {"code": code, "message": f"{code} (status={http_status})"}}
    client, _, _ = make_client(lambda r: answer(http_status, body))
    with pytest.raises(expected) as raised:
        await client.find_offer("2061")
    assert type(raised.value) is expected
    assert (raised.value.code, raised.value.http_status) == (code, http_status)
    assert raised.value.raw_body == json.dumps(body)
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize("http_status", [200, 400])
@pytest.mark.parametrize(("code", "_", "expected"), CODES)
async def test_every_code_in_the_older_envelope(code, _, expected, http_status) -> None:
    body = {"status": code, "comment": "price changed" if code == "WRONG_PRICE" else "no"}
    client, _seen, _sleeps = make_client(lambda r: answer(http_status, body))
    with pytest.raises(expected) as raised:
        await client.find_offer("2061")
    assert type(raised.value) is expected
    assert raised.value.code == code and raised.value.raw_body == json.dumps(body)
    assert raised.value.supplier_message == body["comment"]


async def test_an_unknown_older_status_without_a_comment_is_not_taken_for_success() -> None:
    client, _, _ = make_client(lambda r: answer(200, {"status": "BANNED"}))
    with pytest.raises(errors.UnknownSupplierError):
        await client.find_offer("2061")


async def test_a_401_without_a_code_is_an_invalid_token() -> None:
    client, _, _ = make_client(lambda r: answer(401, "Unauthorized"))
    with pytest.raises(errors.InvalidToken):
        await client.find_offer("2061")


# -- reads are retried -------------------------------------------------------------------


async def test_reads_retry_5xx_then_succeed() -> None:
    replies = iter([answer(503, {"error": {"code": "SERVICE_UNAVAILABLE"}}), answer(502, "bad")])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(replies, None) or answer(200, FIND_ONE_KEY)

    client, seen, sleeps = make_client(handler)
    offer = await client.find_offer("2061")
    assert offer.price == Decimal("674.47") and len(seen) == 3 and len(sleeps) == 2
    assert all(delay <= 0.0125 for delay in sleeps)  # capped backoff


async def test_reads_wait_the_retry_after_of_a_429() -> None:
    replies = iter([answer(429, {"error": {"code": "TOO_MANY_REQUESTS"}}, {"Retry-After": "3"})])
    client, seen, sleeps = make_client(lambda r: next(replies, None) or answer(200, FIND_ONE_KEY))
    await client.find_offer("2061")
    assert sleeps == [3.0] and len(seen) == 2


async def test_a_retry_after_longer_than_allowed_is_raised_at_once() -> None:
    client, seen, sleeps = make_client(
        lambda r: answer(429, {"error": {"code": "RATE_LIMITED"}}, {"Retry-After": "60"})
    )
    with pytest.raises(errors.RateLimited) as raised:
        await client.get_order(order_id="10502")
    assert raised.value.retry_after == 60.0 and len(seen) == 1 and sleeps == []


async def test_reads_give_up_after_the_last_attempt() -> None:
    client, seen, _ = make_client(lambda r: answer(500, {"error": {"code": "SERVICE_UNAVAILABLE"}}))
    with pytest.raises(errors.ServiceUnavailable):
        await client.find_offer("2061")
    assert len(seen) == 3


async def test_read_timeouts_are_retried_then_raised_as_supplier_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, seen, _ = make_client(handler)
    with pytest.raises(errors.SupplierTimeout):
        await client.get_order(order_id="1")
    assert len(seen) == 3


async def test_a_field_validation_5xx_is_not_retried() -> None:
    body = {"error": {"code": "SERVICE_UNAVAILABLE", "message": "Field validation for 'GameUserID' failed"}}  # fmt: skip
    client, seen, _ = make_client(lambda r: answer(500, body))
    with pytest.raises(errors.FieldValidationFailed):
        await client.find_offer("2061")
    assert len(seen) == 1


# -- create-order ----------------------------------------------------------------------


async def test_create_order_for_a_gift_card_sends_no_customer_and_returns_the_key() -> None:
    client, seen, _ = make_client(lambda r: answer(200, ORDER_COMPLETED))
    order = await client.create_order("2061", Decimal("674.47"), "112321124214", Customer())
    assert sent(seen[0]) == {
        "offerId": 2061, "price": Decimal("674.47"), "transactionId": "112321124214",
    }  # fmt: skip
    assert str(seen[0].url) == f"{BASE}/api/v1/offers/create-order"
    assert (order.order_id, order.status, order.all_keys) == (
        "10502", OrderStatus.COMPLETED, ["001434249936"],
    )  # fmt: skip


async def test_create_order_for_a_top_up_sends_the_customer() -> None:
    reply = {**ORDER_PROCESSING, "isReturnDataForCustomer": False}
    client, seen, _ = make_client(lambda r: answer(200, reply))
    order = await client.create_order(
        "2061", Decimal("674.47"), "112321124214", Customer(game_user_id="52357322414")
    )
    assert sent(seen[0])["customer"] == {"gameUserId": "52357322414"}
    assert order.status is OrderStatus.PROCESSING and order.all_keys == []


async def test_prices_go_back_with_exactly_the_digits_received() -> None:
    offer_text = '{"offerId":7,"productName":"P","offerName":"O","price":560.10,"currency":"RUB"}'
    replies = {"/api/v1/offers/find-one": offer_text}

    def handler(request: httpx.Request) -> httpx.Response:
        text = replies.get(request.url.path) or json.dumps(ORDER_PROCESSING)
        return httpx.Response(200, text=text)

    client, seen, _ = make_client(handler)
    offer = await client.find_offer("7")
    await client.create_order("7", offer.price, "t-1", Customer())
    assert b'"price":560.10' in seen[1].content
    with pytest.raises(TypeError):
        await client.create_order("7", 560.1, "t-2", Customer())  # type: ignore[arg-type]


async def test_create_order_in_the_older_ok_envelope() -> None:
    client, _, _ = make_client(lambda r: answer(200, legacy_ok(ORDER_COMPLETED)))
    order = await client.create_order("2061", Decimal("674.47"), "t", Customer())
    assert (order.order_id, order.status, order.key) == ("10502", OrderStatus.COMPLETED, "001434249936")  # fmt: skip


async def test_an_older_ok_without_an_order_status_is_a_made_order_still_processing() -> None:
    client, _, _ = make_client(lambda r: answer(200, {"status": "OK", "comment": "", "orderId": 9}))
    order = await client.create_order("2061", Decimal("1"), "t", Customer())
    assert (order.order_id, order.status) == ("9", OrderStatus.PROCESSING)


@pytest.mark.parametrize(
    "reply",
    [answer(200, {"status": "TXN_DUPLICATE", "comment": "exists"}),
     answer(409, {"error": {"code": "TRANSACTION_DUPLICATE", "message": "dup"}})],
    ids=["older", "documented"],
)  # fmt: skip
async def test_a_duplicate_transaction_id_means_the_order_exists(reply) -> None:
    client, seen, _ = make_client(lambda r: reply)
    with pytest.raises(errors.TransactionDuplicate):
        await client.create_order("2061", Decimal("674.47"), "t", Customer())
    assert len(seen) == 1


@pytest.mark.parametrize("http_status", [500, 502, 503, 504])
async def test_create_order_5xx_is_an_unknown_outcome_and_never_retried(http_status) -> None:
    reply = answer(http_status, {"error": {"code": "SERVICE_UNAVAILABLE"}}, {"Retry-After": "5"})
    client, seen, sleeps = make_client(lambda r: reply)
    with pytest.raises(errors.OrderOutcomeUnknown) as raised:
        await client.create_order("2061", Decimal("674.47"), "tx-5xx", Customer())
    assert raised.value.transaction_id == "tx-5xx" and raised.value.retry_after == 5.0
    assert len(seen) == 1 and sleeps == []


async def test_create_order_read_timeout_is_an_unknown_outcome_and_never_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, seen, _ = make_client(handler)
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order("2061", Decimal("674.47"), "tx-slow", Customer())
    assert len(seen) == 1


@pytest.mark.parametrize("text", ["", "<html>502</html>"])
async def test_create_order_unreadable_answer_is_an_unknown_outcome(text) -> None:
    client, _, _ = make_client(lambda r: httpx.Response(200, text=text))
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order("2061", Decimal("674.47"), "t", Customer())


async def test_create_order_with_an_unheard_of_status_is_an_unknown_outcome() -> None:
    client, _, _ = make_client(lambda r: answer(200, {**ORDER_COMPLETED, "status": "QUEUED"}))
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order("2061", Decimal("674.47"), "t", Customer())


async def test_create_order_refused_connection_is_a_connection_error_not_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, seen, _ = make_client(handler)
    with pytest.raises(errors.SupplierConnectionError) as raised:
        await client.create_order("2061", Decimal("674.47"), "t", Customer())
    assert not isinstance(raised.value, errors.OrderOutcomeUnknown) and len(seen) == 1


async def test_create_order_429_is_rate_limited_and_not_retried() -> None:
    reply = answer(429, {"error": {"code": "TOO_MANY_REQUESTS"}}, {"Retry-After": "2"})
    client, seen, _ = make_client(lambda r: reply)
    with pytest.raises(errors.RateLimited) as raised:
        await client.create_order("2061", Decimal("674.47"), "t", Customer())
    assert raised.value.retry_after == 2.0 and len(seen) == 1


async def test_create_order_refusals_keep_their_codes() -> None:
    body = {"status": "WRONG_PRICE", "comment": "current price is 700.00"}
    client, _, _ = make_client(lambda r: answer(200, body))
    with pytest.raises(errors.WrongPrice) as raised:
        await client.create_order("2061", Decimal("674.47"), "t", Customer())
    assert raised.value.supplier_message == "current price is 700.00"


# -- order-status ----------------------------------------------------------------------


async def test_minimal_order_status_keeps_the_order_id_asked_for() -> None:
    client, seen, _ = make_client(
        lambda r: answer(200, {"status": "PROCESSING", "isReturnDataForCustomer": True})
    )
    order = await client.get_order(order_id="10502")
    assert seen[0].content == b'{"orderId":10502}'
    assert str(seen[0].url) == f"{BASE}/api/v1/offers/order-status"
    assert (order.order_id, order.status, order.is_return_data_for_customer) == (
        "10502", OrderStatus.PROCESSING, True,
    )  # fmt: skip
    assert order.key is None and order.price is None


@pytest.mark.parametrize("status", ["PROCESSING", "COMPLETED", "CANCELED", "REFUND"])
async def test_every_documented_status(status) -> None:
    client, _, _ = make_client(
        lambda r: answer(200, {"status": status, "isReturnDataForCustomer": False})
    )
    order = await client.get_order(order_id="1")
    assert order.status == OrderStatus(status)
    assert order.status.is_final == (status != "PROCESSING")
    assert order.status.is_failure == (status in {"CANCELED", "REFUND"})


async def test_full_order_status_in_the_older_envelope_by_transaction_id() -> None:
    client, seen, _ = make_client(lambda r: answer(200, legacy_ok(ORDER_COMPLETED)))
    order = await client.get_order(transaction_id="112321124214")
    assert sent(seen[0]) == {"transactionId": "112321124214"}
    assert (order.order_id, order.status, order.key) == ("10502", OrderStatus.COMPLETED, "001434249936")  # fmt: skip


async def test_order_status_needs_an_id() -> None:
    client, _, _ = make_client(lambda r: answer(200, {}))
    with pytest.raises(ValueError):
        await client.get_order()


async def test_resolve_order_reads_the_duplicate_instead_of_ordering_twice() -> None:
    replies = iter(
        [
            answer(404, {"error": {"code": "ORDER_NOT_FOUND"}}),
            answer(200, {"status": "TXN_DUPLICATE", "comment": "exists"}),
            answer(200, {"status": "COMPLETED", "isReturnDataForCustomer": True}),
        ]
    )
    client, seen, _ = make_client(lambda r: next(replies))
    order = await client.resolve_order("2061", Decimal("674.47"), "tx-9", Customer())
    assert order.status is OrderStatus.COMPLETED
    assert [r.url.path.rsplit("/", 1)[1] for r in seen] == ["order-status", "create-order", "order-status"]  # fmt: skip
    assert all(sent(r)["transactionId"] == "tx-9" for r in seen)


# -- keys ------------------------------------------------------------------------------

COMPLETED_KEY_ORDER = SupplierOrder(
    order_id="10502", status=OrderStatus.COMPLETED, is_return_data_for_customer=True
)


@pytest.mark.parametrize(
    ("reply", "keys"),
    [
        ({"key": "001434249936"}, ["001434249936"]),
        ({"key": ["AAA-1", "BBB-2"]}, ["AAA-1", "BBB-2"]),
        ({"keys": ["AAA-1", "BBB-2"]}, ["AAA-1", "BBB-2"]),
        (legacy_ok({"key": ["AAA-1", "BBB-2"]}), ["AAA-1", "BBB-2"]),
    ],
    ids=["string", "list", "keys-list", "older-envelope"],
)
async def test_keys_as_a_string_or_a_list(reply, keys) -> None:
    client, seen, _ = make_client(lambda r: answer(200, reply))
    assert await client.fetch_keys(COMPLETED_KEY_ORDER, "tx") == keys
    assert str(seen[0].url) == f"{BASE}/api/v1/offers/keys"
    assert seen[0].content == b'{"orderId":10502}'


async def test_keys_are_never_asked_for_a_top_up() -> None:
    client, seen, _ = make_client(lambda r: answer(200, {"key": "X"}))
    top_up = SupplierOrder(order_id="1", status="COMPLETED", is_return_data_for_customer=False)
    with pytest.raises(KeysNotReturned) as raised:
        await client.fetch_keys(top_up, "tx")
    assert seen == [] and isinstance(raised.value, errors.FixRequestError)
    assert "top-up" in str(raised.value)


@pytest.mark.parametrize(
    "reply",
    [answer(400, {"error": {"code": "NO_DATA", "message": "isReturnDataForCustomer is false"}}),
     answer(200, {"status": "ERROR", "comment": "isReturnDataForCustomer is false"}),
     answer(400, "bad request")],
    ids=["documented", "older", "no-envelope"],
)  # fmt: skip
async def test_the_keys_endpoint_refusing_is_keys_not_returned(reply) -> None:
    client, _, _ = make_client(lambda r: reply)
    with pytest.raises(KeysNotReturned) as raised:
        await client.fetch_keys(COMPLETED_KEY_ORDER, "tx")
    assert raised.value.raw_body == reply.text


async def test_keys_of_an_order_not_completed_keep_their_own_error() -> None:
    client, _, _ = make_client(lambda r: answer(409, {"error": {"code": "ORDER_NOT_COMPLETED"}}))
    with pytest.raises(errors.OrderNotCompleted):
        await client.fetch_keys(COMPLETED_KEY_ORDER, "tx")


async def test_keys_answer_without_a_key_is_an_error_not_an_empty_delivery() -> None:
    client, _, _ = make_client(lambda r: answer(200, {"key": []}))
    with pytest.raises(errors.UnknownSupplierError, match="no key"):
        await client.fetch_keys(COMPLETED_KEY_ORDER, "tx")


async def test_keys_by_transaction_id_when_the_order_id_is_unknown() -> None:
    client, seen, _ = make_client(lambda r: answer(200, {"key": "K"}))
    minimal = SupplierOrder(status="COMPLETED", is_return_data_for_customer=True)
    assert await client.fetch_keys(minimal, "tx-7") == ["K"]
    assert sent(seen[0]) == {"transactionId": "tx-7"}


async def test_keys_already_delivered_need_no_call() -> None:
    client, seen, _ = make_client(lambda r: answer(500, {}))
    done = SupplierOrder(order_id="1", status="COMPLETED", key="K1")
    assert await client.fetch_keys(done, "tx") == ["K1"] and seen == []


async def test_keys_reads_are_retried_on_5xx() -> None:
    replies = iter([answer(503, {"error": {"code": "SERVICE_UNAVAILABLE"}})])
    client, seen, _ = make_client(lambda r: next(replies, None) or answer(200, {"key": "K"}))
    assert await client.fetch_keys(COMPLETED_KEY_ORDER, "tx") == ["K"] and len(seen) == 2
