"""Job leases on one database shared by two worker processes: one holder at a time,
renewal only by the holder, takeover only after expiry or a release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from storage.leases import LeasesRepository
from tests.conftest import DatabaseFactory

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Clock:
    """The application clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def _two(database_factory: DatabaseFactory, clock: Clock) -> tuple[LeasesRepository, ...]:
    return (
        LeasesRepository(await database_factory(), clock),
        LeasesRepository(await database_factory(), clock),
    )


async def test_a_held_lease_is_refused_to_another_worker_until_it_expires(
    database_factory: DatabaseFactory,
) -> None:
    clock = Clock()
    first, second = await _two(database_factory, clock)

    assert await first.claim("order worker", "a", 15)
    assert not await second.claim("order worker", "b", 15)
    clock.now = T0 + timedelta(seconds=14.9)
    assert not await second.claim("order worker", "b", 15)
    assert await first.claim("order worker", "a", 15)  # the holder extends it

    clock.now = T0 + timedelta(seconds=30)  # 15 s after the last extension: expired
    assert await second.claim("order worker", "b", 15)
    lease = await first.get("order worker")
    assert lease is not None and lease.holder == "b"
    assert lease.expires_at == (clock.now + timedelta(seconds=15)).isoformat(
        timespec="milliseconds"
    )


async def test_renewal_works_for_the_holder_only_and_fails_after_a_takeover(
    database_factory: DatabaseFactory,
) -> None:
    clock = Clock()
    first, second = await _two(database_factory, clock)
    assert await first.claim("refund worker", "a", 10)

    clock.now = T0 + timedelta(seconds=5)
    assert await first.renew("refund worker", "a", 10)
    assert not await second.renew("refund worker", "b", 10)

    clock.now = T0 + timedelta(seconds=16)  # a's renewal lapsed (a paused, or died)
    assert await second.claim("refund worker", "b", 10)
    assert not await first.renew("refund worker", "a", 10)  # a must stop the job now
    assert await second.renew("refund worker", "b", 10)


async def test_a_release_lets_another_worker_claim_at_once(
    database_factory: DatabaseFactory,
) -> None:
    clock = Clock()
    first, second = await _two(database_factory, clock)
    assert await first.claim("broadcasts", "a", 60)
    assert not await second.release("broadcasts", "b")  # not b's to release
    assert not await second.claim("broadcasts", "b", 60)

    assert await first.release("broadcasts", "a")

    assert await second.claim("broadcasts", "b", 60)
    assert not await first.renew("broadcasts", "a", 60)


async def test_a_dead_holder_named_by_the_caller_is_taken_over_before_expiry(
    database_factory: DatabaseFactory,
) -> None:
    clock = Clock()
    first, second = await _two(database_factory, clock)
    assert await first.claim("payments", "host:1:x", 15, node="n1")

    assert not await second.claim("payments", "host:2:y", 15, node="n1", take_from="host:9:z")
    assert await second.claim("payments", "host:2:y", 15, node="n1", take_from="host:1:x")
    lease = await second.get("payments")
    assert lease is not None and (lease.holder, lease.node) == ("host:2:y", "n1")


async def test_leases_are_per_job(database_factory: DatabaseFactory) -> None:
    clock = Clock()
    first, second = await _two(database_factory, clock)
    assert await first.claim("order worker", "a", 15)
    assert await second.claim("refund worker", "b", 15)
    assert [(lease.job, lease.holder) for lease in await first.all()] == [
        ("order worker", "a"),
        ("refund worker", "b"),
    ]


async def test_many_workers_claiming_at_once_get_one_holder(
    database_factory: DatabaseFactory,
) -> None:
    clock = Clock()
    repos = [LeasesRepository(await database_factory(), clock) for _ in range(4)]

    for round_ in range(5):
        job = f"job {round_}"
        won = await asyncio.gather(
            *(repo.claim(job, f"w{i}", 15) for i, repo in enumerate(repos) for _ in range(3))
        )
        assert sum(won) == 3  # one worker, its three attempts (re-claims extend)
        winners = {i for i, ok in enumerate(won) if ok}
        assert len({i // 3 for i in winners}) == 1
