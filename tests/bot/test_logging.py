"""Logs never carry a delivered key, a charge id or a token, whatever the level."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from bot.logs import LIBRARY_LOGGERS, OUR_LOGGERS, setup_logging
from bot.offline import BOT_TOKEN, OfflineShop
from sandboxes.gamesdrop import DEFAULT_TOKEN, TEST_OFFER_ID
from tests.e2e.journeys import reach_invoice


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # the message, its arguments and any traceback


@pytest.fixture
def capture() -> Iterator[_Capture]:
    """``setup_logging`` as ``python -m bot`` does it, everything that reaches a handler
    captured; the logging configuration is put back afterwards."""
    root = logging.getLogger()
    names = (*OUR_LOGGERS, *LIBRARY_LOGGERS)
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in names})
    handler = _Capture()
    setup_logging("DEBUG")
    root.addHandler(handler)
    yield handler
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_libraries_stay_at_warning_unless_asked() -> None:
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        setup_logging("DEBUG")
        assert logging.getLogger("services.orders").isEnabledFor(logging.DEBUG)
        for name in ("aiosqlite", "aiogram.event", "httpx", "httpcore", "aiohttp.access"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        setup_logging("INFO", libraries_level="DEBUG")
        assert logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("bot.app").isEnabledFor(logging.DEBUG)
    finally:
        setup_logging("WARNING", libraries_level="WARNING")
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


async def test_a_purchase_logged_at_debug_shows_no_key_charge_id_or_token(
    offline: OfflineShop, capture: _Capture
) -> None:
    """A paid order, its successful_payment update delivered twice, and a second payment
    whose update was lost and is recovered at restart: every path that handles a charge."""
    uma = offline.telegram.user(8001, "Uma")
    await reach_invoice(offline, uma, TEST_OFFER_ID)
    await uma.pay(repeat_update=True)
    await uma.wait_for_text("Your key")
    vic = offline.telegram.user(8002, "Vic")
    await reach_invoice(offline, vic, TEST_OFFER_ID)
    await vic.pay(lose_update=True)
    await asyncio.sleep(0.3)
    await offline.restart_bot()  # reconciliation finds the lost payment
    await vic.wait_for_text("Your key")
    assert offline.shop is not None
    await offline.telegram.wait_until(lambda: any("already recorded" in x for x in capture.lines))

    secrets = [BOT_TOKEN, BOT_TOKEN.split(":")[1], DEFAULT_TOKEN]
    for user in (uma, vic):
        orders, _ = await offline.shop.orders.orders.list_for_user(user.id, 0, 5)
        secrets += [order.delivered_key for order in orders if order.delivered_key]
    secrets += list(offline.telegram.charges)
    assert len(secrets) == 7
    assert any(line.startswith("services.") for line in capture.lines)  # DEBUG was on
    leaks = [(s, line) for line in capture.lines for s in secrets if s in line]
    assert leaks == []
