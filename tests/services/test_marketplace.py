"""The marketplace screens' rules: codes read from lines or a CSV, prices typed by an
admin converted exactly (listings in decimal euros, offers in integer cents), and keys
moved from own stock to a listing (against the Seller API sandbox)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest

from sandboxes.gaming_goods import GamingGoodsSandbox, create_sandbox
from services.marketplace import (
    MAX_CODE_LENGTH,
    move_stock_to_listing,
    parse_listing_price,
    parse_offer_price,
    read_codes,
)
from services.parsing import BadNumber
from services.suppliers.errors import OfferNotFound
from services.suppliers.gaming_goods import SellerClient
from services.suppliers.marketplace import RuleViolation, WriteOutcomeUnknown
from services.suppliers.retry import RetryPolicy


def test_codes_are_one_per_line_trimmed_and_a_repeat_is_reported_with_its_line() -> None:
    batch = read_codes(" AAA-1 \n\nBBB-2\r\nAAA-1\n" + "X" * (MAX_CODE_LENGTH + 1) + "\nCCC-3")
    assert batch.codes == ["AAA-1", "BBB-2", "CCC-3"]
    assert batch.duplicates == [(4, "AAA-1")]
    assert batch.too_long == [5]


def test_a_csv_gives_its_first_column_and_skips_a_header() -> None:
    batch = read_codes('code,note\nAAA-1,first\n"BBB,2",quoted\nAAA-1,again\n', csv_file=True)
    assert batch.codes == ["AAA-1", "BBB,2"] and batch.duplicates == [(4, "AAA-1")]


@pytest.mark.parametrize(
    ("typed", "cents"), [("17.99", 1799), ("17,99", 1799), ("0.1", 10), ("5", 500), ("0.01", 1)]
)
def test_an_offer_price_typed_in_euros_becomes_exact_cents(typed: str, cents: int) -> None:
    assert parse_offer_price(typed) == cents and isinstance(parse_offer_price(typed), int)


@pytest.mark.parametrize("typed", ["1.999", "0", "-1", "1e3", "NaN", "", "100000.01", "abc"])
def test_a_price_that_is_not_whole_cents_in_range_is_refused(typed: str) -> None:
    with pytest.raises(BadNumber):
        parse_listing_price(typed)
    with pytest.raises(BadNumber):
        parse_offer_price(typed)


def test_a_listing_price_keeps_the_digits_typed() -> None:
    price = parse_listing_price("19.90")
    assert price == Decimal("19.90") and str(price) == "19.90"


# -- own stock -> marketplace ---------------------------------------------------------


@dataclass
class StockRow:
    id: int
    product_name: str
    offer_name: str
    keys: list[str]
    withdrawn: dict[str, list[str]] = field(default_factory=dict)

    @property
    def available(self) -> int:
        return len(self.keys)


class FakeStock:
    """Own stock as ``services/own_stock.py`` offers it to the marketplace screens (the
    documented ``withdraw_for_marketplace`` / ``return_withdrawn`` / ``products``)."""

    def __init__(self, *rows: StockRow) -> None:
        self.rows = {str(row.id): row for row in rows}
        self.batches = 0

    async def products(self) -> list[StockRow]:
        return list(self.rows.values())

    async def withdraw_for_marketplace(self, offer_id: str, count: int, *, by=None):
        if count < 1:
            raise ValueError("count must be at least 1")
        row = self.rows.get(offer_id)
        if row is None:
            raise OfferNotFound(None, 404, "", "no such own-stock product", "own_stock")
        if len(row.keys) < count:
            raise NotEnough(count, len(row.keys))
        self.batches += 1
        batch = f"mp-{self.batches}"
        row.withdrawn[batch], row.keys = row.keys[:count], row.keys[count:]
        return SimpleNamespace(batch=batch, keys=list(row.withdrawn[batch]))

    async def return_withdrawn(self, batch: str, keys=None) -> int:
        for row in self.rows.values():
            if batch in row.withdrawn:
                back = row.withdrawn.pop(batch)
                row.keys = back + row.keys
                return len(back)
        return 0


class NotEnough(LookupError):
    def __init__(self, wanted: int, available: int) -> None:
        super().__init__(f"{wanted} wanted, {available} free")
        self.wanted, self.available = wanted, available


@pytest.fixture
async def seller() -> AsyncIterator[tuple[GamingGoodsSandbox, SellerClient]]:
    sandbox = create_sandbox()
    await sandbox.start()
    async with httpx.AsyncClient() as http:
        yield sandbox, SellerClient(
            http, api_key=sandbox.config.seller_keys[0], base_url=sandbox.partner_url,
            retry=RetryPolicy(attempts=1),
        )  # fmt: skip
    await sandbox.stop()


async def test_keys_moved_from_own_stock_leave_it_and_reach_the_listing(seller) -> None:
    sandbox, client = seller
    listing = await client.create_listing(
        name="Own Key", price=Decimal("4.99"), delivery_type="AUTO", codes=["FIRST"]
    )
    stock = FakeStock(StockRow(3, "Game", "Key", ["K-1", "K-2", "K-3"]))
    result = await move_stock_to_listing(
        stock, client, stock_offer_id="3", count=2, listing_id=listing.id
    )
    assert (result.uploaded, result.stock_available) == (2, 3)
    assert stock.rows["3"].keys == ["K-3"]  # the moved ones can no longer be sold here
    assert sandbox.seller.listings[listing.id].codes == ["FIRST", "K-1", "K-2"]


async def test_keys_the_marketplace_refuses_go_back_to_own_stock(seller) -> None:
    _sandbox, client = seller
    manual = await client.create_listing(name="By Hand", price=Decimal("1"), delivery_type="MANUAL")
    stock = FakeStock(StockRow(3, "Game", "Key", ["K-1", "K-2"]))
    with pytest.raises(RuleViolation):
        await move_stock_to_listing(
            stock, client, stock_offer_id="3", count=2, listing_id=manual.id
        )
    assert stock.rows["3"].keys == ["K-1", "K-2"] and stock.rows["3"].withdrawn == {}


async def test_keys_whose_upload_outcome_is_unknown_stay_withdrawn(seller) -> None:
    sandbox, client = seller
    listing = await client.create_listing(
        name="Own Key", price=Decimal("4.99"), delivery_type="AUTO", codes=["FIRST"]
    )
    stock = FakeStock(StockRow(3, "Game", "Key", ["K-1", "K-2"]))
    sandbox.faults.unavailable = 1
    with pytest.raises(WriteOutcomeUnknown):
        await move_stock_to_listing(
            stock, client, stock_offer_id="3", count=1, listing_id=listing.id
        )
    assert stock.rows["3"].keys == ["K-2"] and list(stock.rows["3"].withdrawn) == ["mp-1"]


async def test_too_few_keys_in_own_stock_moves_nothing(seller) -> None:
    sandbox, client = seller
    listing = await client.create_listing(
        name="Own Key", price=Decimal("4.99"), delivery_type="AUTO", codes=["FIRST"]
    )
    stock = FakeStock(StockRow(3, "Game", "Key", ["K-1"]))
    with pytest.raises(NotEnough):
        await move_stock_to_listing(
            stock, client, stock_offer_id="3", count=2, listing_id=listing.id
        )
    assert stock.rows["3"].keys == ["K-1"] and sandbox.seller.listings[listing.id].codes == [
        "FIRST"
    ]
