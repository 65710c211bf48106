"""CSV files for admins that a spreadsheet opens as meant.

Excel reads a CSV as the system's code page unless it starts with a UTF-8 byte order
mark, so Cyrillic names came out garbled; and a cell starting with ``=``, ``+``, ``-``,
``@`` (or a tab or carriage return) is run as a formula, so a product name or a winner
line from outside could compute or link anything (OWASP "CSV injection"). Text cells that
start so get a leading ``'``, which spreadsheets show as text; numbers the shop computed
itself (``int``, ``Decimal``) are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``None`` -> ``""``; text starting like a formula -> ``'`` + text; anything else as is
    (``int``/``Decimal`` figures, negative ones included, stay numbers)."""
    if value is None:
        return ""
    if isinstance(value, int | Decimal):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """``header`` then ``rows`` as UTF-8 CSV with a byte order mark, every cell through
    :func:`safe_cell`."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")
