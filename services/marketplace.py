"""Selling on a supplier's marketplace from the admin console: the rules the screens
follow, apart from Telegram. The marketplace itself is a
:class:`services.suppliers.marketplace.Marketplace` (a vendor's seller API).

* :func:`read_codes` turns pasted lines or a ``.txt`` / ``.csv`` file into the codes to
  send: one code per line (the first cell of a CSV row), blanks skipped, duplicates
  within the batch reported with their line numbers and sent once.
* :func:`parse_listing_price` / :func:`parse_offer_price` read a price an admin typed:
  decimal units for listings (sent as typed), whole cents for offers, never a float.
* :func:`move_stock_to_listing` moves keys of the shop's own stock to an AUTO listing:
  they leave own stock in one step before the upload (so they can never be sold twice)
  and come back only when the marketplace certainly did not take them.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from services.parsing import parse_decimal
from services.suppliers.marketplace import (
    CodesUploaded,
    Marketplace,
    WriteOutcomeUnknown,
    to_cents,
)

logger = logging.getLogger(__name__)

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


class StockWithdrawal(Protocol):
    """Keys taken out of own stock: ``batch`` names them, ``keys`` in clear text."""

    batch: str
    keys: list[str]


class StockForMarketplace(Protocol):
    """What the marketplace screens need from the shop's own stock of keys (the
    ``own_stock`` workflow value): see ``services/own_stock.py``.

    ``withdraw_for_marketplace`` takes ``count`` free keys of own-stock offer
    ``offer_id`` out in one step, all or none (raises ``OfferNotFound``, ``ValueError``,
    or a ``LookupError`` with ``available`` when fewer are free); ``return_withdrawn``
    puts a withdrawal back on sale; ``products`` lists what is held (each with ``id``,
    ``product_name``, ``offer_name``, ``available``)."""

    async def withdraw_for_marketplace(
        self, offer_id: str, count: int, *, by: int | None = None
    ) -> StockWithdrawal:
        """``count`` free keys out of own stock, all or none."""
        ...

    async def return_withdrawn(self, batch: str, keys: Sequence[str] | None = None) -> int:
        """Keys of ``batch`` (all, or ``keys``) back on sale; how many came back."""
        ...

    async def products(self) -> list[Any]:
        """The products held, with their free keys (``available``)."""
        ...


async def move_stock_to_listing(
    stock: StockForMarketplace,
    marketplace: Marketplace,
    *,
    stock_offer_id: str,
    count: int,
    listing_id: str,
    by: int | None = None,
) -> CodesUploaded:
    """Move ``count`` keys of own-stock offer ``stock_offer_id`` to AUTO listing
    ``listing_id`` (``POST /seller/products/{id}/codes``); returns ``uploaded`` and
    ``stock_available``.

    The keys leave own stock first, in one step, so the shop can never sell them while
    or after they are offered on the marketplace. When the upload certainly did not
    happen (refused, rate limited, not connected, bad key) they are put back and the
    error is raised. When its outcome is unknown (``WriteOutcomeUnknown``) they stay
    withdrawn (they may be on the marketplace: selling them here too could sell a key
    twice), the batch is logged for the admin to settle, and the error is raised.
    Errors of the withdrawal itself are raised as they are (nothing moved)."""
    withdrawal = await stock.withdraw_for_marketplace(stock_offer_id, count, by=by)
    try:
        return await marketplace.upload_codes(listing_id, withdrawal.keys)
    except WriteOutcomeUnknown:
        logger.error(
            "own stock batch %s (%d keys) uploaded to listing %s with no answer: the keys "
            "stay withdrawn; check the listing's stock before returning them",
            withdrawal.batch, len(withdrawal.keys), listing_id,
        )  # fmt: skip
        raise
    except Exception:
        returned = await stock.return_withdrawn(withdrawal.batch)
        logger.warning(
            "own stock batch %s refused by listing %s: %d keys back on sale",
            withdrawal.batch, listing_id, returned,
        )  # fmt: skip
        raise
