"""The marketplace screens' rules: codes read from lines or a CSV, prices typed by an
admin converted exactly (listings in decimal euros, offers in integer cents)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.marketplace import (
    MAX_CODE_LENGTH,
    parse_listing_price,
    parse_offer_price,
    read_codes,
)
from services.parsing import BadNumber


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
