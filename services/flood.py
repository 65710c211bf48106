"""One flood budget for everything the bot sends (Telegram allows about 30 messages per
second in bulk and answers 429 with ``retry_after`` past it).

Customer deliveries come first: while one is being sent, bulk senders (broadcasts) hold
back, and a 429 seen by any sender pauses bulk sending for its ``retry_after`` (plus a
second, so a delivery due at the same moment goes before them).

With several bot processes (``REDIS_URL`` set), :class:`SharedFloodBudget` makes the
bulk rate one budget for all of them (a Redis script hands out send slots ``1/rate``
seconds apart, on Redis' clock, like a GCRA limiter), and a 429 seen by one pauses bulk
sending in all. :class:`SharedUserLimit` is the per-user token bucket of the throttle,
counted in Redis so a user's updates count across workers. Both are one atomic Lua
script each (``EVALSHA``), one round trip per message or update.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

BULK_MARGIN = 1.0  # seconds bulk senders wait past a retry_after, after deliveries


class FloodBudget:
    """Shared by the delivery outbox (urgent) and broadcasts (bulk)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll: float = 0.05,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._poll = poll
        self._urgent = 0
        self._paused_until = 0.0

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Hold bulk sending while an urgent message is being sent."""
        self._urgent += 1
        try:
            yield
        finally:
            self._urgent -= 1

    def pause(self, seconds: float) -> None:
        """A 429 asked to wait ``seconds``: bulk senders wait that long and a margin."""
        self._paused_until = max(self._paused_until, self._clock() + seconds + BULK_MARGIN)

    @property
    def bulk_blocked(self) -> bool:
        return self._urgent > 0 or self._paused_until > self._clock()

    async def bulk_turn(self) -> None:
        """Return when a bulk message may go: no pause in force, no delivery under way."""
        while True:
            wait = self._paused_until - self._clock()
            if wait > 0:
                await self._sleep(wait)
            elif self._urgent:
                await self._sleep(self._poll)
            else:
                return


#: Redis microseconds now (server clock: every worker agrees on it)
_NOW_US = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

#: KEYS: pause, next free slot; ARGV: slot interval (us). Returns ``{1, us}`` while bulk
#: sending is paused (ask again in ``us``), else ``{0, us}``: the next free slot is the
#: caller's, to send in ``us`` microseconds. Slots are handed out in the order asked, so
#: no worker waits behind another's every turn (asking again at the slot's time, the
#: worker whose timer fired first took every slot and starved the other for seconds).
_BULK_SLOT = (
    _NOW_US
    + """
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused > now then return {1, paused - now} end
local slot = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[2], string.format('%d', slot + interval),
           'PX', math.ceil((slot + interval - now) / 1000) + 1000)
return {0, slot - now}
"""
)

#: KEYS: pause; ARGV: seconds to pause (us). Never shortens a longer pause in force.
_PAUSE = (
    _NOW_US
    + """
local untl = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > paused then
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""
)


class SharedFloodBudget(FloodBudget):
    """:class:`FloodBudget` shared by every worker on one Redis: :meth:`bulk_turn` also
    takes one of the ``rate`` slots per second the workers share (so N workers sending
    at once stay under ``rate`` messages per second in total) and waits out a pause any
    worker set; :meth:`pause` also pauses the others (written in the background: the
    callers' ``pause`` stays synchronous). Deliveries (:meth:`urgent`) hold back this
    worker's bulk senders only. ``prefix`` names the keys (``<prefix>:pause``,
    ``<prefix>:slot``). While Redis does not answer, :meth:`bulk_turn` logs it and waits
    (bulk sending holds rather than exceed the budget); :meth:`pause` logs it."""

    def __init__(
        self,
        client: Redis,
        rate: float,
        prefix: str = "flood:bulk",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll: float = 0.05,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"the shared bulk rate must be positive, not {rate}")
        super().__init__(clock, sleep, poll)
        self._redis = client
        self._interval_us = max(1, round(1_000_000 / rate))
        self._keys = (f"{prefix}:pause", f"{prefix}:slot")
        self._slot = client.register_script(_BULK_SLOT)
        self._pause = client.register_script(_PAUSE)
        self._pending: set[asyncio.Task[None]] = set()

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        task = asyncio.get_running_loop().create_task(self._share_pause(seconds + BULK_MARGIN))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _share_pause(self, seconds: float) -> None:
        try:
            await self._pause(keys=[self._keys[0]], args=[math.ceil(seconds * 1_000_000)])
        except Exception:
            logger.exception("could not pause the other workers' bulk sending for %s s", seconds)

    async def settled(self) -> None:
        """Until pauses set by :meth:`pause` have reached Redis."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def bulk_turn(self) -> None:
        """This worker's turn (:meth:`FloodBudget.bulk_turn`), then a shared slot: returns
        at the time of the next free slot, reserved in the order asked, once no worker's
        pause is in force."""
        from redis.exceptions import RedisError

        while True:
            await super().bulk_turn()
            try:
                paused, wait_us = (
                    int(value)
                    for value in await self._slot(keys=list(self._keys), args=[self._interval_us])
                )
            except (RedisError, OSError):
                # without the shared budget this worker cannot know the others' rate: bulk
                # sending holds (customer deliveries do not use it) until Redis answers
                logger.exception("shared flood budget unreachable; bulk sending waits %s s", 1.0)
                await self._sleep(1.0)
                continue
            if wait_us > 0:
                await self._sleep(wait_us / 1_000_000)
            if not paused:
                # the slot reserved is ours (a pause another worker set while this one
                # waited, at most a few slots, is seen at the next turn)
                return


#: KEYS: the user's bucket; ARGV: rate (tokens per second), burst. 1: allowed, 0: not.
_USER_BUCKET = (
    _NOW_US
    + """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return allowed
"""
)


class SharedUserLimit:
    """Per-user token bucket in Redis: ``rate`` updates per second on average, bursts of
    ``burst``, counted across every worker (the throttle of
    :class:`bot.middlewares.ThrottlingMiddleware` with ``REDIS_URL``). A bucket that has
    refilled expires. Raises Redis' errors."""

    def __init__(self, client: Redis, rate: float, burst: int, prefix: str = "flood:user") -> None:
        self._rate = rate
        self._burst = burst
        self._prefix = prefix
        self._script = client.register_script(_USER_BUCKET)

    async def allow(self, user_id: int) -> bool:
        """Take a token from ``user_id``'s bucket: ``True`` when there was one."""
        allowed = await self._script(
            keys=[f"{self._prefix}:{user_id}"], args=[repr(self._rate), self._burst]
        )
        return bool(int(allowed))
