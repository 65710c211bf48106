"""Leased jobs over one database shared by two workers (two pools on one file, as two
processes would have): one worker runs a job, the other takes it over once the holder
stops renewing (after the TTL, not before), or at once after a clean stop."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from services.leases import LeaseService, local_node
from storage.leases import LeasesRepository
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
