"""Users: who talked to the bot, their language, blocked and banned flags."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database, Row, utcnow_iso


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str | None
    first_name: str
    language: str | None
    telegram_language: str | None
    first_seen: str
    is_blocked: bool
    is_banned: bool


class UsersRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def touch(
        self, user_id: int, username: str | None, first_name: str, telegram_language: str | None
    ) -> User:
        """Insert or refresh a user seen in an update; unblocks a user who came back."""
        now = utcnow_iso()
        async with self._db.transaction() as conn:
            await conn.execute(
                """INSERT INTO users (id, username, first_name, telegram_language, first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET username = excluded.username,
                       first_name = excluded.first_name,
                       telegram_language = excluded.telegram_language,
                       last_seen = excluded.last_seen, is_blocked = 0""",
                (user_id, username, first_name or "", telegram_language, now, now),
            )
        user = await self.get(user_id)
        assert user is not None
        return user

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def find(self, query: str) -> User | None:
        """By numeric id or by ``@username`` (case-insensitive)."""
        text = query.strip().removeprefix("@")
        if text.isdigit():
            return await self.get(int(text))
        row = await self._db.fetchone(
            "SELECT * FROM users WHERE lower(username) = lower(?)", (text,)
        )
        return _user(row) if row else None

    async def set_language(self, user_id: int, language: str | None) -> None:
        await self._db.execute("UPDATE users SET language = ? WHERE id = ?", (language, user_id))

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        await self._db.execute(
            "UPDATE users SET is_blocked = ? WHERE id = ?", (int(blocked), user_id)
        )

    async def set_banned(self, user_id: int, banned: bool) -> None:
        await self._db.execute(
            "UPDATE users SET is_banned = ? WHERE id = ?", (int(banned), user_id)
        )

    async def count(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM users"))


def _user(row: Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        first_name=row["first_name"],
        language=row["language"],
        telegram_language=row["telegram_language"],
        first_seen=row["first_seen"],
        is_blocked=bool(row["is_blocked"]),
        is_banned=bool(row["is_banned"]),
    )
