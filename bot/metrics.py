"""Prometheus metrics of the shop, served at ``/metrics`` (see :mod:`bot.health`).

Imported only when the metrics endpoint is on (webhook mode, or ``HEALTH__PORT`` in long
polling): the embedded one-process default never loads prometheus-client (~0.7 MiB RSS
and ~40 ms of start-up measured) nor pays a middleware per update.

What is measured, and where:

- updates handled by kind, outcome and latency: an outer middleware on
  ``dispatcher.update``, registered before every other one (throttled updates count too);
- Telegram flood waits (429 ``retry_after``) by Bot API method: a request middleware on
  the bot's session, which every Bot API call passes through;
- supplier calls by supplier name and endpoint (the :class:`Supplier` method: one shared
  place for every vendor, named by ``supplier.name`` at run time): latency, and outcomes
  by error class;
- orders by status, outbox depth (deliveries, refunds: pending and the oldest one's age)
  and broadcast progress: counted in the database on scrape, at most every
  ``HEALTH__GAUGE_SECONDS`` (:class:`storage.ops.OpsRepository`, indexed counts).

Several worker processes (``python -m bot --workers N``) share one port, so a scrape
reaches any one of them: they write their counters to ``PROMETHEUS_MULTIPROC_DIR`` (set by
the parent) and whichever answers adds up every worker's (prometheus-client's
multiprocess mode). The database figures are the same for every worker and are counted
by the one answering. One process per container: each is its own scrape target.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import TelegramObject, Update

from storage.ops import OpsRepository

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from aiogram.methods.base import TelegramMethod

    from services.suppliers.registry import Suppliers

logger = logging.getLogger(__name__)

#: The supplier interface's calls that reach the network (``Supplier`` in
#: ``services.suppliers.base``): the ``endpoint`` label. ``iter_catalogue`` is left out:
#: syncs run in their own child process and report through ``sync_runs``.
SUPPLIER_CALLS = (
    "get_balance", "list_transactions", "find_offer", "create_order", "get_order",
    "resolve_order", "fetch_keys", "get_servers", "check_player", "get_telegram_user",
)  # fmt: skip
UPDATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SUPPLIER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0)


class Metrics:
    """The shop's metrics, on a registry of their own (several shops in one test process
    never collide). ``ops`` answers the database figures, reused for ``gauge_seconds``;
    ``suppliers_up()`` (optional) gives ``{supplier: reachable}`` from the shop's
    circuit breaker and supplier watch, without a network call."""

    def __init__(
        self,
        ops: OpsRepository,
        gauge_seconds: float = 15.0,
        suppliers_up: Callable[[], dict[str, bool]] | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "shop_updates", "Telegram updates handled, by kind and outcome "
            "(ok, unhandled: no handler matched, error: a handler raised)",
            ["kind", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.update_seconds = Histogram(
            "shop_update_seconds", "Seconds from an update's arrival to its handler's end",
            ["kind"], buckets=UPDATE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.supplier_calls = Counter(
            "shop_supplier_calls", "Supplier calls by supplier, endpoint and outcome "
            "(ok, or the error class: SupplierTimeout, OrderOutcomeUnknown...)",
            ["supplier", "endpoint", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.supplier_seconds = Histogram(
            "shop_supplier_call_seconds", "Seconds a supplier call took, retries included",
            ["supplier", "endpoint"], buckets=SUPPLIER_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.flood_waits = Counter(
            "shop_telegram_flood_waits", "Bot API answers 429 (flood limit) by method",
            ["method"], registry=self.registry,
        )  # fmt: skip
        self.flood_wait_seconds = Counter(
            "shop_telegram_flood_wait_seconds", "Seconds of retry_after Telegram asked for",
            ["method"], registry=self.registry,
        )  # fmt: skip
        self.database = DatabaseFigures(ops, gauge_seconds, suppliers_up)
        self.registry.register(self.database)

    async def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric (every worker's in multiprocess mode) and its
        content type. Recounts the database figures when they are older than allowed;
        a failed count is logged and its gauges left out of this scrape."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        await self.database.refresh()
        registry = self.registry
        if self.multiprocess_dir:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
            registry.register(self.database)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def update_middleware(self) -> UpdateMetricsMiddleware:
        """The outer middleware for ``dispatcher.update`` that counts and times updates."""
        return UpdateMetricsMiddleware(self)

    def flood_middleware(self) -> FloodWaitMiddleware:
        """The session middleware that counts 429 answers (``bot.session.middleware``)."""
        return FloodWaitMiddleware(self)

    def instrument(self, supplier: Any) -> None:
        """Time and count every network call of ``supplier`` (its :data:`SUPPLIER_CALLS`),
        labelled with ``supplier.name``. The methods are wrapped on the instance, so the
        client keeps its class (vendor code checks ``isinstance``)."""
        name = str(supplier.name)
        for endpoint in SUPPLIER_CALLS:
            method = getattr(supplier, endpoint, None)
            if method is None:
                continue
            setattr(supplier, endpoint, self._timed(name, endpoint, method))

    def _timed(
        self, supplier: str, endpoint: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        calls, seconds = self.supplier_calls, self.supplier_seconds.labels(supplier, endpoint)

        @functools.wraps(method)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            outcome = "ok"
            try:
                return await method(*args, **kwargs)
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                if outcome != "NotImplementedError":  # a capability missing: no call made
                    seconds.observe(time.perf_counter() - start)
                    calls.labels(supplier, endpoint, outcome).inc()

        return timed


class DatabaseFigures:
    """A Prometheus collector of the figures counted in the database (and the suppliers'
    reachability as the shop last saw it). :meth:`refresh` counts (async); ``collect``,
    called by prometheus-client, only reports what was counted."""

    def __init__(
        self,
        ops: OpsRepository,
        max_age: float,
        suppliers_up: Callable[[], dict[str, bool]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ops = ops
        self.max_age = max_age
        self.suppliers_up = suppliers_up
        self._clock = clock
        self._counted_at: float | None = None
        self._orders: dict[str, int] = {}
        self._outboxes: dict[str, tuple[int, float]] = {}
        self._broadcast: dict[str, int] = {}
        self._failed = False

    async def refresh(self) -> None:
        """Count again when the last count is older than ``max_age`` seconds."""
        now = self._clock()
        if self._counted_at is not None and now - self._counted_at < self.max_age:
            return
        try:
            orders = await self.ops.orders_by_status()
            deliveries = await self.ops.deliveries()
            refunds = await self.ops.refunds()
            broadcast = await self.ops.broadcast_recipients()
        except Exception:
            logger.exception("counting orders and outboxes for /metrics failed")
            self._failed = True
            return
        self._orders, self._broadcast = orders, broadcast
        self._outboxes = {
            "deliveries": (deliveries.pending, deliveries.oldest_age),
            "refunds": (refunds.pending, refunds.oldest_age),
        }
        self._failed = False
        self._counted_at = now

    def describe(self) -> list[Any]:
        return []  # the families are known only once counted

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        if self.suppliers_up is not None:
            up = GaugeMetricFamily(
                "shop_supplier_up", "1 while the shop counts the supplier reachable (circuit "
                "breaker closed, balance watch answered), else 0", labels=["supplier"],
            )  # fmt: skip
            for name, ok in sorted(self.suppliers_up().items()):
                up.add_metric([name], 1.0 if ok else 0.0)
            yield up
        if self._counted_at is None or self._failed:
            return
        orders = GaugeMetricFamily("shop_orders", "Orders by status", labels=["status"])
        for status, count in sorted(self._orders.items()):
            orders.add_metric([status], count)
        yield orders
        pending = GaugeMetricFamily(
            "shop_outbox_pending", "Rows waiting in an outbox (deliveries: customer "
            "messages; refunds: Star refunds not yet confirmed)", labels=["outbox"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "shop_outbox_oldest_seconds", "Age of the oldest row waiting in an outbox",
            labels=["outbox"],
        )  # fmt: skip
        for name, (count, age) in self._outboxes.items():
            pending.add_metric([name], count)
            oldest.add_metric([name], age)
        yield pending
        yield oldest
        recipients = GaugeMetricFamily(
            "shop_broadcast_recipients", "Recipients of the running broadcasts by status "
            "(pending, sending, sent, failed, blocked)", labels=["status"],
        )  # fmt: skip
        for status, count in sorted(self._broadcast.items()):
            recipients.add_metric([status], count)
        yield recipients


class UpdateMetricsMiddleware(BaseMiddleware):
    """Counts each update by kind (``message``, ``callback_query``...) and outcome, and
    times it; exceptions go on to the next middleware unchanged."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        kind = event.event_type if isinstance(event, Update) else type(event).__name__
        start = time.perf_counter()
        outcome = "ok"
        try:
            result = await handler(event, data)
            if result is UNHANDLED:
                outcome = "unhandled"
            return result
        except BaseException:
            outcome = "error"
            raise
        finally:
            self.metrics.update_seconds.labels(kind).observe(time.perf_counter() - start)
            self.metrics.updates.labels(kind, outcome).inc()


class FloodWaitMiddleware(BaseRequestMiddleware):
    """Counts the Bot API's 429 answers and the ``retry_after`` seconds they ask for, by
    method (``sendMessage``, ``copyMessage``...); the error goes on to the caller."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        make_request: Any,
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Any:
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            name = str(getattr(method, "__api_method__", type(method).__name__))
            self.metrics.flood_waits.labels(name).inc()
            self.metrics.flood_wait_seconds.labels(name).inc(float(exc.retry_after))
            raise


def install_metrics(
    metrics: Metrics, dispatcher: Dispatcher, bot: Bot, suppliers: Suppliers
) -> None:
    """Wire ``metrics`` in: the update middleware first among the update middlewares
    (call before registering the others), the flood counter on the bot's session, and
    every supplier's calls."""
    dispatcher.update.outer_middleware(metrics.update_middleware())
    bot.session.middleware(metrics.flood_middleware())
    for supplier in suppliers:
        metrics.instrument(supplier)
