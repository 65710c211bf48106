"""Give memory freed by a big, passing job (a catalogue sync, a search index build) back
to the system.

glibc keeps freed heap pages for reuse, so after a 64,000-offer sync the bot process kept
~7 MiB it no longer used (measured: 121.9 -> 114.4 MiB after ``malloc_trim``), and ~2 MiB
after building the search index of its 12,731 products. Only on glibc; elsewhere it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

logger = logging.getLogger(__name__)


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None  # not glibc (musl, macOS): nothing to trim


def release_freed_memory() -> bool:
    """``malloc_trim(0)`` where glibc has it; returns whether it ran."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
