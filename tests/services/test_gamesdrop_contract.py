"""Contract: the GamesDrop client against the sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from sandboxes.gamesdrop import (
    DEFAULT_TOKEN,
    STARS_OFFER_IDS,
    TEST_OFFER_ID,
    GamesDropSandbox,
)
from services.suppliers import errors
from services.suppliers.base import Customer
from services.suppliers.gamesdrop.client import GamesDropClient
from services.suppliers.models import OrderStatus

PUBG_60 = 10_001
GENSHIN_60 = 10_010


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_balance_and_transactions(client: GamesDropClient) -> None:
    balance = await client.get_balance()
    assert (balance.balance, balance.currency, balance.balance_profile, balance.is_postpaid) == (
        Decimal("500.00"), "USD", "MIXED", False,
    )  # fmt: skip
    offer = await client.find_offer(str(PUBG_60))
    await client.create_order(str(PUBG_60), offer.price, "t-bal", Customer(game_user_id="12345678"))
    after = await client.get_balance()
    page = await client.list_transactions(page=1, limit=1)
    assert after.balance == Decimal("500.00") - offer.price
    assert page.total == 2 and page.transactions[0].type == "PURCHASE"
    assert page.transactions[0].amount == -offer.price


async def test_older_accounts_answer_only_the_older_balance_path(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.config.balance_paths = ("/api/v1/balance",)
    balance = await client.get_balance()
    assert balance.balance == Decimal("500.00") and balance.partner_id is None


async def test_find_one_of_test_offer_999(client: GamesDropClient) -> None:
    offer = await client.find_offer(str(TEST_OFFER_ID))
    assert (offer.product_name, offer.offer_name, offer.price, offer.currency) == (
        "Steam US", "TEST OFFER GROUP", Decimal("23.09"), "KZT",
    )  # fmt: skip
    assert offer.is_return_data_for_customer


async def test_test_offer_999_returns_a_key_and_costs_nothing(client: GamesDropClient) -> None:
    order = await client.create_order(
        str(TEST_OFFER_ID), Decimal("23.09"), "t-999", Customer(game_user_id="123456789")
    )
    assert order.status is OrderStatus.COMPLETED and order.key
    assert (await client.get_balance()).balance == Decimal("500.00")
    by_transaction = await client.get_order(transaction_id="t-999")
    assert by_transaction.order_id == order.order_id and by_transaction.key == order.key


async def test_sync_iterates_a_large_catalogue_completely(http: httpx.AsyncClient) -> None:
    from sandboxes.gamesdrop import SandboxConfig

    big = GamesDropSandbox(SandboxConfig(offers=5_000))
    await big.start()
    try:
        client = GamesDropClient(http, DEFAULT_TOKEN, base_url=big.base_url)
        ids = [row.offer_group_id async for row in client.iter_catalogue(page_size=700)]
        assert len(ids) == len(set(ids)) == 5_000
        stars = [row async for row in client.iter_catalogue(page_size=50, search="telegram stars")]
        assert sorted(r.offer_group_id for r in stars) == sorted(
            str(i) for i in STARS_OFFER_IDS.values()
        )
        page = await client.sync_page(1, 10, category="TOP_UP")
        assert page.rows and all(row.requires_game_user_id for row in page.rows)
    finally:
        await big.stop()


async def test_a_row_repeated_across_sync_pages_still_brings_every_offer(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.faults.sync_repeated_rows = 1
    ids = [row.offer_group_id async for row in client.iter_catalogue(page_size=100)]
    assert sorted(ids) == sorted(str(i) for i in sandbox.offers)


async def test_an_empty_or_shrunken_sync_answer_is_served_as_asked(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.faults.sync_offers = 0
    empty = await client.sync_page(1, 100)
    assert (empty.count, empty.rows) == (0, [])
    sandbox.faults.sync_offers = 20
    assert len([row async for row in client.iter_catalogue(page_size=100)]) == 20


async def test_servers_on_both_paths_and_check_game_data(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    servers = await client.get_servers(str(GENSHIN_60))
    assert ("Europe", "os_euro") in servers
    raw = await httpx.AsyncClient().post(
        f"{sandbox.base_url}/api/v1/partner/product-offer/servers", json={"offerId": GENSHIN_60},
        headers={"Authorization": DEFAULT_TOKEN},
    )  # fmt: skip
    assert raw.json()["Europe"] == "os_euro"
    valid = await client.check_player(str(GENSHIN_60), "12345678", "os_euro")
    assert valid.is_valid and valid.game_user_login == "DragonSlayer"
    invalid = await client.check_player(str(GENSHIN_60), "00000", "os_euro")
    assert not invalid.is_valid and invalid.message == "Игрок не найден"
    unknown_offer = await client.check_player("123456789", "12345678")
    assert not unknown_offer.is_valid


async def test_check_game_data_without_player_is_a_5xx_that_is_not_transient(
    client: GamesDropClient,
) -> None:
    with pytest.raises(errors.FieldValidationFailed, match="Field validation"):
        await client.check_player(str(GENSHIN_60), "")


async def test_telegram_user_info(client: GamesDropClient) -> None:
    found = await client.get_telegram_user("@igoryan34")
    assert found.user_id == 143_594_291 and found.user_info.first_name == "Igor"
    no_id = await client.get_telegram_user("shy_sam")
    assert no_id.valid and no_id.user_id is None


async def test_invalid_token(sandbox: GamesDropSandbox, http: httpx.AsyncClient) -> None:
    client = GamesDropClient(http, "wrong-token", base_url=sandbox.base_url)
    with pytest.raises(errors.InvalidToken) as raised:
        await client.find_offer(str(TEST_OFFER_ID))
    assert raised.value.http_status == 401 and "wrong-token" not in str(raised.value)


async def test_offer_not_found(client: GamesDropClient) -> None:
    with pytest.raises(errors.OfferNotFound):
        await client.find_offer("424242")


async def test_transaction_duplicate(client: GamesDropClient) -> None:
    await client.create_order(str(TEST_OFFER_ID), Decimal("23.09"), "t-dup", Customer())
    with pytest.raises(errors.TransactionDuplicate):
        await client.create_order(str(TEST_OFFER_ID), Decimal("23.09"), "t-dup", Customer())


async def test_wrong_price_and_price_drift(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    with pytest.raises(errors.WrongPrice):
        await client.create_order(str(TEST_OFFER_ID), Decimal("23.1"), "t-wp", Customer())
    sandbox.set_price(TEST_OFFER_ID, Decimal("24"))
    with pytest.raises(errors.WrongPrice):
        await client.create_order(str(TEST_OFFER_ID), Decimal("23.09"), "t-wp2", Customer())
    latest = await client.find_offer(str(TEST_OFFER_ID))
    order = await client.create_order(str(TEST_OFFER_ID), latest.price, "t-wp3", Customer())
    assert order.price == Decimal("24")


async def test_out_of_stock(sandbox: GamesDropSandbox, client: GamesDropClient) -> None:
    sandbox.faults.out_of_stock.add(PUBG_60)
    with pytest.raises(errors.OutOfStock):
        await client.create_order(
            str(PUBG_60), Decimal("0.99"), "t-oos", Customer(game_user_id="12345678")
        )


async def test_order_not_found(client: GamesDropClient) -> None:
    with pytest.raises(errors.OrderNotFound):
        await client.get_order(transaction_id="never-made")


async def test_service_unavailable_is_retried_then_raised(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.faults.unavailable = 1
    assert (await client.find_offer(str(TEST_OFFER_ID))).offer_id == str(TEST_OFFER_ID)
    sandbox.faults.unavailable = 5
    with pytest.raises(errors.ServiceUnavailable):
        await client.find_offer(str(TEST_OFFER_ID))


async def test_rate_limited_reads_are_retried(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.faults.rate_limited = 2
    assert (await client.get_balance()).balance == Decimal("500.00")


async def test_balance_unavailable(sandbox: GamesDropSandbox, client: GamesDropClient) -> None:
    sandbox.faults.balance_unavailable = 3
    with pytest.raises(errors.BalanceUnavailable):
        await client.get_balance()


async def test_string_offer_id_is_an_invalid_request_body(sandbox: GamesDropSandbox) -> None:
    async with httpx.AsyncClient() as raw:
        response = await raw.post(
            f"{sandbox.base_url}/api/v1/offers/create-order",
            json={"offerId": "999", "price": 23.09, "transactionId": "t-str"},
            headers={"Authorization": DEFAULT_TOKEN},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST_BODY"


async def test_required_player_and_server_are_enforced(client: GamesDropClient) -> None:
    offer = await client.find_offer(str(GENSHIN_60))
    with pytest.raises(errors.InvalidRequestBody):
        await client.create_order(str(GENSHIN_60), offer.price, "t-req1", Customer())
    with pytest.raises(errors.InvalidRequestBody):
        await client.create_order(
            str(GENSHIN_60), offer.price, "t-req2", Customer(game_user_id="12345678")
        )


async def test_insufficient_balance_on_a_prepaid_account(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.balance = Decimal("0.50")
    with pytest.raises(errors.InsufficientBalance):
        await client.create_order(
            str(PUBG_60), Decimal("0.99"), "t-ib", Customer(game_user_id="12345678")
        )
    sandbox.config.postpaid = True
    order = await client.create_order(
        str(PUBG_60), Decimal("0.99"), "t-ib2", Customer(game_user_id="12345678")
    )
    assert order.status is OrderStatus.SUBMITTED
    assert (await client.get_balance()).balance < 0


async def test_top_up_lifecycle_and_failed_order_credited_back(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    clock = Clock()
    sandbox.config.clock = clock
    sandbox.config.topup_seconds = 10
    ok = await client.create_order(
        str(PUBG_60), Decimal("0.99"), "t-life", Customer(game_user_id="12345678")
    )
    failed = await client.create_order(
        str(PUBG_60), Decimal("0.99"), "t-fail", Customer(game_user_id="77777777")
    )
    assert ok.status is OrderStatus.SUBMITTED
    clock.now += 6
    assert (await client.get_order(order_id=ok.order_id)).status is OrderStatus.PROCESSING
    clock.now += 5
    done = await client.get_order(order_id=ok.order_id)
    gone = await client.get_order(order_id=failed.order_id)
    assert done.status is OrderStatus.COMPLETED and done.key is None
    assert gone.status is OrderStatus.FAILED and gone.message == "Provider internal error"
    assert (await client.get_balance()).balance == Decimal("499.01")
    await client.get_order(order_id=failed.order_id)  # reading it again credits nothing more
    assert (await client.get_balance()).balance == Decimal("499.01")


async def test_canceled_top_up_carries_the_message(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.config.topup_seconds = 0
    order = await client.create_order(
        str(PUBG_60), Decimal("0.99"), "t-can", Customer(game_user_id="55555555")
    )
    status = await client.get_order(order_id=order.order_id)
    assert (
        status.status is OrderStatus.CANCELED and status.message == "Top-up rejected by game server"
    )


async def test_telegram_stars_orders_return_fulfillment_data(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    offer = await client.find_offer(STARS_OFFER_IDS[100])
    ok = await client.create_order(
        offer.offer_id, offer.price, "t-stars", Customer(game_user_id="1000002")
    )
    assert ok.status is OrderStatus.COMPLETED
    assert ok.fulfillment_data == {"telegram_user_id": 1000002, "stars_amount": 100, "delivery_status": "completed",
                                   "transaction_id": f"tg_tx_{ok.order_id}"}  # fmt: skip
    for user_id, reason in (
        (999_000_001, "user not found"),
        (1_000_004, "bot was blocked by user"),
        (1_000_005, "STARGIFT_INVALID"),
    ):
        failed = await client.create_order(
            offer.offer_id, offer.price, f"t-stars-{user_id}", Customer(game_user_id=str(user_id))
        )
        assert failed.status is OrderStatus.CANCELED and reason in (failed.message or "")
        assert failed.fulfillment_data["delivery_status"] == "failed"
    with pytest.raises(errors.InvalidRequestBody):
        await client.create_order(
            offer.offer_id, offer.price, "t-stars-name", Customer(game_user_id="@durov")
        )


async def test_stars_prices_follow_the_ton_rate(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    before = await client.find_offer(STARS_OFFER_IDS[1000])
    sandbox.set_ton_rate(Decimal("3.00"))
    after = await client.find_offer(STARS_OFFER_IDS[1000])
    assert before.price == Decimal("7.71") and after.price == Decimal("9.00")


async def test_lost_create_order_answer_is_resolved_without_a_second_order(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.faults.drop_create_answers = 1
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(str(TEST_OFFER_ID), Decimal("23.09"), "t-lost", Customer())
    order = await client.resolve_order(TEST_OFFER_ID, Decimal("23.09"), "t-lost", Customer())
    assert order.status is OrderStatus.COMPLETED and order.key
    assert len(sandbox.orders) == 1 and sandbox.create_order_calls == 1


async def test_unknown_outcome_for_an_order_never_made_is_placed_with_the_same_transaction_id(
    sandbox: GamesDropSandbox,
    client: GamesDropClient,
) -> None:
    order = await client.resolve_order(TEST_OFFER_ID, Decimal("23.09"), "t-never", Customer())
    assert order.status is OrderStatus.COMPLETED
    assert list(sandbox.orders_by_transaction) == ["t-never"]


async def test_slow_create_order_is_outcome_unknown(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    sandbox.faults.create_latency = 1.5  # the client's create-order timeout is 1 s here
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(str(TEST_OFFER_ID), Decimal("23.09"), "t-slow", Customer())
    sandbox.faults.create_latency = 0
    order = await client.resolve_order(TEST_OFFER_ID, Decimal("23.09"), "t-slow", Customer())
    assert order.order_id is not None and len(sandbox.orders) == 1


async def test_create_order_faults_seen_in_the_field(
    sandbox: GamesDropSandbox, client: GamesDropClient
) -> None:
    price = sandbox.offers[TEST_OFFER_ID].price
    sandbox.faults.retry_after = 9
    sandbox.faults.create_rate_limited = 1
    with pytest.raises(errors.RateLimited) as limited:
        await client.create_order(str(TEST_OFFER_ID), price, "f-1", Customer())
    assert (limited.value.code, limited.value.retry_after) == ("TOO_MANY_REQUESTS", 9)

    sandbox.faults.create_unavailable = 1
    with pytest.raises(errors.OrderOutcomeUnknown):
        await client.create_order(str(TEST_OFFER_ID), price, "f-2", Customer())
    assert "f-2" not in sandbox.orders_by_transaction

    sandbox.faults.create_unavailable_after_making = 1
    with pytest.raises(errors.OrderOutcomeUnknown) as unknown:
        await client.create_order(str(TEST_OFFER_ID), price, "f-3", Customer())
    assert unknown.value.retry_after == 9
    assert (await client.get_order(transaction_id="f-3")).status.value == "COMPLETED"

    sandbox.faults.create_field_validation = 1
    with pytest.raises(errors.FieldValidationFailed):
        await client.create_order(str(TEST_OFFER_ID), price, "f-4", Customer())
