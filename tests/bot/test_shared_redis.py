"""``REDIS_URL``: several workers keep conversations in one real Redis and never handle
one user's updates at the same time; without it the shop stays one process and never
imports ``redis``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import DisabledEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

from bot.app import CONVERSATION_TTL, Shop, create_shop
from bot.offline import OfflineShop
from services.flood import FloodBudget, SharedFloodBudget
from storage.fsm import SQLiteStorage

ROOT = Path(__file__).resolve().parents[2]


async def two_workers(tmp_path: Path, redis_url: str) -> tuple[Shop, Shop]:
    """Two shops built from the same settings: one database file, one Redis."""
    offline = OfflineShop(tmp_path / "shop.sqlite3")
    offline.settings_overrides = {"redis_url": redis_url}
    settings = offline.settings()
    return await create_shop(settings), await create_shop(settings)


def key(user_id: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user_id, user_id=user_id)


async def test_a_step_begun_in_one_worker_is_continued_in_the_other(
    tmp_path: Path, clean_redis_url: str
) -> None:
    first, second = await two_workers(tmp_path, clean_redis_url)
    try:
        assert isinstance(first.dispatcher.storage, RedisStorage)
        one = FSMContext(first.dispatcher.storage, key(7))
        other = FSMContext(second.dispatcher.storage, key(7))
        await one.set_state("Checkout:player_id")
        await one.update_data(offer="gd:10010")
        assert await other.get_state() == "Checkout:player_id"
        assert await other.get_data() == {"offer": "gd:10010"}
        # an untouched step is forgotten after CONVERSATION_TTL (the SQLite purge's TTL)
        client = redis.asyncio.Redis.from_url(clean_redis_url)
        ttls = [await client.ttl(k) async for k in client.scan_iter("fsm:*")]
        await client.aclose()
        assert len(ttls) == 2  # state and data
        week = CONVERSATION_TTL.total_seconds()
        assert all(week - 60 < ttl <= week for ttl in ttls)
    finally:
        await first.close()
        await second.close()


async def test_one_users_updates_never_run_at_once_across_workers(
    tmp_path: Path, clean_redis_url: str
) -> None:
    first, second = await two_workers(tmp_path, clean_redis_url)
    try:
        isolation = first.dispatcher.fsm.events_isolation
        assert isinstance(isolation, RedisEventIsolation)
        other = second.dispatcher.fsm.events_isolation
        async with isolation.lock(key(7)):
            waiting = asyncio.create_task(_hold(other, key(7)))
            async with other.lock(key(8)):  # another user is not held up
                pass
            await asyncio.sleep(0.3)
            assert not waiting.done()  # user 7's next update waits in the other worker
        await asyncio.wait_for(waiting, 5.0)
    finally:
        await first.close()
        await second.close()


async def _hold(isolation: object, storage_key: StorageKey) -> None:
    async with isolation.lock(storage_key):  # type: ignore[attr-defined]
        pass


async def test_closing_the_shop_closes_its_redis_connections(
    tmp_path: Path, clean_redis_url: str
) -> None:
    first, second = await two_workers(tmp_path, clean_redis_url)
    observer = redis.asyncio.Redis.from_url(clean_redis_url)
    try:
        await first.dispatcher.storage.set_state(key(1), "x")
        await second.dispatcher.storage.set_state(key(2), "y")
        assert len(await observer.client_list()) == 3
        await first.close()
        await second.close()
        assert len(await observer.client_list()) == 1  # only the observer is left
    finally:
        await observer.aclose()


async def test_with_redis_deliveries_and_broadcasts_share_one_flood_budget(
    tmp_path: Path, clean_redis_url: str
) -> None:
    first, second = await two_workers(tmp_path, clean_redis_url)
    try:
        assert isinstance(first.outbox._flood, SharedFloodBudget)
        assert first.broadcasts._flood is first.outbox._flood
    finally:
        await first.close()
        await second.close()


async def test_without_redis_the_shop_is_one_process_as_before(tmp_path: Path) -> None:
    shop = await create_shop(OfflineShop(tmp_path / "shop.sqlite3").settings())
    try:
        assert shop.shared is None
        assert isinstance(shop.dispatcher.storage, SQLiteStorage)
        assert isinstance(shop.dispatcher.fsm.events_isolation, DisabledEventIsolation)
        assert type(shop.outbox._flood) is FloodBudget
    finally:
        await shop.close()


@pytest.mark.timeout(60)
def test_the_one_process_shop_imports_no_scale_out_library(tmp_path: Path) -> None:
    """SQLite and no Redis: neither redis nor asyncpg (nor prometheus-client, without a
    metrics endpoint) is loaded into the lean default process."""
    script = f"""
import asyncio, sys
from pathlib import Path
from bot.app import create_shop
from bot.offline import OfflineShop

async def main():
    shop = await create_shop(OfflineShop(Path({str(tmp_path / "shop.sqlite3")!r})).settings())
    await shop.close()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("redis", "asyncpg", "prometheus_client")))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
