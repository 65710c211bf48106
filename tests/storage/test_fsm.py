"""Conversation state lives in SQLite: one row per conversation in progress, none after it
ends, and it survives a restart."""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey

from bot.offline import OfflineShop
from bot.states import Checkout
from storage.db import Database
from storage.fsm import SQLiteStorage
from tests.e2e.journeys import open_offer


async def _rows(db: Database) -> int:
    return int(await db.fetchval("SELECT count(*) FROM fsm_state"))


async def test_clearing_state_and_data_leaves_no_row(db: Database) -> None:
    storage = SQLiteStorage(db)
    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    await storage.set_state(key, Checkout.player_id)
    await storage.update_data(key, {"offer_id": 10_001, "product": "PUBG Mobile"})
    assert await storage.get_state(key) == Checkout.player_id.state
    assert await storage.get_data(key) == {"offer_id": 10_001, "product": "PUBG Mobile"}
    assert await _rows(db) == 1
    await storage.set_state(key, None)
    assert await _rows(db) == 1  # the data is still there
    await storage.set_data(key, {})
    assert await _rows(db) == 0
    assert await storage.get_state(key) is None and await storage.get_data(key) == {}


async def test_abandoned_conversations_are_purged(db: Database) -> None:
    storage = SQLiteStorage(db)
    old, live = StorageKey(bot_id=1, chat_id=1, user_id=1), StorageKey(2, 2, 2)
    await storage.set_state(old, Checkout.player_id)
    await db.execute("UPDATE fsm_state SET updated_at = '2026-01-01T00:00:00.000+00:00'")
    await storage.set_state(live, Checkout.player_id)
    assert await storage.purge("2026-02-01T00:00:00.000+00:00") == 1
    assert await storage.get_state(old) is None
    assert await storage.get_state(live) == Checkout.player_id.state


async def test_conversations_that_end_leave_nothing_behind(offline: OfflineShop) -> None:
    """Users who start a step and cancel it, or finish it, are not remembered forever."""
    assert offline.shop is not None
    for user_id in range(7001, 7006):
        user = offline.telegram.user(user_id, f"U{user_id}")
        await open_offer(offline, user, 10_001)
        mark = user.mark()
        await user.press("Buy for")
        await user.wait_for_text("Send your player ID", since=mark)
        assert await _rows(offline.shop.db) >= 1
        mark = user.mark()
        await user.send("/cancel")
        await user.wait_for_text("Cancelled", since=mark)
    assert await _rows(offline.shop.db) == 0


async def test_a_conversation_step_survives_a_restart(offline: OfflineShop) -> None:
    carol = offline.telegram.user(7101, "Carol")
    await open_offer(offline, carol, 10_001)  # PUBG Mobile 60 UC: player ID only
    mark = carol.mark()
    await carol.press("Buy for")
    await carol.wait_for_text("Send your player ID", since=mark)
    await offline.restart_bot()
    mark = carol.mark()
    await carol.send("12345678")
    await carol.wait_for_text("Please check your order", since=mark)


async def test_a_state_written_by_another_storage_is_read_after_a_restart(db: Database) -> None:
    """States are held in memory for speed, yet the table stays the truth: a new storage
    (a restarted bot) reads them back, and a purge forgets them in memory too."""
    key = StorageKey(bot_id=1, chat_id=5, user_id=5)
    before = SQLiteStorage(db)
    assert await before.get_state(key) is None
    await before.set_state(key, Checkout.confirm)
    assert await SQLiteStorage(db).get_state(key) == Checkout.confirm.state
    await db.execute("UPDATE fsm_state SET updated_at = '2026-01-01T00:00:00.000+00:00'")
    assert await before.purge("2026-02-01T00:00:00.000+00:00") == 1
    assert await before.get_state(key) is None
