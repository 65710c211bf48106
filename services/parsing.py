"""Numbers typed by people: whole numbers and plain decimals, ASCII digits only.

``str.isdigit()`` accepts ``²`` or ``٣`` and ``int()`` then fails (or accepts them), and
``Decimal()`` accepts ``1e-5000``, ``NaN`` and ``Infinity``. Everything an admin or a
winners list types goes through :func:`parse_int` or :func:`parse_decimal` instead, which
say what is wrong (:class:`BadNumber`) and keep values inside the given bounds (by default
what fits SQLite's 64-bit INTEGER).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

SQLITE_INT_MAX = 2**63 - 1
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_MAX_LENGTH = 40  # characters of a decimal worth reading at all


class NumberProblem(StrEnum):
    EMPTY = "empty"  # nothing typed
    NOT_WHOLE = "not_whole"  # not only the digits 0-9
    NOT_DECIMAL = "not_decimal"  # not a plain decimal such as 0.013
    TOO_PRECISE = "too_precise"  # more decimal places than allowed
    OUT_OF_RANGE = "out_of_range"  # outside [low, high]


class BadNumber(ValueError):
    """``text`` is not an acceptable number: ``problem`` says why; ``low``/``high`` are the
    bounds that applied (``Decimal`` or ``int``)."""

    def __init__(
        self, problem: NumberProblem, text: str, low: int | Decimal, high: int | Decimal
    ) -> None:
        super().__init__(f"{text[:40]!r}: {problem.value} (allowed {low}..{high})")
        self.problem = problem
        self.text = text
        self.low = low
        self.high = high


def parse_int(text: str, *, low: int = 0, high: int = SQLITE_INT_MAX) -> int:
    """A whole number written with ASCII digits only (surrounding spaces allowed), within
    ``[low, high]``. Raises :class:`BadNumber`."""
    digits = text.strip()
    if not digits:
        raise BadNumber(NumberProblem.EMPTY, text, low, high)
    if not (digits.isascii() and digits.isdigit()):
        raise BadNumber(NumberProblem.NOT_WHOLE, text, low, high)
    if len(digits.lstrip("0")) > len(str(high)):  # before int(): no 10,000-digit numbers
        raise BadNumber(NumberProblem.OUT_OF_RANGE, text, low, high)
    value = int(digits)
    if not low <= value <= high:
        raise BadNumber(NumberProblem.OUT_OF_RANGE, text, low, high)
    return value


def parse_decimal(text: str, *, low: Decimal, high: Decimal, places: int) -> Decimal:
    """A plain non-negative decimal (``0.013``, ``,`` accepted as the decimal point) with at
    most ``places`` decimal places, within ``[low, high]``. Exponents, signs, ``NaN`` and
    ``Infinity`` are refused. Raises :class:`BadNumber`."""
    plain = text.strip().replace(",", ".")
    if not plain:
        raise BadNumber(NumberProblem.EMPTY, text, low, high)
    if len(plain) > _MAX_LENGTH or not _PLAIN_DECIMAL.fullmatch(plain):
        raise BadNumber(NumberProblem.NOT_DECIMAL, text, low, high)
    value = Decimal(plain)
    if "." in plain and len(plain.split(".")[1].rstrip("0")) > places:
        raise BadNumber(NumberProblem.TOO_PRECISE, text, low, high)
    if not low <= value <= high:
        raise BadNumber(NumberProblem.OUT_OF_RANGE, text, low, high)
    return value
