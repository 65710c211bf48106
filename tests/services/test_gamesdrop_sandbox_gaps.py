"""The GamesDrop sandbox's once-missing behaviours, seen as a merchant sees them: plain
HTTP requests on 127.0.0.1 in the current merchant guide's wire format (numeric
``offerId`` and ``orderId``, the shop token bare in ``Authorization``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandboxes.gamesdrop import DEFAULT_TOKEN, TEST_OFFER_ID, GamesDropSandbox, SandboxConfig
from services import exact_json

PUBG_60 = 10_001  # settled MIXED: every account may buy it
FREE_FIRE_100 = 10_006  # settled USDT
MOBILE_LEGENDS_86 = 10_017  # settled FIAT, needs a server
STEAM_10 = 10_035  # a key product

Post = Callable[[str, dict[str, Any]], Awaitable[httpx.Response]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[GamesDropSandbox]]]:
    started: list[GamesDropSandbox] = []

    async def _start(**options: Any) -> GamesDropSandbox:
        sandbox = GamesDropSandbox(SandboxConfig(**options))
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield _start
    for sandbox in started:
        await sandbox.stop()


def poster(http: httpx.AsyncClient, sandbox: GamesDropSandbox) -> Post:
    async def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return await http.post(
            f"{sandbox.base_url}{path}",
            content=exact_json.dumps(body),
            headers={"Authorization": DEFAULT_TOKEN, "Content-Type": "application/json"},
        )

    return post


def body_of(response: httpx.Response) -> Any:
    return exact_json.loads(response.text)


def error_code(response: httpx.Response) -> str:
    return str(body_of(response)["error"]["code"])


async def balance_of(http: httpx.AsyncClient, sandbox: GamesDropSandbox) -> Decimal:
    response = await http.get(
        f"{sandbox.base_url}/api/v1/offers/balance", headers={"Authorization": DEFAULT_TOKEN}
    )
    return Decimal(body_of(response)["balance"])


COMPATIBLE = {
    "FIAT": {"FIAT", "MIXED"},
    "USDT": {"USDT", "MIXED"},
    "MIXED": {"FIAT", "USDT", "MIXED"},
}


@pytest.mark.parametrize(
    ("profile", "hidden"),
    [("USDT", MOBILE_LEGENDS_86), ("FIAT", FREE_FIRE_100), ("MIXED", None)],
)
async def test_offers_outside_the_balance_profile_are_hidden_and_refused(
    start: Callable[..., Awaitable[GamesDropSandbox]],
    http: httpx.AsyncClient,
    profile: str,
    hidden: int | None,
) -> None:
    mixed = await start()
    methods = {
        offer_id: body_of(
            await poster(http, mixed)("/api/v1/offers/find-one", {"offerId": offer_id})
        )["settlementMethod"]
        for offer_id in (PUBG_60, FREE_FIRE_100, MOBILE_LEGENDS_86)
    }
    assert methods == {PUBG_60: "MIXED", FREE_FIRE_100: "USDT", MOBILE_LEGENDS_86: "FIAT"}

    sandbox = await start(balance_profile=profile)
    post = poster(http, sandbox)
    synced = body_of(await post("/api/v1/offers/sync", {"limit": 5000, "page": 1}))
    synced_ids = {row["offerGroupId"] for row in synced["rows"]}
    assert synced["count"] == len(synced["rows"])
    assert synced_ids == {
        o.offer_id for o in sandbox.offers.values() if o.settlement_method in COMPATIBLE[profile]
    }
    assert TEST_OFFER_ID in synced_ids and PUBG_60 in synced_ids
    assert (synced_ids == set(sandbox.offers)) is (profile == "MIXED")
    visible = [i for i in (PUBG_60, FREE_FIRE_100, MOBILE_LEGENDS_86) if i != hidden]
    for offer_id in visible:
        found = body_of(await post("/api/v1/offers/find-one", {"offerId": offer_id}))
        assert (found["balanceProfile"], found["isSettlementCompatible"]) == (profile, True)
    if hidden is None:
        return
    assert hidden not in synced_ids
    before = await balance_of(http, sandbox)
    found = await post("/api/v1/offers/find-one", {"offerId": hidden})
    servers = await post("/api/v1/offers/servers", {"offerId": hidden})
    bought = await post(
        "/api/v1/offers/create-order",
        {"offerId": hidden, "price": sandbox.offers[hidden].price, "transactionId": "t-profile",
         "customer": {"gameUserId": "12345678", "gameServerId": "2001"}},
    )  # fmt: skip
    assert (found.status_code, error_code(found)) == (404, "OFFER_NOT_FOUND")
    assert (servers.status_code, error_code(servers)) == (404, "OFFER_NOT_FOUND")
    assert (bought.status_code, error_code(bought)) == (404, "OFFER_NOT_FOUND")
    nothing = await post("/api/v1/offers/order-status", {"transactionId": "t-profile"})
    assert error_code(nothing) == "ORDER_NOT_FOUND"
    assert await balance_of(http, sandbox) == before


async def test_a_refunded_order_reads_refund_and_its_money_comes_back(
    start: Callable[..., Awaitable[GamesDropSandbox]], http: httpx.AsyncClient
) -> None:
    clock = Clock()
    sandbox = await start(topup_seconds=10, clock=clock)
    post = poster(http, sandbox)
    price = sandbox.offers[PUBG_60].price
    made = body_of(
        await post(
            "/api/v1/offers/create-order",
            {"offerId": PUBG_60, "price": price, "transactionId": "t-refund",
             "customer": {"gameUserId": "88888888"}},
        )
    )  # fmt: skip
    assert made["status"] == "SUBMITTED"
    assert await balance_of(http, sandbox) == Decimal("500.00") - price
    clock.now += 6
    status = body_of(await post("/api/v1/offers/order-status", {"orderId": made["orderId"]}))
    assert status["status"] == "PROCESSING"
    clock.now += 5
    status = body_of(await post("/api/v1/offers/order-status", {"transactionId": "t-refund"}))
    assert status["status"] == "REFUND" and "key" not in status
    assert await balance_of(http, sandbox) == Decimal("500.00")
    history = body_of(
        await http.get(
            f"{sandbox.base_url}/api/v1/balance/transactions",
            headers={"Authorization": DEFAULT_TOKEN},
        )
    )
    assert [(t["type"], t["amount"]) for t in history["transactions"][:2]] == [
        ("REFUND", price), ("PURCHASE", -price),
    ]  # fmt: skip

    key_price = sandbox.offers[STEAM_10].price
    key_order = body_of(
        await post(
            "/api/v1/offers/create-order",
            {"offerId": STEAM_10, "price": key_price, "transactionId": "t-key"},
        )
    )
    assert key_order["status"] == "COMPLETED" and key_order["key"]
    sandbox.refund_order(key_order["orderId"])
    refunded = body_of(await post("/api/v1/offers/order-status", {"orderId": key_order["orderId"]}))
    assert refunded["status"] == "REFUND" and "key" not in refunded
    assert await balance_of(http, sandbox) == Decimal("500.00")


async def test_a_confirmed_price_covering_the_current_one_is_accepted(
    start: Callable[..., Awaitable[GamesDropSandbox]], http: httpx.AsyncClient
) -> None:
    sandbox = await start()
    post = poster(http, sandbox)
    confirmed = body_of(await post("/api/v1/offers/find-one", {"offerId": STEAM_10}))["price"]
    sandbox.set_price(STEAM_10, confirmed - Decimal("0.30"))  # the price fell since find-one
    order = await post(
        "/api/v1/offers/create-order",
        {"offerId": STEAM_10, "price": confirmed, "transactionId": "t-covers"},
    )
    assert order.status_code == 200
    assert body_of(order)["status"] == "COMPLETED"
    assert body_of(order)["price"] == confirmed - Decimal("0.30")  # charged the current price
    assert await balance_of(http, sandbox) == Decimal("500.00") - (confirmed - Decimal("0.30"))

    sandbox.set_price(STEAM_10, confirmed + Decimal("0.01"))  # it rose: no longer covered
    short = await post(
        "/api/v1/offers/create-order",
        {"offerId": STEAM_10, "price": confirmed, "transactionId": "t-short"},
    )
    assert (short.status_code, error_code(short)) == (409, "WRONG_PRICE")

    test_offer = await post(  # the test product wants its exact value (23.09 KZT)
        "/api/v1/offers/create-order",
        {"offerId": TEST_OFFER_ID, "price": Decimal("23.10"), "transactionId": "t-999"},
    )
    assert error_code(test_offer) == "WRONG_PRICE"

    exact = await start(exact_price=True)  # an account that still wants the exact price
    higher = await poster(http, exact)(
        "/api/v1/offers/create-order",
        {"offerId": STEAM_10, "price": exact.offers[STEAM_10].price + 1, "transactionId": "t-x"},
    )
    assert error_code(higher) == "WRONG_PRICE"
