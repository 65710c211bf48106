"""State several bot processes share through Redis (``REDIS_URL``): the connection and the
cache invalidation bus.

Each worker keeps a few things in memory for speed (a user's stored record with the ban
flag, the markup and Star value, the suppliers' routing switches, search aliases, the
catalogue's generation). When an admin changes one through one worker, that worker
publishes ``{"from", "topic", "key"}`` on the channel ``cache-invalidation:<db>`` (Redis
pub/sub, like Django's and Rails' cache buses) and every other worker reloads the
affected entry, within the network round trip. Pub/sub delivers nothing to a listener
that is disconnected, so a listener that (re)connects reloads everything it caches
(topic :data:`EVERYTHING`).

Without Redis, :class:`CacheBus` does nothing: one process has nobody to tell. ``redis``
is imported only when a Redis connection is made, so the one-process default never
loads it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

#: seconds any Redis command may take (a network call always has a timeout)
SOCKET_TIMEOUT = 5.0
#: seconds to open a connection
CONNECT_TIMEOUT = 3.0
#: the topic a (re)connected listener dispatches to every handler: reload everything
EVERYTHING = "*"
#: seconds between reconnection attempts of the listener, doubling up to the last
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)

#: ``shop_settings`` rows changed (markup, Star value, supplier switches): reload them
SHOP_SETTINGS = "shop_settings"
#: a user's stored record changed (ban, language); key: the user id
USER = "user"
#: the catalogue's products were rebuilt (a sync): search and page counts start afresh
CATALOGUE = "catalogue"
#: a search alias was added
SEARCH_ALIASES = "search_aliases"

#: a worker queued work for a background job another worker may run; key: the job's name
WAKE = "wake"

#: a handler gets the key of what changed (``""``: everything under its topic)
Handler = Callable[[str], Awaitable[None] | None]


def connect(url: str) -> Redis:
    """An asyncio Redis client for ``url`` (``redis://[:password@]host:port/db``) with
    :data:`SOCKET_TIMEOUT` on every command. Connects lazily, on the first command."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        health_check_interval=30,
    )


def shared_wake_ups(
    bus: CacheBus, wakers: Mapping[str, Callable[[], None]]
) -> dict[str, Callable[[], None]]:
    """Wake-ups that reach the worker running the job, whichever it is.

    ``wakers`` maps a job's name to this process's wake-up of it (the delivery outbox's,
    the refund worker's...). Each job runs in one worker at a time (its lease), not
    necessarily the one that queued the work, so each returned function wakes the job here
    and announces it on ``bus``; every other process wakes its own. Without Redis the bus
    tells nobody and the local wake-up is all there is (one process)."""

    def on_wake(job: str) -> None:
        for name, wake in wakers.items():
            if not job or job == name:  # "": the listener reconnected, wake them all
                wake()

    bus.subscribe(WAKE, on_wake)

    def everywhere(name: str, wake: Callable[[], None]) -> Callable[[], None]:
        def wake_everywhere() -> None:
            wake()
            bus.announce(WAKE, name)

        return wake_everywhere

    return {name: everywhere(name, wake) for name, wake in wakers.items()}


def database_of(client: Redis) -> int:
    """The database number ``client`` uses (0 unless the URL names another)."""
    return int(client.connection_pool.connection_kwargs.get("db", 0) or 0)


class CacheBus:
    """Tells other processes that a cached entry changed. This base class is the
    one-process bus: :meth:`publish` and :meth:`announce` do nothing and handlers are
    never called (the process that changed something updates its own cache itself)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler(key)`` when another process publishes on ``topic`` (and with
        ``key=""`` after the listener (re)connects). Sync or async; its errors are logged."""
        self._handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, key: str | int = "") -> None:
        """Tell the other processes that ``key`` under ``topic`` changed."""
        return None

    def announce(self, topic: str, key: str | int = "") -> None:
        """:meth:`publish` from synchronous code (in the background)."""
        return None

    async def run(self) -> None:
        """Listen until cancelled (nothing to listen to here)."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        """Wait for announcements still being sent."""
        return None

    async def _dispatch(self, topic: str, key: str) -> None:
        """Call the handlers of ``topic`` (every handler with ``""`` for :data:`EVERYTHING`);
        one handler's error is logged and the others still run."""
        if topic == EVERYTHING:
            targets = [(name, h) for name, hs in self._handlers.items() for h in hs]
            key = ""
        else:
            targets = [(topic, h) for h in self._handlers.get(topic, [])]
        for name, handler in targets:
            try:
                result = handler(key)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("reloading cache %s (key %r) failed", name, key)


class RedisCacheBus(CacheBus):
    """The bus over Redis pub/sub on ``cache-invalidation:<db>``. :meth:`run` is the
    listener (a task the :class:`~bot.app.Shop` owns): it reconnects after any error,
    logging it, and reloads everything after each (re)connection. Messages this process
    published itself are ignored."""

    def __init__(self, client: Redis, channel: str | None = None) -> None:
        super().__init__()
        self._redis = client
        self.channel = channel or f"cache-invalidation:{database_of(client)}"
        self.sender = uuid.uuid4().hex
        #: set while the listener is subscribed (tests wait for it before publishing)
        self.listening = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()

    async def publish(self, topic: str, key: str | int = "") -> None:
        """Publish on the channel. A Redis error is logged, not raised: the change itself
        is saved, and the other workers catch up when their listener reconnects."""
        message = json.dumps({"from": self.sender, "topic": topic, "key": str(key)})
        try:
            await self._redis.publish(self.channel, message)
        except Exception:
            logger.exception(
                "could not tell the other workers that %s %r changed: they serve the old "
                "value until their next reconnection",
                topic,
                key,
            )

    def announce(self, topic: str, key: str | int = "") -> None:
        task = asyncio.get_running_loop().create_task(self.publish(topic, key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def run(self) -> None:
        """Listen until cancelled: reconnect after an error (with a growing delay, logged),
        reload everything after each (re)connection, dispatch every message."""
        failures = 0
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # redis-py turns a cancellation inside a read into a connection error
                    raise asyncio.CancelledError from None
                self.listening.clear()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                logger.exception(
                    "cache invalidation listener on %s lost Redis; reconnecting in %s s",
                    self.channel,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            # anything published while this process was not listening was lost
            await self._dispatch(EVERYTHING, "")
            self.listening.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    await self._handle(message["data"])
        finally:
            self.listening.clear()
            await pubsub.aclose()

    async def _handle(self, data: Any) -> None:
        try:
            message = json.loads(data)
            sender, topic, key = message["from"], message["topic"], message["key"]
        except (ValueError, TypeError, KeyError):
            logger.error("unreadable cache invalidation message on %s: %r", self.channel, data)
            return
        if sender != self.sender:
            await self._dispatch(str(topic), str(key))
