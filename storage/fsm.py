"""Conversation state (aiogram FSM) in the shop's SQLite database.

aiogram's ``MemoryStorage`` keeps a context for every user it ever saw, for the life of
the process, and forgets every conversation at a restart. :class:`SQLiteStorage` keeps one
row per conversation in progress (table ``fsm_state``, migration 0005) and deletes it
when the state and the data are both cleared (``FSMContext.clear()``); a conversation
abandoned mid-step is dropped after a while (:meth:`SQLiteStorage.purge`).

aiogram asks for the state of every update; the states of the conversations in progress
are therefore also held in memory (loaded once, written through), so that question costs
no database read. That assumes one bot process owns the table, as it does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from storage.db import Database, utcnow_iso


def storage_key(key: StorageKey) -> str:
    """The row key: every field of aiogram's :class:`StorageKey`, ``:``-joined."""
    return ":".join(
        "" if part is None else str(part)
        for part in (
            key.bot_id,
            key.chat_id,
            key.user_id,
            key.thread_id,
            key.business_connection_id,
            key.destiny,
        )
    )


class SQLiteStorage(BaseStorage):
    """aiogram :class:`BaseStorage` over ``fsm_state``. Data must be JSON-serialisable
    (``TypeError`` otherwise); the database is closed by its owner, not by :meth:`close`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._states: dict[str, str] | None = None  # row key -> state, conversations in a step
        self._loading = asyncio.Lock()

    async def _loaded_states(self) -> dict[str, str]:
        async with self._loading:
            if self._states is None:
                rows = await self.db.fetchall(
                    "SELECT key, state FROM fsm_state WHERE state IS NOT NULL"
                )
                self._states = {str(r["key"]): str(r["state"]) for r in rows}
            return self._states

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        row = storage_key(key)
        states = await self._loaded_states()
        async with self.db.transaction() as conn:
            if value is None:
                await conn.execute("UPDATE fsm_state SET state = NULL WHERE key = ?", (row,))
                await self._drop_if_empty(conn, row)
            else:
                await conn.execute(
                    "INSERT INTO fsm_state (key, state, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
                    "updated_at = excluded.updated_at",
                    (row, value, utcnow_iso()),
                )
        if value is None:  # after the commit: memory never says what the table does not
            states.pop(row, None)
        else:
            states[row] = value

    async def get_state(self, key: StorageKey) -> str | None:
        states = self._states if self._states is not None else await self._loaded_states()
        return states.get(storage_key(key))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        encoded = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))
        row = storage_key(key)
        async with self.db.transaction() as conn:
            if not data:
                await conn.execute("UPDATE fsm_state SET data = '{}' WHERE key = ?", (row,))
                await self._drop_if_empty(conn, row)
            else:
                await conn.execute(
                    "INSERT INTO fsm_state (key, data, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
                    "updated_at = excluded.updated_at",
                    (row, encoded, utcnow_iso()),
                )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        value = await self.db.fetchval(
            "SELECT data FROM fsm_state WHERE key = ?", (storage_key(key),)
        )
        return dict(json.loads(value)) if value else {}

    async def purge(self, updated_before: str) -> int:
        """Forget conversations abandoned mid-step: rows last changed before
        ``updated_before`` (ISO-8601 UTC, as :func:`storage.db.utcnow_iso`). Returns how
        many were deleted."""
        async with self._loading:
            deleted = await self.db.execute(
                "DELETE FROM fsm_state WHERE updated_at < ?", (updated_before,)
            )
            self._states = None  # read again on the next question
        return deleted

    async def close(self) -> None:
        """Nothing to do: the :class:`Database` belongs to the shop, which closes it."""

    @staticmethod
    async def _drop_if_empty(conn: Any, row: str) -> None:
        await conn.execute(
            "DELETE FROM fsm_state WHERE key = ? AND state IS NULL AND data = '{}'", (row,)
        )
