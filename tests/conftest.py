"""Shared fixtures. Everything runs on 127.0.0.1: the GamesDrop sandbox, the fake Bot API
and the real bot polling it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bot.offline import OfflineShop
from sandboxes.gamesdrop import DEFAULT_TOKEN, GamesDropSandbox, SandboxConfig
from services.suppliers.gamesdrop.client import GamesDropClient, RetryPolicy, Timeouts
from storage.db import Database


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def sandbox() -> AsyncIterator[GamesDropSandbox]:
    server = GamesDropSandbox(SandboxConfig(topup_seconds=0.4))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client(sandbox: GamesDropSandbox, http: httpx.AsyncClient) -> GamesDropClient:
    return GamesDropClient(
        http,
        DEFAULT_TOKEN,
        base_url=sandbox.base_url,
        user_info_url=sandbox.user_info_url,
        timeouts=Timeouts(read=2.0, create_order=1.0),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02),
        sleep=_no_sleep,
    )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "test.sqlite3")
    yield database
    await database.close()


DatabaseFactory = Callable[[], Awaitable[Database]]


@pytest.fixture
async def database_factory(tmp_path: Path) -> AsyncIterator[DatabaseFactory]:
    """Opens another connection pool to one shared database, as another worker process
    would (each call: a new :class:`Database` on the same file). Closed after the test.
    The scale-out tests (issue 20) take this fixture, so another engine can stand behind it."""
    opened: list[Database] = []

    async def open_one() -> Database:
        database = await Database.open(tmp_path / "shared.sqlite3")
        opened.append(database)
        return database

    yield open_one
    for database in opened:
        await database.close()


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[OfflineShop]:
    """The real bot long-polling the fake Bot API, with the GamesDrop sandbox behind it."""
    shop = OfflineShop(
        tmp_path / "shop.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.6),
        telegram_options={"precheckout_deadline": 5.0},
    )
    await shop.start()
    yield shop
    await shop.stop()
