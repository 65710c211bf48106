"""JSON that never lets money pass through a float.

Supplier prices arrive as JSON numbers (``23.09``, ``560.10``) and must be sent back
exactly as received. :func:`loads` reads every non-integer number as :class:`Decimal`
from its text; :func:`dumps` writes a :class:`Decimal` back as a JSON number with the
same digits (``Decimal("560.10")`` -> ``560.10``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


def loads(text: str | bytes) -> Any:
    """Parse JSON text; numbers with a fraction or exponent become ``Decimal``.

    Raises ``ValueError`` (``json.JSONDecodeError``) on text that is not JSON.
    """
    return json.loads(text, parse_float=Decimal)


def dumps(value: Any) -> str:
    """Serialise ``value`` to compact JSON, writing ``Decimal`` as a bare JSON number.

    Supports dicts with string keys, lists/tuples, str, int, bool, None and finite
    ``Decimal``. A float is refused with ``TypeError``: money must never be a float.
    """
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send a non-finite number: {value}")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not allowed in supplier payloads; use Decimal")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
