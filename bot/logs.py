"""Logging for ``python -m bot``: our loggers at ``LOG_LEVEL``, everyone else's at
``LOG_LEVEL_LIBRARIES`` (WARNING by default).

At DEBUG, aiosqlite logs every SQL call with its values and aiogram logs every update:
delivered keys, charge ids and player ids would land in the log. So the root logger (and
with it every library logger that sets no level of its own) stays at the libraries' level,
and only the shop's own packages follow ``LOG_LEVEL``. The shop's own log lines name
orders by id and charges by :func:`services.redact.fingerprint`, never by value.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

#: The shop's own packages (``python -m bot`` logs as ``bot``).
OUR_LOGGERS = ("bot", "services", "storage", "bench")
#: Libraries known to log request bodies, SQL or updates below WARNING.
LIBRARY_LOGGERS = ("aiosqlite", "aiogram", "aiohttp", "httpx", "httpcore", "asyncio")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(
    level: str | int = "INFO", libraries_level: str | int = "WARNING", stream: TextIO | None = None
) -> None:
    """One stderr handler on the root logger (replacing a previous one of ours); the
    shop's loggers at ``level``, the root and the libraries at ``libraries_level``.
    Raises ``ValueError`` for an unknown level name."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_shop_handler", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler._shop_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(_level(libraries_level))
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(_level(libraries_level))
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(_level(level))


def _level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    number = logging.getLevelName(value.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {value!r}")
    return number
