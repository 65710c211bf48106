"""Shared fixtures. Everything runs on 127.0.0.1: the GamesDrop sandbox, the fake Bot API
and the real bot polling it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from bot.offline import OfflineShop
from sandboxes.gamesdrop import DEFAULT_TOKEN, GamesDropSandbox, SandboxConfig
from services.suppliers.gamesdrop.client import GamesDropClient, RetryPolicy, Timeouts
from storage.db import Database
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session, with database
    ``shop_template`` migrated once: each test's database is a copy of it."""
    server = PostgresServer()
    server.start()
    try:
        # in a thread of its own: the first test asking may be inside its event loop
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, _migrate_template(server)).result()
        yield server
    finally:
        server.stop()


async def _migrate_template(server: PostgresServer) -> None:
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute("CREATE DATABASE shop_template")
    finally:
        await admin.close()
    database = await Database.open(server.url_of("shop_template"))
    await database.close()


_copies = itertools.count(1)


async def fresh_postgres_database(server: PostgresServer) -> str:
    """The URL of a new database migrated like a new shop's (a copy of the template)."""
    name = f"shop_{next(_copies)}"
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE shop_template")
    finally:
        await admin.close()
    return server.url_of(name)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """The embedded engine only, for what only SQLite has (WAL readers, PRAGMAs)."""
    database = await Database.open(tmp_path / "test.sqlite3")
    yield database
    await database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The shop's database, once on each engine: every test using it runs twice."""
    if request.param == "sqlite":
        database = await Database.open(tmp_path / "test.sqlite3")
    else:
        server = request.getfixturevalue("postgres")
        database = await Database.open(await fresh_postgres_database(server))
    yield database
    await database.close()


DatabaseFactory = Callable[[], Awaitable[Database]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseFactory]:
    """Opens another connection pool to one shared database, as another worker process
    would (each call: a new :class:`Database` on the same database), once on each
    engine. Closed after the test."""
    if request.param == "sqlite":
        target: str = str(tmp_path / "shared.sqlite3")
    else:
        target = await fresh_postgres_database(request.getfixturevalue("postgres"))
    opened: list[Database] = []

    async def open_one() -> Database:
        database = await Database.open(target)
        opened.append(database)
        return database

    yield open_one
    for database in opened:
        await database.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every end-to-end test on the ``offline`` shop runs once on each engine, but those
    marked ``sqlite_only`` (what only the embedded engine has: its file, its lock)."""
    if "offline" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        engines = ["sqlite"] if only_sqlite else ["sqlite", "postgresql"]
        metafunc.parametrize("offline", engines, indirect=True)


@pytest.fixture
async def offline(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OfflineShop]:
    """The real bot long-polling the fake Bot API, with the GamesDrop sandbox behind it,
    on SQLite or on a fresh PostgreSQL database (``request.param``)."""
    url = None
    if getattr(request, "param", "sqlite") == "postgresql":
        url = await fresh_postgres_database(request.getfixturevalue("postgres"))
    shop = OfflineShop(
        tmp_path / "shop.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.6),
        telegram_options={"precheckout_deadline": 5.0},
        database_url=url,
    )
    await shop.start()
    yield shop
    await shop.stop()


# -- Redis: one throwaway server for the session, a clean database per test -----------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on 127.0.0.1 for the whole session (fails, never skips,
    when the binary is missing: the error names the install command)."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of the session's server (shared by every test)."""
    return f"{redis_server.url}/0"


_redis_databases = itertools.cycle(range(1, 64))


@pytest.fixture
def clean_redis_url(redis_server: RedisServer) -> str:
    """A database of its own for one test, emptied first: ``redis://127.0.0.1:<port>/<n>``."""
    import redis

    url = f"{redis_server.url}/{next(_redis_databases) % redis_server.databases}"
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        client.flushdb()
    return url
