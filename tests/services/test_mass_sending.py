"""Broadcast sending against a stand-in Bot: what happens around a 429 and a cancel."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import CopyMessage

from services.mass_sending import BroadcastService
from storage.db import Database
from storage.mass_sending import MassSendingRepository
from storage.users import UsersRepository


class _FloodedBot:
    """copyMessage: the first call gets a 429 (retry after 1 s), the others go through."""

    def __init__(self) -> None:
        self.sent_to: list[int] = []
        self.calls = 0
        self.flooded = asyncio.Event()

    async def copy_message(self, *, chat_id: int, **_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            self.flooded.set()
            raise TelegramRetryAfter(
                CopyMessage(chat_id=chat_id, from_chat_id=1, message_id=1),
                "Too Many Requests: retry after 1",
                1,
            )
        self.sent_to.append(chat_id)


class _NoProgress:
    async def broadcast_progress(self, *args: Any) -> None:
        return None


async def test_cancel_during_a_rate_limit_pause_sends_nothing_more(db: Database) -> None:
    repo = MassSendingRepository(db)
    bot = _FloodedBot()
    service = BroadcastService(
        bot,  # type: ignore[arg-type]
        repo,
        UsersRepository(db),
        _NoProgress(),  # type: ignore[arg-type]
        rate=25.0,
    )
    broadcast = await repo.create_broadcast(1, 1, 1, None, None, [101, 102, 103, 104])

    await service.start(broadcast)
    await bot.flooded.wait()  # the sender now waits out the 429
    await service.cancel(broadcast.id)
    await service.wait(broadcast.id)

    assert bot.sent_to == []
    counts = await repo.broadcast_counts(broadcast.id)
    assert counts.get("sent", 0) == 0
    final = await repo.broadcast(broadcast.id)
    assert final is not None and final.status == "canceled"
