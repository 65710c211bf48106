import pytest
from aiogram.types import Update, User

from bot.middlewares import PRUNE_EVERY, ThrottlingMiddleware
from services.flood import SharedUserLimit
from services.shared_state import connect
from tests.servers import free_port


def test_throttling_allows_a_burst_then_the_rate_and_forgets_idle_users() -> None:
    throttle = ThrottlingMiddleware(rate=2, burst=3)
    assert [throttle.allow(1, 0.0) for _ in range(4)] == [True, True, True, False]
    assert throttle.allow(1, 0.5)  # one token back after 0.5 s at 2/s
    assert not throttle.allow(1, 0.5)
    for user_id in range(100, 100 + PRUNE_EVERY):
        throttle.allow(user_id, 1000.0)  # long after user 1 went quiet
    assert 1 not in throttle._buckets
    assert throttle.allow(1, 1000.0)  # a forgotten user starts with a full bucket


def _update_from(user_id: int) -> tuple[Update, dict[str, object]]:
    return Update(update_id=1), {
        "event_from_user": User(id=user_id, is_bot=False, first_name="Ann")
    }


async def test_with_redis_the_throttle_counts_a_users_updates_across_workers(
    clean_redis_url: str,
) -> None:
    clients = [connect(clean_redis_url), connect(clean_redis_url)]
    workers = [
        ThrottlingMiddleware(1, 3, shared=SharedUserLimit(client, 1, 3)) for client in clients
    ]
    handled: list[int] = []

    async def handler(event: Update, data: dict[str, object]) -> None:
        handled.append(len(handled))

    for worker in (*workers, *workers):  # alternating between the two workers
        await worker(handler, *_update_from(5))
    assert len(handled) == 3  # a burst of 3 in all: the fourth update is dropped
    await workers[0](handler, *_update_from(6))
    assert len(handled) == 4
    for client in clients:
        await client.aclose()


async def test_a_throttle_that_cannot_reach_redis_lets_updates_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    throttle = ThrottlingMiddleware(1, 1, shared=SharedUserLimit(client, 1, 1))
    handled: list[str] = []

    async def handler(event: Update, data: dict[str, object]) -> None:
        handled.append("ok")

    await throttle(handler, *_update_from(5))
    assert handled == ["ok"]
    assert "shared throttle unavailable" in caplog.text
    await client.aclose()
