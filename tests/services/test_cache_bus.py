"""Caches invalidated across workers (``REDIS_URL``): two workers, each with its own
services over one shared database file and its own connection to a real Redis; an
admin change made through one is served by the other within a second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from aiogram.types import Update, User
from redis.asyncio import Redis

from bot.i18n import create_i18n
from bot.middlewares import UserMiddleware
from services.catalogue import CatalogueService
from services.pricing import PriceBook, PricingService
from services.routing import RoutingService, SourceMode
from services.search import SearchService
from services.shared_state import USER, CacheBus, RedisCacheBus, connect, shared_wake_ups
from services.suppliers.gamesdrop.client import GamesDropClient
from services.suppliers.registry import Suppliers
from storage.catalogue import CatalogueRepository
from storage.db import Database
from storage.settings import ShopSettingsRepository
from storage.users import UsersRepository

DEFAULTS = PriceBook(
    usd_rates={"USD": Decimal(1)}, markup=Decimal("0.15"), star_usd=Decimal("0.013")
)


@dataclass
class Worker:
    """One bot process's share of the test: database connection, Redis, bus, listener."""

    db: Database
    redis: Redis
    bus: RedisCacheBus
    listener: asyncio.Task[None]

    async def close(self) -> None:
        self.listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.listener
        await self.bus.close()
        await self.redis.aclose()
        await self.db.close()


async def start_worker(path: Path, redis_url: str) -> Worker:
    db = await Database.open(path)
    redis = connect(redis_url)
    bus = RedisCacheBus(redis)
    return Worker(db, redis, bus, asyncio.create_task(bus.run()))


async def listening(*workers: Worker) -> None:
    for worker in workers:
        await asyncio.wait_for(worker.bus.listening.wait(), 5.0)


@pytest.fixture
async def pair(tmp_path: Path, clean_redis_url: str) -> AsyncIterator[tuple[Worker, Worker]]:
    first = await start_worker(tmp_path / "shop.sqlite3", clean_redis_url)
    second = await start_worker(tmp_path / "shop.sqlite3", clean_redis_url)
    yield first, second
    await first.close()
    await second.close()


async def seconds_until(condition: Callable[[], bool], limit: float = 1.0) -> float:
    """How long until ``condition()`` holds; fails past ``limit`` seconds."""
    started = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"not seen within {limit} s"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def test_a_markup_set_through_one_worker_prices_in_the_other_within_a_second(
    pair: tuple[Worker, Worker],
) -> None:
    services = []
    for worker in pair:
        pricing = PricingService(DEFAULTS, ShopSettingsRepository(worker.db))
        await pricing.load()
        pricing.share_through(worker.bus)
        services.append(pricing)
    await listening(*pair)
    first, second = services
    assert second.book.stars(Decimal(10), "USD") == 885  # 10 USD x 1.15 / 0.013

    await first.set_markup(Decimal("0.5"), admin_id=1)
    await seconds_until(lambda: second.book.markup == Decimal("0.5"))
    assert second.book.stars(Decimal(10), "USD") == 1154  # 10 USD x 1.5 / 0.013

    await second.set_star_usd(Decimal("0.02"), admin_id=2)  # and the other way round
    await seconds_until(lambda: first.book.star_usd == Decimal("0.02"))
    assert first.book.markup == Decimal("0.5")


def update_from(user_id: int, update_id: int) -> tuple[Update, dict[str, object]]:
    user = User(id=user_id, is_bot=False, first_name="Ann", language_code="en")
    return Update(update_id=update_id), {"event_from_user": user}


async def test_a_ban_made_through_one_worker_holds_in_the_other_within_a_second(
    pair: tuple[Worker, Worker],
) -> None:
    i18n = create_i18n("en")
    middlewares = []
    for worker in pair:
        middleware = UserMiddleware(UsersRepository(worker.db), i18n)
        middleware.share_through(worker.bus)
        middlewares.append(middleware)
    await listening(*pair)
    handled: list[int] = []

    async def handler(event: Update, data: dict[str, object]) -> None:
        handled.append(event.update_id)

    for update_id, middleware in enumerate(middlewares):  # both cache the user, not banned
        await middleware(handler, *update_from(42, update_id))
    assert handled == [0, 1]

    # /user 42 ban in the first worker: stored, then its cached record forgotten
    await UsersRepository(pair[0].db).set_banned(42, True)
    middlewares[0].forget(42)
    second = middlewares[1]

    async def dropped_by_second() -> bool:
        before = len(handled)
        await second(handler, *update_from(42, 100))
        return len(handled) == before

    started = time.monotonic()
    while not await dropped_by_second():
        assert time.monotonic() - started < 1.0, "the ban did not reach the second worker"
        await asyncio.sleep(0.01)
    assert await dropped_by_second()  # and stays dropped


