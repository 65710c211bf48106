"""Own stock as a source: uploads report duplicates by line, the catalogue offer is priced
at the next key's cost, create-order takes one key per transaction id, an empty stock is
refused as out of stock, admins hear once when a product runs low."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from bot.settings import StockSettings
from services.own_stock import (
    KeyBox,
    NotEnoughKeys,
    OwnStock,
    StockKeyUnreadable,
    UploadTarget,
    read_file,
    read_lines,
)
from services.suppliers.base import Capability, Customer, Supplier
from services.suppliers.errors import OfferNotFound, OrderNotFound, OutOfStock
from storage.db import Database
from storage.stock import StockRepository

SECRET = "a-test-secret-that-is-long-enough-0123456789"
TARGET = UploadTarget("42", "Steam Wallet", "Steam 10 USD", "Gift Cards", ("gamesdrop", "999"))
NOBODY = Customer()


def _stock(db: Database, secret: str = SECRET, low: int = 3) -> OwnStock:
    return OwnStock(StockRepository(db), KeyBox(secret), low_threshold=low)


async def test_own_stock_is_a_source_with_a_feed_and_idempotent_orders(db: Database) -> None:
    stock = _stock(db)
    assert isinstance(stock, Supplier)
    assert (stock.name, stock.short) == ("own_stock", "o")
    assert stock.capabilities == {Capability.CATALOGUE_SYNC, Capability.IDEMPOTENT_CREATE}


async def test_duplicates_in_the_file_and_already_held_are_reported_by_line(
    db: Database,
) -> None:
    stock = _stock(db)
    first = await stock.upload(TARGET, read_lines("A1\nA2\n"), Decimal("4.50"), "USD", 1)
    assert (first.added, first.repeated, first.held) == (2, [], [])

    text = "B1\n\nA2\nB2\nB1\n  B3  \nA1\n" + "X" * 501
    report = await stock.upload(TARGET, read_lines(text), Decimal("4.50"), "USD", 1)

    assert report.product == first.product
    assert report.added == 3  # B1, B2, B3
    assert report.repeated == [5]  # B1 again
    assert report.held == [3, 7]  # A2 and A1 were uploaded before
    assert report.too_long == [8]
    assert report.available == 5


async def test_a_csv_upload_reads_the_first_cell_and_skips_a_header() -> None:
    lines = read_file("keys.csv", '\ufeffcode,note\nC-1,promo\n"C-2",x\n'.encode())
    assert lines.keys == [(2, "C-1"), (3, "C-2")]
    assert read_file("keys.TXT", b"T-1\r\nT-2").keys == [(1, "T-1"), (2, "T-2")]
    with pytest.raises(UnicodeDecodeError):
        read_file("keys.txt", b"\xff\xfe\x00bad")


async def test_the_offer_is_priced_at_the_next_key_and_sold_out_when_none_is_left(
    db: Database,
) -> None:
    stock = _stock(db)
    await stock.upload(TARGET, read_lines("CHEAP"), Decimal("4.10"), "USD", 1)
    report = await stock.upload(TARGET, read_lines("DEAR"), Decimal("5.25"), "USD", 1)
    offer_id = str(report.product)

    [row] = [row async for row in stock.iter_catalogue()]
    assert (row.offer_group_id, row.product_id, row.product_name, row.offer_group_name) == (
        offer_id, "42", "Steam Wallet", "Steam 10 USD",
    )  # fmt: skip
    assert (row.price, row.currency, row.in_stock, row.category) == (
        Decimal("4.10"), "USD", True, "Gift Cards",
    )  # fmt: skip

    first = await stock.create_order(offer_id, Decimal("4.10"), "shop-1", NOBODY)
    assert (first.key, first.price) == ("CHEAP", Decimal("4.10"))
    assert (await stock.find_offer(offer_id)).price == Decimal("5.25")
    assert (await stock.create_order(offer_id, Decimal("5.25"), "shop-2", NOBODY)).key == "DEAR"

    with pytest.raises(OutOfStock):
        await stock.find_offer(offer_id)
    with pytest.raises(OutOfStock):
        await stock.create_order(offer_id, Decimal("5.25"), "shop-3", NOBODY)
    [row] = [row async for row in stock.iter_catalogue()]
    assert (row.in_stock, row.price) == (False, Decimal("5.25"))
    with pytest.raises(OfferNotFound):
        await stock.find_offer("9999")


async def test_an_order_is_found_again_by_transaction_id_or_key_id(db: Database) -> None:
    stock = _stock(db)
    report = await stock.upload(TARGET, read_lines("K-1\nK-2"), Decimal("1"), "EUR", 1)
    made = await stock.create_order(str(report.product), Decimal("1"), "shop-5", NOBODY)

    again = await stock.create_order(str(report.product), Decimal("1"), "shop-5", NOBODY)
    by_tx = await stock.get_order(transaction_id="shop-5")
    assert made.order_id is not None
    by_id = await stock.get_order(order_id=made.order_id)

    assert made.key == again.key == by_tx.key == by_id.key == "K-1"
    assert by_tx.status.value == "COMPLETED"
    with pytest.raises(OrderNotFound):
        await stock.get_order(transaction_id="shop-6")


async def test_keys_under_another_secret_fail_the_order_instead_of_delivering(
    db: Database,
) -> None:
    report = await _stock(db).upload(TARGET, read_lines("K-1"), Decimal("1"), "USD", 1)
    other = _stock(db, secret="another-secret-that-is-long-enough-987654")

    with pytest.raises(StockKeyUnreadable):
        await other.create_order(str(report.product), Decimal("1"), "shop-1", NOBODY)


async def test_admins_hear_once_per_crossing_of_the_low_stock_threshold(db: Database) -> None:
    stock = _stock(db, low=1)
    alerts: list[dict[str, Any]] = []

    async def alert(key: str, msgid: str, **params: Any) -> None:
        alerts.append({"key": key, "msgid": msgid, **params})

    stock.alert = alert
    report = await stock.upload(TARGET, read_lines("K-1\nK-2\nK-3"), Decimal("1"), "USD", 1)
    offer = str(report.product)

    await stock.create_order(offer, Decimal("1"), "shop-1", NOBODY)  # 2 left
    assert alerts == []
    await stock.create_order(offer, Decimal("1"), "shop-2", NOBODY)  # 1 left: low
    await stock.create_order(offer, Decimal("1"), "shop-3", NOBODY)  # 0 left: still low
    assert [(a["msgid"], a["left"], a["product"]) for a in alerts] == [
        ("alert.stock_low", 1, "Steam Wallet")
    ]

    await stock.upload(TARGET, read_lines("K-4\nK-5"), Decimal("1"), "USD", 1)  # 2: above
    await stock.create_order(offer, Decimal("1"), "shop-4", NOBODY)  # 1 left: low again
    assert len(alerts) == 2


async def test_keys_withdrawn_for_the_marketplace_cannot_be_sold(db: Database) -> None:
    stock = _stock(db)
    report = await stock.upload(TARGET, read_lines("M-1\nM-2\nM-3"), Decimal("2"), "USD", 1)
    offer = str(report.product)

    with pytest.raises(NotEnoughKeys):
        await stock.withdraw_for_marketplace(offer, 4)
    withdrawal = await stock.withdraw_for_marketplace(offer, 2)
    assert withdrawal.keys == ["M-1", "M-2"]

    assert (await stock.create_order(offer, Decimal("2"), "shop-1", NOBODY)).key == "M-3"
    with pytest.raises(OutOfStock):
        await stock.create_order(offer, Decimal("2"), "shop-2", NOBODY)

    assert await stock.return_withdrawn(withdrawal.batch, ["M-2"]) == 1  # refused one back
    assert (await stock.create_order(offer, Decimal("2"), "shop-2", NOBODY)).key == "M-2"
    assert await stock.return_withdrawn(withdrawal.batch) == 1  # the rest of the batch: M-1
    assert (await stock.create_order(offer, Decimal("2"), "shop-3", NOBODY)).key == "M-1"


def test_a_short_stock_key_is_refused_and_an_unset_one_turns_own_stock_off() -> None:
    with pytest.raises(ValidationError):
        StockSettings(key="short")  # type: ignore[arg-type]
    assert not StockSettings().enabled()
    assert StockSettings(key=SECRET).enabled()  # type: ignore[arg-type]


async def test_no_key_is_ever_logged(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    stock = _stock(db, low=5)
    alerts: list[dict[str, Any]] = []

    async def alert(key: str, msgid: str, **params: Any) -> None:
        alerts.append(params)

    stock.alert = alert
    keys = ["SECRET-KEY-AAA", "SECRET-KEY-BBB", "SECRET-KEY-CCC"]
    report = await stock.upload(TARGET, read_lines("\n".join(keys * 2)), Decimal("1"), "USD", 1)
    offer = str(report.product)
    await stock.create_order(offer, Decimal("1"), "shop-1", NOBODY)
    await stock.create_order(offer, Decimal("1"), "shop-1", NOBODY)
    withdrawal = await stock.withdraw_for_marketplace(offer, 1)
    await stock.return_withdrawn(withdrawal.batch, withdrawal.keys)
    with pytest.raises(StockKeyUnreadable):
        await _stock(db, secret="another-secret-that-is-long-enough-987654").create_order(
            offer, Decimal("1"), "shop-2", NOBODY
        )

    assert caplog.records  # the steps were logged...
    logged = "\n".join(r.getMessage() for r in caplog.records) + repr(alerts)
    assert "SECRET-KEY" not in logged  # ...without a key
