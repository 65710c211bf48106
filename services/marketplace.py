"""Selling on a supplier's marketplace from the admin console: the rules the screens
follow, apart from Telegram. The marketplace itself is a
:class:`services.suppliers.marketplace.Marketplace` (a vendor's seller API).

* :func:`read_codes` turns pasted lines or a ``.txt`` / ``.csv`` file into the codes to
  send: one code per line (the first cell of a CSV row), blanks skipped, duplicates
  within the batch reported with their line numbers and sent once.
* :func:`parse_listing_price` / :func:`parse_offer_price` read a price an admin typed:
  decimal units for listings (sent as typed), whole cents for offers, never a float.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal

from services.parsing import parse_decimal
from services.suppliers.marketplace import to_cents

#: the most codes one batch may carry (one request)
MAX_CODES = 1000
#: the longest code accepted (activation codes are short; longer lines are mistakes)
MAX_CODE_LENGTH = 200
LOWEST_PRICE = Decimal("0.01")
HIGHEST_PRICE = Decimal("100000")


@dataclass(frozen=True, slots=True)
class CodeBatch:
    """Codes read from lines: ``codes`` in order, each once; ``duplicates`` as
    ``(line number from 1, code)`` for each repeat left out; ``too_long`` line numbers
    of lines longer than :data:`MAX_CODE_LENGTH` (left out)."""

    codes: list[str] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    too_long: list[int] = field(default_factory=list)


def read_codes(text: str, *, csv_file: bool = False) -> CodeBatch:
    """The codes in ``text``: one per line, surrounding spaces trimmed, blank lines
    skipped; with ``csv_file`` the first cell of each row (a header row ``code`` is
    skipped). Nothing is dropped silently: repeats and over-long lines are reported."""
    if csv_file:
        cells = [row[0] if row else "" for row in csv.reader(io.StringIO(text))]
        if cells and cells[0].strip().lower() in ("code", "codes", "key", "keys"):
            cells[0] = ""
    else:
        cells = text.splitlines()
    codes: list[str] = []
    seen: set[str] = set()
    duplicates: list[tuple[int, str]] = []
    too_long: list[int] = []
    for number, cell in enumerate(cells, start=1):
        code = cell.strip()
        if not code:
            continue
        if len(code) > MAX_CODE_LENGTH:
            too_long.append(number)
        elif code in seen:
            duplicates.append((number, code))
        else:
            seen.add(code)
            codes.append(code)
    return CodeBatch(codes, duplicates, too_long)


def parse_listing_price(text: str) -> Decimal:
    """A listing price typed by an admin (``19.99``; ``,`` accepted), 0.01 to 100,000 in
    whole cents, as the exact ``Decimal`` to send. Raises ``BadNumber``."""
    return parse_decimal(text, low=LOWEST_PRICE, high=HIGHEST_PRICE, places=2)


def parse_offer_price(text: str) -> int:
    """An offer price typed in decimal units (``17.99``) -> integer cents (``1799``),
    converted exactly. Raises ``BadNumber``."""
    return to_cents(parse_listing_price(text))
