"""Customers' everyday updates are filtered on the event loop: aiogram runs every plain
(non-async) filter through ``asyncio.to_thread``, a thread hop each, which cost about a
third of the bot's throughput (issue 15). Bare ``State`` filters are such filters."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.offline import OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from tests.e2e.journeys import open_offer


@contextmanager
def counting_thread_hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts ``asyncio.to_thread`` calls by the name of what they run."""
    hops: Counter[str] = Counter()
    real = asyncio.to_thread

    async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        target = getattr(func, "func", func)  # aiogram hands a functools.partial
        hops[getattr(target, "__qualname__", repr(target))] += 1
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    yield hops


async def test_browsing_searching_and_buying_hop_no_thread(
    offline: OfflineShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = offline.telegram.user(1001, "Alice")
    await alice.send("/start")
    await alice.wait_for_text("Welcome")
    with counting_thread_hops(monkeypatch) as hops:
        await alice.press("Catalogue")
        await alice.wait_for_text("Choose a category")
        await alice.press("Gift cards")
        await alice.wait_for_text("choose a game")
        mark = alice.mark()
        await alice.send("steam")
        await alice.wait_for_text("Found 2 products for", since=mark)
        await alice.press("Steam US")
        await alice.wait_for_text("denomination")
        await open_offer(offline, alice, TEST_OFFER_ID)
        await alice.press("Buy for")
        await offline.telegram.wait_until(lambda: any("invoice" in m for m in alice.messages))
        paid, error = await alice.pay()
        assert paid, error
        await alice.wait_for_text("Your key")
    assert not hops, f"thread hops: {dict(hops)}"