async def test_a_catalogue_synced_by_one_worker_is_searched_afresh_in_the_other(
    pair: tuple[Worker, Worker], client: GamesDropClient
) -> None:
    catalogues = []
    for worker in pair:
        catalogue = CatalogueService(client, CatalogueRepository(worker.db))
        catalogue.share_through(worker.bus)
        catalogues.append(catalogue)
    await listening(*pair)
    assert (await catalogues[1].search.search("genshin")).total == 0  # nothing synced yet

    await catalogues[0].sync()  # the one scheduled sync, run by the first worker
    await seconds_until(lambda: catalogues[1].repo.generation > 0)
    assert (await catalogues[1].search.search("genshin")).total > 0


async def test_a_search_alias_added_through_one_worker_is_read_by_the_other(
    pair: tuple[Worker, Worker],
) -> None:
    searches = []
    for worker in pair:
        search = SearchService(CatalogueRepository(worker.db))
        search.share_through(worker.bus)
        searches.append(search)
    await listening(*pair)
    built = await searches[1]._current()  # the second worker built its index
    assert "gensh" not in built.aliases
    await searches[0].add_alias("Gensh", "genshin impact", admin_id=1)
    await seconds_until(lambda: searches[1]._index is None)
    index = await searches[1]._current()
    assert index.aliases["gensh"] == "genshin impact"


async def test_the_listener_reconnects_and_reloads_what_it_missed(
    pair: tuple[Worker, Worker], caplog: pytest.LogCaptureFixture
) -> None:
    reloads: list[str] = []
    pair[1].bus.subscribe(USER, reloads.append)
    await listening(*pair)
    reloads.clear()
    # Redis drops the second worker's subscription (a restart, a network cut)
    killed = await pair[0].redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    await seconds_until(lambda: not pair[1].bus.listening.is_set(), 3.0)
    await seconds_until(lambda: pair[1].bus.listening.is_set(), 3.0)
    assert "" in reloads  # whatever was published meanwhile: every cached user forgotten
    assert any("lost Redis; reconnecting" in r.getMessage() for r in caplog.records)
    await listening(*pair)
    pair[0].bus.announce(USER, 7)
    await seconds_until(lambda: "7" in reloads)


async def test_without_redis_the_bus_tells_nobody_and_costs_nothing() -> None:
    bus = CacheBus()
    heard: list[str] = []
    bus.subscribe(USER, heard.append)
    await bus.publish(USER, 1)
    bus.announce(USER, 2)
    await asyncio.sleep(0)
    assert heard == []


async def test_a_supplier_switched_off_in_one_worker_gets_no_orders_from_the_other(
    pair: tuple[Worker, Worker], client: GamesDropClient
) -> None:
    routings = []
    for worker in pair:
        routing = RoutingService(
            Suppliers([client]), CatalogueRepository(worker.db),
            ShopSettingsRepository(worker.db), lambda: DEFAULTS,
        )  # fmt: skip
        await routing.load()
        routing.share_through(worker.bus)
        routings.append(routing)
    await listening(*pair)
    assert routings[1].usable(client.name)
    await routings[0].set_mode(client.name, SourceMode.DISABLED, admin_id=1)
    await seconds_until(lambda: not routings[1].usable(client.name))


async def test_work_queued_by_one_worker_wakes_the_job_running_in_the_other(
    pair: tuple[Worker, Worker],
) -> None:
    """A key paid for through worker A is queued for the outbox that worker B runs (its
    lease): B must start sending at once, not at its next idle pass half a minute later."""
    first, second = pair
    woken: dict[str, list[str]] = {"first": [], "second": []}
    arrived = asyncio.Event()

    def waker(name: str, job: str) -> Callable[[], None]:
        def wake() -> None:
            woken[name].append(job)
            if name == "second":
                arrived.set()

        return wake

    wakes = {
        name: shared_wake_ups(worker.bus, {job: waker(name, job) for job in ("outbox", "refunds")})
        for name, worker in (("first", first), ("second", second))
    }
    await asyncio.sleep(0.2)  # a listener connecting now wakes every job once: not this
    for calls in woken.values():
        calls.clear()
    arrived.clear()
    wakes["first"]["outbox"]()
    await asyncio.wait_for(arrived.wait(), 1.0)
    await asyncio.sleep(0.05)  # nothing else follows
    assert woken["second"] == ["outbox"]  # only the job that has work, in the other worker
    assert woken["first"] == ["outbox"]  # and its own, as before


async def test_a_stopping_worker_stops_its_listener_at_once(clean_redis_url: str) -> None:
    """Cancelled inside a read, redis-py may close the connection and raise a connection
    error instead of the cancellation; and at a worker's shutdown its connections may be
    closed under the listener. Either way the listener stops when cancelled: taking it for
    a lost Redis and reconnecting kept the worker from ever stopping."""
    redis = connect(clean_redis_url)
    bus = RedisCacheBus(redis)
    listener = asyncio.create_task(bus.run())
    try:
        await asyncio.wait_for(bus.listening.wait(), 5)
        await redis.aclose(close_connection_pool=True)  # as a shutdown closing the client
        await asyncio.sleep(0.3)  # the listener notices, reconnects and waits again
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(listener, 3)
    finally:
        listener.cancel()
        await redis.aclose()
