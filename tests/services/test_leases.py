"""Leased jobs over one database shared by two workers (two pools on one file, as two
processes would have): one worker runs a job, the other takes it over once the holder
stops renewing (after the TTL, not before), or at once after a clean stop."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from services.leases import LeaseService, local_node
from services.mass_sending import BroadcastService
from storage.db import Database
from storage.leases import LeasesRepository
from storage.mass_sending import MassSendingRepository
from storage.users import UsersRepository
from tests.conftest import DatabaseFactory

TTL = 0.3
#: references to the jobs' tasks (each test stops its services, which ends them)
_tasks: list[asyncio.Task[None]] = []


class Job:
    """A job body that records which worker ran it, and when."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.ticks: list[tuple[str, float]] = []
        self.overlaps = 0
        self.idle = asyncio.Event()

    def body(self, worker: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            if self.running:
                self.overlaps += 1
            self.running.add(worker)
            self.idle.clear()
            try:
                while True:
                    self.ticks.append((worker, time.monotonic()))
                    await asyncio.sleep(0.02)
            finally:
                self.running.discard(worker)
                if not self.running:
                    self.idle.set()

        return run

    async def wait_for(self, worker: str, timeout: float = 3.0) -> float:
        """When ``worker`` first ran the job after now."""
        since = time.monotonic()
        async with asyncio.timeout(timeout):
            while True:
                for who, at in self.ticks:
                    if who == worker and at >= since:
                        return at
                await asyncio.sleep(0.01)


async def _services(database_factory: DatabaseFactory) -> tuple[LeaseService, LeaseService]:
    return (
        LeaseService(LeasesRepository(await database_factory()), ttl=TTL, worker_id="a:1:x"),
        LeaseService(LeasesRepository(await database_factory()), ttl=TTL, worker_id="b:2:y"),
    )


async def test_two_workers_run_a_job_once_and_the_other_takes_over_after_the_ttl(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _services(database_factory)
    job = Job()
    a = asyncio.create_task(first.run_leased("order worker", job.body("a")))
    await job.wait_for("a")
    b = asyncio.create_task(second.run_leased("order worker", job.body("b")))
    await asyncio.sleep(TTL * 3)  # several renewals: a keeps it, b stands by
    assert job.running == {"a"}
    assert all(who == "a" for who, _ in job.ticks)

    killed_at = time.monotonic()
    await first.kill()  # kill -9: nothing released, renewals stop
    taken_at = await job.wait_for("b")

    assert TTL * 0.5 <= taken_at - killed_at <= TTL * 3
    assert job.running == {"b"}
    assert job.overlaps == 0
    assert a.done()
    await second.stop()
    assert b.done()


async def test_a_clean_stop_releases_the_job_and_the_other_worker_takes_it_at_once(
    database_factory: DatabaseFactory,
) -> None:
    first = LeaseService(LeasesRepository(await database_factory()), ttl=30, worker_id="a:1:x")
    second = LeaseService(
        LeasesRepository(await database_factory()), ttl=30, retry=0.05, worker_id="b:2:y"
    )
    job = Job()
    _tasks.append(asyncio.create_task(first.run_leased("refund worker", job.body("a"))))
    await job.wait_for("a")
    _tasks.append(asyncio.create_task(second.run_leased("refund worker", job.body("b"))))
    await asyncio.sleep(0.2)
    assert job.running == {"a"}

    stopped_at = time.monotonic()
    await first.stop()
    taken_at = await job.wait_for("b")

    assert taken_at - stopped_at < 1.0  # not the 30 s TTL
    assert job.overlaps == 0
    await second.stop()
    assert await second.repo.get("refund worker") is None


async def test_the_body_stops_promptly_when_its_lease_can_no_longer_be_renewed(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _services(database_factory)
    job = Job()
    _tasks.append(asyncio.create_task(first.run_leased("delivery outbox", job.body("a"))))
    await job.wait_for("a")

    first.renewers["delivery outbox"].cancel()  # renewals stop: the body must stop too
    await asyncio.wait_for(job.idle.wait(), 1.0)
    # the lease was not released: a stalled holder's lease still has to expire
    lease = await second.repo.get("delivery outbox")
    assert lease is not None and lease.holder == "a:1:x"
    await first.stop()
    await second.stop()


async def test_a_lease_taken_by_another_worker_stops_the_body_of_the_old_holder(
    database_factory: DatabaseFactory,
) -> None:
    first, second = await _services(database_factory)
    job = Job()
    _tasks.append(asyncio.create_task(first.run_leased("loyalty worker", job.body("a"))))
    await job.wait_for("a")
    # another worker (its clock ahead, or a holder paused past its TTL) takes it
    await second.repo.claim("loyalty worker", "b:2:y", TTL, take_from="a:1:x")

    await asyncio.wait_for(job.idle.wait(), TTL * 2)
    await first.stop()
    await second.stop()


async def test_different_jobs_spread_over_the_workers(database_factory: DatabaseFactory) -> None:
    first, second = await _services(database_factory)
    orders, refunds = Job(), Job()
    _tasks.append(asyncio.create_task(first.run_leased("order worker", orders.body("a"))))
    await orders.wait_for("a")
    _tasks.append(asyncio.create_task(second.run_leased("order worker", orders.body("b"))))
    _tasks.append(asyncio.create_task(second.run_leased("refund worker", refunds.body("b"))))
    await refunds.wait_for("b")  # b runs the job nobody held without waiting for a
    assert orders.running == {"a"}
    assert first.held == {"order worker"} and second.held == {"refund worker"}
    await first.stop()
    await second.stop()


async def test_a_body_that_returns_releases_its_lease(database_factory: DatabaseFactory) -> None:
    first, second = await _services(database_factory)
    ran: list[str] = []

    async def once() -> None:
        ran.append("a")

    await asyncio.wait_for(first.run_leased("catalogue sync", once), 1.0)
    assert ran == ["a"]
    assert await second.run_once("catalogue sync", once)  # free again at once
    assert ran == ["a", "a"]


async def test_a_restarted_process_takes_the_jobs_of_its_killed_predecessor_at_once(
    database_factory: DatabaseFactory,
) -> None:
    """The embedded default after kill -9 and a restart: the dead holder ran on this
    machine, its pid is gone, so the new process does not wait out the TTL."""
    repo = LeasesRepository(await database_factory())
    node = local_node()
    assert node is not None  # Linux: /proc is there
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()  # a pid that no longer runs
    holder = f"{socket.gethostname()}:{dead.pid}:deadbeef"
    assert await repo.claim("order worker", holder, 60, node=node)
    restarted = LeaseService(LeasesRepository(await database_factory()), ttl=60)
    assert restarted.worker_id.split(":")[1] == str(os.getpid())

    assert await restarted.claim("order worker")

    # a live holder on this machine (this very process) is never taken over early
    other = LeaseService(LeasesRepository(await database_factory()), ttl=60)
    assert not await other.claim("order worker")


# -- a broadcast sent by two workers -----------------------------------------------------


class CountingBot:
    """The sending edge: counts ``copyMessage`` calls per user (each takes ``delay``)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sends: Counter[int] = Counter()
        self.delay = delay

    async def copy_message(self, *, chat_id: int, **_: Any) -> None:
        await asyncio.sleep(self.delay)
        self.sends[chat_id] += 1


class NoProgress:
    async def broadcast_progress(self, *args: Any) -> None:
        return None


class BroadcastWorker:
    """One worker process's broadcast side: its own pool on the shared database, its
    lease service, and the ``broadcasts`` job running under the lease."""

    def __init__(self, db: Database, worker_id: str, bot: CountingBot) -> None:
        self.db = db
        self.repo = MassSendingRepository(db)
        self.service = BroadcastService(
            bot,  # type: ignore[arg-type]
            self.repo,
            UsersRepository(db),
            NoProgress(),  # type: ignore[arg-type]
            rate=400.0,
            progress_every=0.05,
        )
        self.service.leased = True
        self.leases = LeaseService(LeasesRepository(db), ttl=TTL, worker_id=worker_id)
        self.task = asyncio.create_task(
            self.leases.run_leased("broadcasts", lambda: self.service.run_worker(scan_every=0.05))
        )


async def _broadcast_workers(
    database_factory: DatabaseFactory, bots: tuple[CountingBot, CountingBot]
) -> tuple[BroadcastWorker, BroadcastWorker]:
    first = BroadcastWorker(await database_factory(), "a:1:x", bots[0])
    await asyncio.sleep(0.05)  # a claims the lease first
    second = BroadcastWorker(await database_factory(), "b:2:y", bots[1])
    return first, second


async def _wait_done(repo: MassSendingRepository, broadcast_id: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):  # another worker changes the row: poll it
        while True:
            broadcast = await repo.broadcast(broadcast_id)
            if broadcast is None or broadcast.status != "running":
                return
            await asyncio.sleep(0.02)


async def _until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):  # a counter of a fake: nothing to wait on
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


USERS = list(range(1001, 1081))


async def test_a_broadcast_started_on_either_worker_reaches_every_user_once(
    database_factory: DatabaseFactory,
) -> None:
    bots = (CountingBot(), CountingBot())
    first, second = await _broadcast_workers(database_factory, bots)
    broadcast = await second.repo.create_broadcast(1, 1, 7, None, None, USERS)

    await second.service.start(broadcast)  # the admin's update reached b; a holds the job
    await _wait_done(second.repo, broadcast.id, 5.0)

    assert bots[0].sends == Counter(USERS)  # the holder sent it, once to each user
    assert not bots[1].sends
    assert await second.repo.broadcast_counts(broadcast.id) == {"sent": len(USERS)}
    await first.leases.stop()
    await second.leases.stop()


async def test_a_broadcast_whose_worker_is_killed_is_finished_by_the_other_never_twice(
    database_factory: DatabaseFactory,
) -> None:
    bots = (CountingBot(delay=0.01), CountingBot(delay=0.01))
    first, second = await _broadcast_workers(database_factory, bots)
    broadcast = await first.repo.create_broadcast(1, 1, 7, None, None, USERS)
    await first.service.start(broadcast)
    await _until(lambda: sum(bots[0].sends.values()) >= 20)

    await first.leases.kill()  # mid-broadcast; nothing released
    await first.db.close()  # and its connections go (SQLite drops what it had begun)
    await _wait_done(second.repo, broadcast.id, 5.0)

    both = bots[0].sends + bots[1].sends
    assert max(both.values()) == 1  # nobody got it twice
    assert bots[1].sends  # b finished it
    interrupted = {
        user
        for user in USERS
        if await second.repo._db.fetchval(
            "SELECT status FROM broadcast_recipients WHERE broadcast_id = ? AND user_id = ?",
            (broadcast.id, user),
        )
        == "failed"
    }
    assert set(both) | interrupted == set(USERS)  # everyone else got it
    counts = await second.repo.broadcast_counts(broadcast.id)
    assert set(counts) <= {"sent", "failed"}
    assert counts["sent"] + counts.get("failed", 0) == len(USERS)
    await second.leases.stop()


async def test_a_broadcast_canceled_on_another_worker_stops(
    database_factory: DatabaseFactory,
) -> None:
    bots = (CountingBot(delay=0.02), CountingBot(delay=0.02))
    first, second = await _broadcast_workers(database_factory, bots)
    broadcast = await first.repo.create_broadcast(1, 1, 7, None, None, USERS)
    await first.service.start(broadcast)
    await _until(lambda: bool(bots[0].sends))

    await second.service.cancel(broadcast.id)  # the admin's cancel reached b
    await asyncio.sleep(0.3)
    sent = sum(bots[0].sends.values())
    await asyncio.sleep(0.3)

    assert sum(bots[0].sends.values()) == sent < len(USERS)
    assert not first.service._jobs.running(broadcast.id)
    await first.leases.stop()
    await second.leases.stop()
