"""Numbers typed by people: ASCII digits only, bounded, and a reason when refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.parsing import SQLITE_INT_MAX, BadNumber, NumberProblem, parse_decimal, parse_int


def test_whole_numbers_in_ascii_digits_are_accepted() -> None:
    assert parse_int(" 42 ") == 42
    assert parse_int("007") == 7
    assert parse_int(str(SQLITE_INT_MAX)) == SQLITE_INT_MAX


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", NumberProblem.EMPTY),
        ("  ", NumberProblem.EMPTY),
        ("²", NumberProblem.NOT_WHOLE),
        ("1²", NumberProblem.NOT_WHOLE),
        ("٣", NumberProblem.NOT_WHOLE),  # Arabic-Indic three: int() would accept it
        ("-1", NumberProblem.NOT_WHOLE),
        ("1.5", NumberProblem.NOT_WHOLE),
        (str(SQLITE_INT_MAX + 1), NumberProblem.OUT_OF_RANGE),
        ("9" * 5000, NumberProblem.OUT_OF_RANGE),  # int() itself refuses over 4300 digits
    ],
)
def test_other_whole_number_input_says_what_is_wrong(text: str, problem: NumberProblem) -> None:
    with pytest.raises(BadNumber) as refused:
        parse_int(text)
    assert refused.value.problem is problem


def test_whole_number_bounds_are_inclusive() -> None:
    assert parse_int("1", low=1, high=2500) == 1
    assert parse_int("2500", low=1, high=2500) == 2500
    for text in ("0", "2501"):
        with pytest.raises(BadNumber) as refused:
            parse_int(text, low=1, high=2500)
        assert refused.value.problem is NumberProblem.OUT_OF_RANGE
        assert (refused.value.low, refused.value.high) == (1, 2500)


def test_plain_decimals_are_accepted() -> None:
    bounds = {"low": Decimal("0.005"), "high": Decimal("0.05"), "places": 6}
    assert parse_decimal("0.013", **bounds) == Decimal("0.013")
    assert parse_decimal(" 0,0135 ", **bounds) == Decimal("0.0135")
    assert parse_decimal(".02", **bounds) == Decimal("0.02")
    assert parse_decimal("0.0130000", **bounds) == Decimal("0.013")  # trailing zeros are fine


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", NumberProblem.EMPTY),
        ("1e-5000", NumberProblem.NOT_DECIMAL),
        ("NaN", NumberProblem.NOT_DECIMAL),
        ("sNaN", NumberProblem.NOT_DECIMAL),
        ("Infinity", NumberProblem.NOT_DECIMAL),
        ("-0.013", NumberProblem.NOT_DECIMAL),
        ("0.01²", NumberProblem.NOT_DECIMAL),
        ("0." + "1" * 100, NumberProblem.NOT_DECIMAL),
        ("0.0130001", NumberProblem.TOO_PRECISE),
        ("13", NumberProblem.OUT_OF_RANGE),  # the typo for 0.013
        ("0.001", NumberProblem.OUT_OF_RANGE),
    ],
)
def test_other_decimal_input_says_what_is_wrong(text: str, problem: NumberProblem) -> None:
    with pytest.raises(BadNumber) as refused:
        parse_decimal(text, low=Decimal("0.005"), high=Decimal("0.05"), places=6)
    assert refused.value.problem is problem
