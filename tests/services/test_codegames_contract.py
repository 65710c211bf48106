"""Contract: the CodeGames client against the CodeGames sandbox over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from sandboxes import SupplierSandbox
from sandboxes.codegames import (
    DEFAULT_TOKEN,
    KEY_LATER_OFFER_ID,
    KEY_LIST_OFFER_ID,
    KEY_NOW_OFFER_ID,
    TOP_UP_OFFER_ID,
    CodeGamesSandbox,
    create_sandbox,
)
from services.suppliers import errors
from services.suppliers.base import Customer
from services.suppliers.codegames import VENDOR, CodeGamesSettings
from services.suppliers.codegames.client import (
    CodeGamesClient,
    KeysNotReturned,
    RetryPolicy,
    Timeouts,
)
from services.suppliers.models import OrderStatus, SupplierOrder

KEYS_PATH = "/api/v1/offers/keys"
PLAYER = Customer(game_user_id="52357322414")
NO_CUSTOMER = Customer()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=[False, True], ids=["documented", "older-envelope"])
async def cg_sandbox(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[CodeGamesSandbox]:  # fmt: skip
    sandbox = create_sandbox(legacy_envelope=request.param, process_seconds=60, clock=clock)
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def cg_client(cg_sandbox: CodeGamesSandbox, sleeps: Sleeps) -> AsyncIterator[CodeGamesClient]:
    async with httpx.AsyncClient() as http:
        yield CodeGamesClient(
            http, DEFAULT_TOKEN, base_url=cg_sandbox.base_url, sleep=sleeps,
            timeouts=Timeouts(read=2, create_order=0.5), retry=RetryPolicy(attempts=3),
        )  # fmt: skip


async def _buy(client: CodeGamesClient, offer_id: str, tx: str, customer: Customer = NO_CUSTOMER):
    offer = await client.find_offer(offer_id)
    return await client.create_order(offer_id, offer.price, tx, customer)


# -- the sandbox as a product -----------------------------------------------------------


async def test_sandbox_settings_build_a_working_client(cg_sandbox: CodeGamesSandbox) -> None:
    as_protocol: SupplierSandbox = cg_sandbox  # typed: the sandbox offers what the shop needs
    assert as_protocol.vendor == VENDOR.name == "codegames"
    section = CodeGamesSettings(**cg_sandbox.supplier_settings())
    assert section.enabled()
    assert {KEY_NOW_OFFER_ID, KEY_LATER_OFFER_ID, KEY_LIST_OFFER_ID, TOP_UP_OFFER_ID} <= set(
        section.offer_ids
    )
    async with httpx.AsyncClient() as http:
        client = VENDOR.build(section, http)
        offers = [await client.find_offer(offer_id) for offer_id in section.offer_ids]
    assert len(offers) == len(section.offer_ids) == 20


async def test_offers_n_gives_a_big_deterministic_catalogue() -> None:
    first, second = create_sandbox(offers=5000), create_sandbox(offers=5000)
    assert len(first.offers) == 5000
    assert [(o.offer_id, o.price) for o in first.offers.values()] == [
        (o.offer_id, o.price) for o in second.offers.values()
    ]
    await first.start()
    try:
        async with httpx.AsyncClient() as http:
            client = CodeGamesClient(http, DEFAULT_TOKEN, base_url=first.base_url)
            last = await client.find_offer(first.supplier_settings()["offer_ids"][-1])
    finally:
        await first.stop()
    assert last.price > 0


async def test_python_m_sandboxes_codegames_serves_the_api() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandboxes.codegames", "--port", "0", "--offers", "50",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert "with 50 offers" in line
        base_url = line.split(" on ", 1)[1].split()[0]
        async with httpx.AsyncClient() as http:
            offer = await CodeGamesClient(http, DEFAULT_TOKEN, base_url=base_url).find_offer(
                KEY_NOW_OFFER_ID
            )
        assert offer.price == Decimal("674.47")
    finally:
        process.terminate()
        await process.wait()


# -- find-one --------------------------------------------------------------------------


async def test_find_one_gift_card_and_top_up(cg_client: CodeGamesClient) -> None:
    card = await cg_client.find_offer(KEY_NOW_OFFER_ID)
    assert (card.product_name, card.offer_name, card.price, card.currency) == (
        "PUBG", "60 UC", Decimal("674.47"), "KZT",
    )  # fmt: skip
    assert card.is_return_data_for_customer and not card.requires_game_user_id
    top_up = await cg_client.find_offer(TOP_UP_OFFER_ID)
    assert top_up.requires_game_user_id and not top_up.is_return_data_for_customer


async def test_find_one_unknown_offer_and_bad_id(cg_client: CodeGamesClient) -> None:
    with pytest.raises(errors.OfferNotFound):
        await cg_client.find_offer("1")
    with pytest.raises(errors.InvalidRequestBody):
        await cg_client.find_offer("not-a-number")


async def test_a_wrong_token_is_refused(cg_sandbox: CodeGamesSandbox) -> None:
    async with httpx.AsyncClient() as http:
        client = CodeGamesClient(http, "wrong", base_url=cg_sandbox.base_url)
        with pytest.raises(errors.InvalidToken):
            await client.find_offer(KEY_NOW_OFFER_ID)


# -- key orders ------------------------------------------------------------------------


async def test_gift_card_completed_at_once_with_its_key(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    order = await _buy(cg_client, KEY_NOW_OFFER_ID, "tx-now")
    assert order.status is OrderStatus.COMPLETED and len(order.all_keys) == 1
    assert order.price == Decimal("674.47") and order.is_return_data_for_customer
    status = await cg_client.get_order(order_id=order.order_id)
    assert (status.order_id, status.status, status.key) == (order.order_id, OrderStatus.COMPLETED, None)  # fmt: skip
    cg_sandbox.config.full_status = True
    full = await cg_client.get_order(transaction_id="tx-now")
    assert full.all_keys == order.all_keys and full.order_id == order.order_id
    assert cg_sandbox.calls.get(KEYS_PATH, 0) == 0


async def test_key_order_completed_without_a_key_is_fetched_from_offers_keys(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox, clock: Clock
) -> None:
    order = await _buy(cg_client, KEY_LATER_OFFER_ID, "tx-later")
    assert order.status is OrderStatus.PROCESSING and order.all_keys == []
    with pytest.raises(errors.OrderNotCompleted):
        await cg_client.fetch_keys(order, "tx-later")
    clock.now += 61
    cg_sandbox.config.full_status = True  # even the full answer carries no key for this offer
    done = await cg_client.get_order(order_id=order.order_id)
    assert done.status is OrderStatus.COMPLETED and done.all_keys == []
    keys = await cg_client.fetch_keys(done, "tx-later")
    assert keys == cg_sandbox.orders[int(order.order_id)].keys and len(keys[0]) == 12


async def test_two_codes_come_as_a_list(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox, clock: Clock
) -> None:
    order = await _buy(cg_client, KEY_LIST_OFFER_ID, "tx-list")
    clock.now += 61
    done = await cg_client.get_order(order_id=order.order_id)
    keys = await cg_client.fetch_keys(done, "tx-list")
    assert len(keys) == 2 and len(set(keys)) == 2


async def test_one_code_as_a_list_and_keys_by_transaction_id(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    cg_sandbox.config.keys_as_list = True
    order = await _buy(cg_client, KEY_NOW_OFFER_ID, "tx-one")
    minimal = await cg_client.get_order(transaction_id="tx-one")
    assert minimal.order_id is None
    assert await cg_client.fetch_keys(minimal, "tx-one") == order.all_keys


@pytest.mark.parametrize(
    ("player", "status", "keys_error"),
    [("55555555", OrderStatus.CANCELED, errors.OrderAlreadyCanceled),
     ("77777777", OrderStatus.REFUND, errors.OrderAlreadyRefunded)],
)  # fmt: skip
async def test_canceled_and_refunded_orders_have_no_keys(
    cg_client: CodeGamesClient, clock: Clock, player, status, keys_error
) -> None:
    order = await _buy(cg_client, KEY_LATER_OFFER_ID, f"tx-{player}", Customer(game_user_id=player))
    clock.now += 61
    final = await cg_client.get_order(order_id=order.order_id)
    assert final.status is status and final.status.is_failure
    with pytest.raises(keys_error):
        await cg_client.fetch_keys(final, f"tx-{player}")


# -- top-ups ---------------------------------------------------------------------------


async def test_top_up_completed_with_no_keys_call(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox, clock: Clock
) -> None:
    order = await _buy(cg_client, TOP_UP_OFFER_ID, "tx-topup", PLAYER)
    assert order.status is OrderStatus.PROCESSING and order.is_return_data_for_customer is False
    assert cg_sandbox.orders[int(order.order_id)].game_user_id == "52357322414"
    clock.now += 61
    done = await cg_client.get_order(order_id=order.order_id)
    assert done.status is OrderStatus.COMPLETED and done.all_keys == []
    with pytest.raises(KeysNotReturned):
        await cg_client.fetch_keys(done, "tx-topup")
    assert cg_sandbox.calls.get(KEYS_PATH, 0) == 0


async def test_the_keys_endpoint_refuses_a_top_up(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    order = await _buy(cg_client, TOP_UP_OFFER_ID, "tx-refused", PLAYER)
    unknown_kind = SupplierOrder(order_id=order.order_id, status="COMPLETED")
    with pytest.raises(KeysNotReturned) as raised:
        await cg_client.fetch_keys(unknown_kind, "tx-refused")
    assert raised.value.http_status in (200, 400) and cg_sandbox.calls[KEYS_PATH] == 1


async def test_top_up_without_the_required_player_id_is_refused(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    with pytest.raises(errors.InvalidRequestBody):
        await _buy(cg_client, TOP_UP_OFFER_ID, "tx-no-player")
    assert cg_sandbox.orders == {}


# -- create-order refusals --------------------------------------------------------------


async def test_price_must_cover_the_current_one(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    offer = await cg_client.find_offer(KEY_NOW_OFFER_ID)
    cg_sandbox.set_price(KEY_NOW_OFFER_ID, Decimal("700.00"))
    with pytest.raises(errors.WrongPrice):
        await cg_client.create_order(KEY_NOW_OFFER_ID, offer.price, "tx-old", Customer())
    fresh = await cg_client.find_offer(KEY_NOW_OFFER_ID)
    order = await cg_client.create_order(KEY_NOW_OFFER_ID, fresh.price, "tx-fresh", Customer())
    assert order.price == Decimal("700.00")


async def test_duplicate_transaction_id_means_the_order_exists(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    await _buy(cg_client, KEY_NOW_OFFER_ID, "tx-dup")
    with pytest.raises(errors.TransactionDuplicate) as raised:
        await _buy(cg_client, KEY_NOW_OFFER_ID, "tx-dup")
    expected = "TXN_DUPLICATE" if cg_sandbox.config.legacy_envelope else "TRANSACTION_DUPLICATE"
    assert raised.value.code == expected and len(cg_sandbox.orders) == 1


async def test_out_of_stock_insufficient_balance_gone_offer_unknown_order(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    cg_sandbox.faults.out_of_stock.add(int(KEY_NOW_OFFER_ID))
    with pytest.raises(errors.OutOfStock):
        await _buy(cg_client, KEY_NOW_OFFER_ID, "tx-stock")
    cg_sandbox.balance_usd = Decimal("1.00")
    with pytest.raises(errors.InsufficientBalance):
        await _buy(cg_client, KEY_LATER_OFFER_ID, "tx-poor")
    offer = await cg_client.find_offer(KEY_LIST_OFFER_ID)
    cg_sandbox.remove_offer(KEY_LIST_OFFER_ID)
    with pytest.raises(errors.OfferNotFound):
        await cg_client.create_order(KEY_LIST_OFFER_ID, offer.price, "tx-gone", Customer())
    with pytest.raises(errors.OrderNotFound):
        await cg_client.get_order(order_id="1")
    with pytest.raises(errors.OrderNotFound):
        await cg_client.get_order(transaction_id="tx-never")
    with pytest.raises(errors.OrderNotFound):
        await cg_client.fetch_keys(SupplierOrder(order_id="1", status="COMPLETED"), "tx")
    assert cg_sandbox.orders == {}


# -- faults ----------------------------------------------------------------------------


async def test_reads_ride_out_503_and_429_with_retry_after(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox, sleeps: Sleeps
) -> None:
    cg_sandbox.faults.retry_after = 2
    cg_sandbox.faults.rate_limited = 1
    cg_sandbox.faults.unavailable = 1
    offer = await cg_client.find_offer(KEY_NOW_OFFER_ID)
    assert offer.price == Decimal("674.47") and sleeps == [2.0, 2.0]
    cg_sandbox.faults.unavailable = 3
    with pytest.raises(errors.ServiceUnavailable):
        await cg_client.find_offer(KEY_NOW_OFFER_ID)


async def test_create_order_rate_limited_makes_nothing_and_is_not_retried(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox
) -> None:
    offer = await cg_client.find_offer(KEY_NOW_OFFER_ID)
    cg_sandbox.faults.rate_limited = 1
    with pytest.raises(errors.RateLimited) as raised:
        await cg_client.create_order(KEY_NOW_OFFER_ID, offer.price, "tx-429", Customer())
    assert raised.value.retry_after == 1.0 and cg_sandbox.orders == {}


@pytest.mark.parametrize(
    ("fault", "made"),
    [("create_unavailable", False), ("create_unavailable_after_making", True),
     ("drop_create_answers", True), ("create_latency", True)],
)  # fmt: skip
async def test_unknown_outcome_is_resolved_without_a_second_order(
    cg_client: CodeGamesClient, cg_sandbox: CodeGamesSandbox, fault: str, made: bool
) -> None:
    offer = await cg_client.find_offer(TOP_UP_OFFER_ID)
    setattr(cg_sandbox.faults, fault, 1.0 if fault == "create_latency" else 1)
    with pytest.raises(errors.OrderOutcomeUnknown) as raised:
        await cg_client.create_order(TOP_UP_OFFER_ID, offer.price, "tx-unknown", PLAYER)
    assert raised.value.transaction_id == "tx-unknown"
    assert len(cg_sandbox.orders) == (1 if made else 0)
    order = await cg_client.resolve_order(TOP_UP_OFFER_ID, offer.price, "tx-unknown", PLAYER)
    assert order.status is OrderStatus.PROCESSING and len(cg_sandbox.orders) == 1
    assert cg_sandbox.calls["/api/v1/offers/create-order"] == (1 if made else 2)
