"""Two real bot worker processes on PostgreSQL (and Redis, when the session has one) behind
the fake Bot API's webhook delivery, round-robin as a load balancer would spread it
(issue 20's "Done when"): checkout across workers, a duplicated payment, a broadcast to
2,000 users under the shared rate, and kill -9 of a worker mid-order and mid-broadcast."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.offline import ADMIN_ID
from sandboxes.cluster import Cluster
from sandboxes.gamesdrop import TEST_OFFER_ID
from sandboxes.telegram import FakeTelegram, FakeUser
from tests.conftest import fresh_postgres_database
from tests.e2e.journeys import reach_invoice
from tests.servers.postgres import PostgresServer

PUBG_60 = 10_001  # a top-up: player ID only
PLAYER = "12345678"
BROADCAST = "Big sale this weekend!"
#: broadcast messages per second in all (BROADCAST_RATE): fast, yet under what the fake
#: lets through before it answers 429
RATE = 100.0
FAKE_GLOBAL_RATE = 150


async def eventually(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` (for what the fake cannot signal: worker logs, the supplier)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


async def add_customers(database_url: str, count: int, first_id: int = 100_000) -> list[int]:
    """``count`` customers who once started the bot, written straight into the database."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    ids = list(range(first_id, first_id + count))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO users (id, username, first_name, telegram_language, first_seen, "
            "last_seen) VALUES ($1, $2, $3, 'en', $4, $4)",
            [(i, f"user{i}", f"User {i}", now) for i in ids],
        )
    finally:
        await conn.close()
    return ids


async def start_broadcast(telegram: FakeTelegram, text: str = BROADCAST) -> FakeUser:
    """The admin composes a broadcast through the bot and confirms it; returns the admin."""
    admin = telegram.user(ADMIN_ID, "Owner")
    mark = admin.mark()
    await admin.send("/broadcast")
    await admin.wait_for_text("Send or forward the message", since=mark)
    await admin.send(text)
    await admin.wait_for_text("Add a link button?", since=mark)
    await admin.send("/skip")
    await admin.wait_for_text("It goes to", since=mark)
    await admin.press("Confirm")
    return admin


def copies(telegram: FakeTelegram, chats: Iterable[int], text: str = BROADCAST) -> Counter[int]:
    """How many times each chat got ``text``."""
    return Counter(
        chat for chat in chats for m in telegram.bot_messages(chat) if m.get("text") == text
    )


def copy_times(telegram: FakeTelegram, chats: Iterable[int], text: str = BROADCAST) -> list[float]:
    """When the fake accepted each copy of ``text`` (``time.perf_counter()``), sorted."""
    return sorted(
        m["_sent_at"]
        for chat in chats
        for m in telegram.bot_messages(chat)
        if m.get("text") == text
    )


def busiest_window(times: list[float], seconds: float) -> int:
    """The most messages in any sliding window of ``seconds``."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def _redis_url(request: pytest.FixtureRequest) -> str | None:
    """The session's Redis when the suite has one (the ``redis_url`` fixture), else none:
    the workers then share only PostgreSQL."""
    try:
        return str(request.getfixturevalue("redis_url"))
    except pytest.FixtureLookupError:
        return None


@contextlib.asynccontextmanager
async def running(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path, **options: Any
) -> AsyncIterator[Cluster]:
    """A started two-worker cluster on a fresh database; every worker's log is printed
    when the test fails (pytest shows it with the failure)."""
    cluster = Cluster(
        await fresh_postgres_database(postgres),
        folder=tmp_path / "cluster",
        redis_url=_redis_url(request),
        **options,
    )
    try:
        await cluster.start()
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        await cluster.stop()


def conversation(telegram: FakeTelegram, user_id: int) -> list[int]:
    """Ids of the updates of ``user_id``'s private chat the webhook delivered."""
    return sorted(
        {
            attempt.update_id
            for attempt in telegram.webhook_attempts
            if attempt.ok and telegram.update_chat(attempt.update_id) == user_id
        }
    )


async def buy_top_up(cluster: Cluster, user: FakeUser, **pay: Any) -> None:
    """Open the top-up, press Buy, give the player id, confirm and pay."""
    await reach_invoice(cluster.offline, user, PUBG_60, PLAYER)  # type: ignore[arg-type]
    paid, error = await user.pay(**pay)
    assert paid, error


