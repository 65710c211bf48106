"""With ``REDIS_URL`` the real bot keeps a customer's conversation in Redis: a step begun
before the bot process is replaced goes on in the new one, and nothing of it is kept in
the SQLite conversation table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from bot.offline import OfflineShop
from storage.fsm import SQLiteStorage
from tests.e2e.journeys import open_offer

GENSHIN_60 = 10_010  # needs a player ID and a server


@pytest.fixture
async def shop_on_redis(tmp_path: Path, clean_redis_url: str) -> AsyncIterator[OfflineShop]:
    shop = OfflineShop(tmp_path / "shop.sqlite3")
    shop.settings_overrides = {"redis_url": clean_redis_url}
    await shop.start()
    yield shop
    await shop.stop()


async def test_a_checkout_step_survives_a_new_worker_through_redis(
    shop_on_redis: OfflineShop, clean_redis_url: str
) -> None:
    offline = shop_on_redis
    assert offline.shop is not None and not isinstance(
        offline.shop.dispatcher.storage, SQLiteStorage
    )
    shared = offline.shop.shared
    assert shared is not None  # the worker listens for other workers' admin changes
    await asyncio.wait_for(shared.bus.listening.wait(), 5.0)
    bob = offline.telegram.user(6101, "Bob")
    await open_offer(offline, bob, GENSHIN_60)
    await bob.press("Buy for")
    await bob.wait_for_text("Send your player ID")

    await offline.restart_bot()  # another process takes the next update
    mark = bob.mark()
    await bob.send("12345678")
    await bob.wait_for_text("Choose your game server", since=mark)  # the next step

    client = redis.asyncio.Redis.from_url(clean_redis_url)
    try:
        assert [k async for k in client.scan_iter("fsm:*6101*")]
    finally:
        await client.aclose()
    assert offline.shop is not None
    rows = await offline.shop.db.fetchval("SELECT count(*) FROM fsm_state")
    assert rows == 0
