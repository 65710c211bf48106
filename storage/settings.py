"""Shop settings an admin can change at run time (markup, Star value), kept in the database."""

from __future__ import annotations

from storage.db import Database, utcnow_iso


class ShopSettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        return await self._db.fetchval("SELECT value FROM shop_settings WHERE key = ?", (key,))

    async def all(self) -> dict[str, str]:
        rows = await self._db.fetchall("SELECT key, value FROM shop_settings")
        return {row["key"]: row["value"] for row in rows}

    async def set(self, key: str, value: str, updated_by: int | None = None) -> None:
        await self._db.execute(
            """INSERT INTO shop_settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                   updated_at = excluded.updated_at, updated_by = excluded.updated_by""",
            (key, value, utcnow_iso(), updated_by),
        )