async def test_a_checkout_alternates_between_the_workers_and_completes(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> None:
    async with running(
        request, postgres, tmp_path, sandbox_options={"gamesdrop": {"topup_seconds": 0.6}}
    ) as cluster:
        alice = cluster.telegram.user(7001, "Alice")

        await buy_top_up(cluster, alice)

        await alice.wait_for_text("is complete", timeout=20)
        updates = conversation(cluster.telegram, alice.id)
        handled = [w.handled_updates() & set(updates) for w in cluster.workers]
        assert all(handled), f"each worker handles part of the conversation: {handled}"
        assert len(updates) == 6  # /start, Buy, player id, Pay, pre-checkout, payment
        assert {cluster.telegram.delivered_to(u)[0] for u in updates} == {0, 1}
        assert len(cluster.sandbox.orders) == 1
        assert sum("is complete" in text for text in alice.texts()) == 1


async def test_a_payment_delivered_to_both_workers_at_once_makes_one_supplier_order(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> None:
    async with running(request, postgres, tmp_path) as cluster:
        bea = cluster.telegram.user(7002, "Bea")
        await reach_invoice(cluster.offline, bea, TEST_OFFER_ID)  # type: ignore[arg-type]

        paid, error = await bea.pay(fan_out=True)
        assert paid, error
        payment = cluster.telegram.last_update_id

        await bea.wait_for_text("Your key", timeout=20)
        assert await eventually(
            lambda: cluster.telegram.delivered_to(payment) == [0, 1]
            or cluster.telegram.delivered_to(payment) == [1, 0],
            10, "the payment reached both workers",
        )  # fmt: skip
        await eventually(
            lambda: all(payment in w.handled_updates() for w in cluster.workers),
            10, "both workers handled the payment",
        )  # fmt: skip
        await asyncio.sleep(2.5)  # two more ticks of every order and delivery worker
        assert len(cluster.sandbox.orders) == 1
        assert cluster.sandbox.create_order_calls == 1
        assert sum("Your key" in text for text in bea.texts()) == 1
        assert cluster.telegram.method_calls["refundStarPayment"] == 0


async def test_a_broadcast_from_two_workers_reaches_2000_users_once_under_the_rate(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> None:
    async with running(
        request, postgres, tmp_path, settings={"broadcast_rate": RATE},
        telegram_options={"flood_limit": True, "global_rate": FAKE_GLOBAL_RATE, "chat_rate": 10_000},
    ) as cluster:  # fmt: skip
        users = await add_customers(cluster.database_url, 2000)

        admin = await start_broadcast(cluster.telegram)

        report = await admin.wait_for_text("Broadcast #1 done", timeout=45)
        received = copies(cluster.telegram, users)
        assert set(received) == set(users), f"{len(set(users) - set(received))} lost"
        assert set(received.values()) == {1}, "someone got it twice"
        assert "sent 2001 of 2001" in report["text"]  # the customers and the admin
        # arrival times jitter around the senders' pacing, and the fake shares the test
        # process: a pause there bunches the copies that arrive meanwhile (in two full-suite
        # runs, 108 in one second; alone the test passes; the pause's cause is not known).
        # Over two seconds such a bunch is 4 %; a second worker sending on its own budget
        # would double the rate
        times = copy_times(cluster.telegram, [*users, ADMIN_ID])
        assert busiest_window(times, 2.0) <= 2 * RATE * 1.05
        assert times[-1] - times[0] >= (len(times) - 1) / RATE * 0.95
        assert cluster.telegram.flood.too_many_requests == 0


async def test_kill_9_mid_order_and_mid_broadcast_the_other_worker_finishes_both(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> None:
    async with running(
        request, postgres, tmp_path, settings={"broadcast_rate": 50.0},
        sandbox_options={"gamesdrop": {"topup_seconds": 4.0}},
    ) as cluster:  # fmt: skip
        telegram = cluster.telegram
        users = await add_customers(cluster.database_url, 500)
        cara = telegram.user(7003, "Cara")
        await reach_invoice(cluster.offline, cara, PUBG_60, PLAYER)  # type: ignore[arg-type]
        admin = await start_broadcast(telegram)
        await telegram.wait_until(lambda: sum(copies(telegram, users).values()) >= 50, 20)
        sender = cluster.worker_of_port(
            next(c.peer_port for c in reversed(telegram.api_calls) if c.method == "copyMessage")
        )
        assert sender is not None, "the broadcasting worker is one of ours"

        telegram.webhook_pin = sender  # the sender takes the payment too
        paid, error = await cara.pay()
        assert paid, error
        await eventually(lambda: cluster.sandbox.orders, 10, "the supplier has the top-up")
        telegram.webhook_pin = None
        cluster.kill(sender)  # kill -9 while the top-up is processing and mid-broadcast
        sent_before = sum(copies(telegram, users).values())
        assert sent_before < len(users), "the kill came after the broadcast ended"

        await cara.wait_for_text("is complete", timeout=30)
        report = await admin.wait_for_text("Broadcast #1 done", timeout=40)
        received = copies(telegram, users)
        assert max(received.values()) == 1, "someone got the broadcast twice"
        # only what was under way at the kill may be lost (at most the in-flight window)
        assert len(users) - len(received) <= 8, f"{len(users) - len(received)} lost"
        assert "Broadcast #1 done" in report["text"]
        assert len(cluster.sandbox.orders) == 1
        assert cluster.sandbox.create_order_calls == 1
        assert sum("is complete" in text for text in cara.texts()) == 1


async def test_a_worker_stops_within_seconds_of_sigterm(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> None:
    """``docker stop`` (SIGTERM) on PostgreSQL and Redis: the worker finishes and exits by
    itself. aiogram's shutdown closed the Redis client the workers' wake-ups and cache bus
    share, the bus listener took that for a lost Redis and kept reconnecting, and the
    worker was killed after its grace period."""
    async with running(request, postgres, tmp_path, workers=1) as cluster:
        ann = cluster.telegram.user(7010, "Ann")
        await ann.send("/start")
        await ann.wait_for_text("Welcome", timeout=20)
        worker = cluster.workers[0]
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        for _ in range(100):
            if worker.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert worker.process.returncode == 0, worker.log_tail()
        assert "lost Redis" not in worker.log(), worker.log_tail()
