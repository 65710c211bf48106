"""Composition: settings -> storage, supplier, services, bot, dispatcher, workers.

:func:`create_shop` builds everything once; :class:`Shop` starts the background workers,
runs long polling or a webhook, and closes every long-lived client on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from bot.handlers import get_routers
from bot.healthcheck import HEARTBEAT_SECONDS, heartbeat_file
from bot.i18n import PoI18n, UserLocaleMiddleware, create_i18n
from bot.middlewares import StepCommandMiddleware, ThrottlingMiddleware, UserMiddleware
from bot.notifier import BotNotifier
from bot.outbox import DeliveryOutbox
from bot.session import ShopSession
from bot.settings import Settings
from bot.sync_child import run_sync_child
from services.admin import AdminService
from services.alerts import AlertService
from services.catalogue import CatalogueService, SyncReport
from services.flood import FloodBudget, SharedFloodBudget, SharedUserLimit
from services.leases import LeaseService
from services.loyalty import LoyaltyConfig, LoyaltyService
from services.mass_sending import BroadcastService, CampaignService
from services.memory import release_freed_memory
from services.orders import OrderService, OrderTimings
from services.own_stock import KeyBox, OwnStock
from services.payments import PaymentReconciler, RefundService
from services.pricing import PriceBook, PricingService, UnknownCurrency
from services.routing import ALERT_BREAKER, CircuitBreaker, RoutingService
from services.shared_state import RedisCacheBus, connect, shared_wake_ups
from services.stars import RecipientResolver
from services.suppliers.base import Capability, build_supplier
from services.suppliers.errors import SupplierError
from services.suppliers.marketplace import Marketplace
from services.suppliers.models import Balance
from services.suppliers.registry import SHOP_SOURCES, Suppliers, discover_vendors
from storage.catalogue import CatalogueRepository
from storage.db import Database
from storage.deliveries import DeliveriesRepository
from storage.fsm import SQLiteStorage
from storage.leases import LeasesRepository
from storage.loyalty import LoyaltyRepository
from storage.mass_sending import MassSendingRepository
from storage.orders import OrdersRepository
from storage.settings import ShopSettingsRepository
from storage.stock import StockRepository
from storage.users import UsersRepository

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

ADMIN_COMMANDS = (
    "admin", "order", "refund", "user", "markup", "starvalue", "export", "sync", "offers", "broadcast",
    "campaign", "alias", "aliases", "sources", "link", "unlink", "links", "stock", "addkeys",
    "loyalty", "promos", "promo_new", "promo_pause", "promo_resume", "promo_delete",
)  # fmt: skip
#: A conversation step untouched this long is forgotten (the customer starts again).
CONVERSATION_TTL = timedelta(days=7)
#: Seconds a stopping webhook worker gives the updates in hand to finish.
STOP_GRACE = 20.0


def heartbeat_path(settings: Settings) -> Path:
    """``heartbeat`` beside the database (read by :mod:`bot.healthcheck`)."""
    return heartbeat_file(settings.database_path)


COMMANDS = (
    "start",
    "help",
    "catalogue",
    "search",
    "stars",
    "orders",
    "rewards",
    "promo",
    "language",
    "support",
    "paysupport",
    "terms",
    "cancel",
)


def telegram_server(settings: Settings) -> TelegramAPIServer:
    """Telegram's server, a self-hosted or fake one, or Telegram's test environment."""
    base = settings.telegram.api_base.rstrip("/")
    if settings.telegram.test_environment:
        return TelegramAPIServer(
            base=f"{base}/bot{{token}}/test/{{method}}",
            file=f"{base}/file/bot{{token}}/test/{{path}}",
        )
    return TelegramAPIServer.from_base(base)


def order_timings(settings: Settings) -> OrderTimings:
    return OrderTimings(
        first_check=settings.orders.first_check_seconds,
        max_check=settings.orders.max_check_seconds,
        stuck_after=settings.orders.stuck_after_minutes * 60,
        absent_for=settings.orders.unknown_absent_minutes * 60,
        payment_grace=max(
            [
                float(getattr(s, "create_order_timeout", 25.0))
                for s in settings.vendor_sections().values()
            ]
            or [25.0]
        )
        + 15,
    )


def loyalty_config(settings: Settings) -> LoyaltyConfig:
    """The loyalty programme's rules from ``LOYALTY__*``."""
    section = settings.loyalty
    return LoyaltyConfig(
        cashback_percent=section.cashback_percent,
        category_cashback=dict(section.category_cashback_percent),
        referral_percent=section.referral_percent,
        min_order_stars=section.min_order_stars,
        hold_seconds=section.hold_hours * 3600,
        auto_payout=section.auto_payout,
    )


def section_value(settings: Settings, vendor: str, field_name: str, default: Any) -> Any:
    """A field of a vendor's settings section, or ``default`` when the vendor has none."""
    return getattr(settings.vendor_sections().get(vendor), field_name, default)


def build_marketplace(
    settings: Settings, http: httpx.AsyncClient, suppliers: Suppliers
) -> Marketplace | None:
    """The seller API of the first discovered vendor that has one and whose section holds
    seller credentials (``VendorSpec.marketplace``), sharing that vendor's buyer client
    (rate budget) when the shop runs it; ``None`` when no section enables one."""
    sections = settings.vendor_sections()
    for spec in discover_vendors():
        if spec.marketplace is None or spec.name not in sections:
            continue
        buyer = suppliers.get(spec.name) if spec.name in suppliers else None
        marketplace: Marketplace | None = spec.marketplace(sections[spec.name], http, buyer)
        if marketplace is not None:
            return marketplace
    return None


def build_suppliers(settings: Settings, http: httpx.AsyncClient) -> Suppliers:
    """A client for every discovered vendor whose settings section is enabled."""
    sections = settings.vendor_sections()
    return Suppliers(
        build_supplier(spec, sections[spec.name], http)
        for spec in discover_vendors()
        if spec.name in sections and sections[spec.name].enabled()
    )


def build_own_stock(settings: Settings, db: Database) -> OwnStock | None:
    """The shop's own stock of keys as a source, when ``STOCK__KEY`` is set."""
    stock = settings.stock
    if not stock.enabled() or stock.key is None:
        return None
    return OwnStock(
        StockRepository(db), KeyBox(stock.key.get_secret_value()), low_threshold=stock.low_threshold
    )


# -- several workers: what they share through Redis (REDIS_URL) -------------------------


@dataclass
class SharedRedis:
    """The shop's Redis: conversation state (aiogram's ``RedisStorage``, untouched steps
    expire after :data:`CONVERSATION_TTL`) and per-user event isolation across processes
    on aiogram's own client, and on ``client`` the cache invalidation bus, wake-ups, the
    flood budget and the throttle. aiogram closes its client at the dispatcher's shutdown,
    before the shop stops its jobs: sharing one, the bus listener lost its connection
    mid-shutdown and kept reconnecting, and the worker never stopped."""

    client: Redis
    storage: BaseStorage
    isolation: BaseEventIsolation
    bus: RedisCacheBus

    async def close(self) -> None:
        """Finish pending announcements and close the connections (aiogram's too: its
        shutdown does not run when polling or serving never started)."""
        await self.bus.close()
        await self.isolation.close()
        await self.storage.close()
        await self.client.aclose(close_connection_pool=True)


def connect_redis(settings: Settings) -> SharedRedis | None:
    """:class:`SharedRedis` for ``REDIS_URL``; ``None`` when it is unset (one process:
    ``redis`` is not even imported). Connects lazily, on the first command."""
    if settings.redis_url is None:
        return None
    from aiogram.fsm.storage.redis import RedisStorage

    url = settings.redis_url.get_secret_value()
    client = connect(url)
    storage = RedisStorage(connect(url), state_ttl=CONVERSATION_TTL, data_ttl=CONVERSATION_TTL)
    return SharedRedis(client, storage, storage.create_isolation(), RedisCacheBus(client))


# -----------------------------------------------------------------------------------------


@dataclass
class Shop:
    """Everything the running bot owns."""

    settings: Settings
    bot: Bot
    dispatcher: Dispatcher
    db: Database
    http: httpx.AsyncClient
    suppliers: Suppliers
    catalogue: CatalogueService
    orders: OrderService
    refunds: RefundService
    outbox: DeliveryOutbox
    notifier: BotNotifier
    users: UsersRepository
    broadcasts: BroadcastService
    campaigns: CampaignService
    i18n: PoI18n
    loyalty: LoyaltyService
    #: the shop's own keys (``None``: ``STOCK__KEY`` unset)
    own_stock: OwnStock | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: runs each background job in one worker process at a time (``None``: built from
    #: the settings at :meth:`start_background`)
    leases: LeaseService | None = None
    #: set after the first payment reconciliation: invoices expire only after it, so a
    #: payment whose update was lost while the bot was down is not refunded as "expired"
    reconciled: asyncio.Event = field(default_factory=asyncio.Event)
    #: run the start-up and scheduled syncs in a child process (``python -m bot`` sets it):
    #: their memory (~15-25 MiB for 64,000 offers) then never lands in the bot process
    sync_in_child: bool = False
    #: what several workers share (``None``: ``REDIS_URL`` unset, one process)
    shared: SharedRedis | None = None
    # -- health and metrics (issue 20; bot.health, bot.metrics) --
    #: the metrics (``bot.metrics.Metrics``), ``None`` when no endpoint serves them
    metrics: Any = None
    #: the routing circuit breaker, read by ``/readyz`` (no network call per probe)
    breaker: CircuitBreaker | None = None
    #: supplier name -> ``time.monotonic()`` since its balance watch gets no answer
    supplier_down_since: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metrics is not None:
            self.metrics.database.suppliers_up = lambda: {
                name: bool(state["ok"]) for name, state in self.supplier_states().items()
            }

    def supplier_states(self) -> dict[str, dict[str, Any]]:
        """``{supplier: {"ok", "breaker_open", "unanswered_seconds"?}}`` from what the shop
        already knows: the routing circuit breaker and the balance watch."""
        states: dict[str, dict[str, Any]] = {}
        for supplier in self.suppliers:
            name = supplier.name
            breaker_open = self.breaker is not None and self.breaker.is_open(name)
            state: dict[str, Any] = {"ok": not breaker_open, "breaker_open": breaker_open}
            since = self.supplier_down_since.get(name)
            if since is not None:
                state["ok"] = False
                state["unanswered_seconds"] = round(time.monotonic() - since)
            states[name] = state
        return states

    async def register_commands(self) -> None:
        """``setMyCommands`` in every supported language (and the default); admins get the
        admin commands too, scoped to their own chat so nobody else sees them.

        An admin whose chat Telegram refuses ("chat not found": never started the bot, or
        an example id left in ``ADMIN_IDS``; or blocked it) is logged and skipped: the
        shop starts anyway and the commands appear at the next start after ``/start``."""
        skipped: set[int] = set()
        for locale in (None, *self.i18n.available_locales):
            with self.i18n.use_locale(locale or self.i18n.default_locale):
                commands = [self._command(name) for name in COMMANDS]
                admin_commands = commands + [self._command(name) for name in ADMIN_COMMANDS]
            await self.bot.set_my_commands(
                commands, scope=BotCommandScopeDefault(), language_code=locale
            )
            for admin_id in self.settings.admin_ids:
                if admin_id in skipped:
                    continue
                try:
                    await self.bot.set_my_commands(
                        admin_commands,
                        scope=BotCommandScopeChat(chat_id=admin_id),
                        language_code=locale,
                    )
                except (TelegramBadRequest, TelegramForbiddenError) as exc:
                    skipped.add(admin_id)
                    logger.warning(
                        "admin commands not registered for admin %s (%s): has this admin "
                        "started the bot? Check ADMIN_IDS; the commands appear after /start "
                        "and a restart",
                        admin_id,
                        exc.message,
                    )

    def _command(self, name: str) -> BotCommand:
        return BotCommand(command=name, description=self.i18n.gettext(f"cmd.{name}"))

    async def start_background(self, *, initial_sync: bool = True) -> None:
        """Sync the catalogue once (unless told not to), then start the workers.

        With a catalogue already stored, that sync runs in the background and customers
        are served the stored one meanwhile (start-up to the first answer stays ~1 s
        instead of waiting out a 64,000-offer sync); into an empty one it runs first."""
        if self.shared is not None:
            self._spawn(self.shared.bus.run(), "cache invalidation listener")
        # -- leases (issue 20) -------------------------------------------------------------
        # Every job below runs under its own lease (services.leases): in one worker process
        # at a time, taken over when that process dies. One process alone claims them all
        # at once. Only the heartbeat is per process.
        if self.leases is None:
            self.leases = LeaseService(
                LeasesRepository(self.db), ttl=self.settings.leases.ttl_seconds
            )
        logger.info("background jobs run as worker %s", self.leases.worker_id)
        if initial_sync:
            if await self.catalogue.repo.size() > 0:
                self._spawn(self._leased_initial_sync(), "initial catalogue sync")
            else:
                await self._leased_initial_sync()
        self._spawn_leased("delivery outbox", self.outbox.run_worker)
        self._spawn_leased("order worker", self.orders.run_worker)
        self._spawn_leased("refund worker", self.refunds.run_worker)
        self._spawn_leased("loyalty worker", self.loyalty.run_worker)
        self._spawn_leased("payments", self._payments)
        for supplier in self.suppliers:
            if self._sync_minutes(supplier.name) > 0:
                self._spawn_leased(
                    f"catalogue sync {supplier.name}",
                    self._job(self._scheduled_sync, supplier.name),
                )
        self._spawn(self._heartbeat(), "heartbeat")
        self.broadcasts.leased = self.campaigns.leased = True
        self._spawn_leased("broadcasts", self.broadcasts.run_worker)
        self._spawn_leased("campaigns", self.campaigns.run_worker)
        if self.settings.admin_ids:
            for supplier in self.suppliers.having(Capability.BALANCE):
                self._spawn_leased(
                    f"supplier watch {supplier.name}",
                    self._job(self._watch_supplier, supplier.name),
                )

    def _spawn_leased(self, job: str, body: Callable[[], Awaitable[object]]) -> None:
        """Run ``body()`` as background task ``job`` under the lease of the same name."""
        assert self.leases is not None
        self._spawn(self.leases.run_leased(job, body), job)

    @staticmethod
    def _job(
        loop: Callable[[str], Awaitable[object]], name: str
    ) -> Callable[[], Awaitable[object]]:
        return lambda: loop(name)

    async def _leased_initial_sync(self) -> None:
        """The start-up sync, unless another worker is syncing right now (it fills the
        shared catalogue: two syncs at once would only double the supplier's load)."""
        assert self.leases is not None
        try:
            if not await self.leases.run_once("initial catalogue sync", self._initial_sync):
                logger.info("another worker is syncing the catalogue; serving the stored one")
        except Exception:
            logger.exception("initial catalogue sync: its lease could not be claimed")

    async def _payments(self) -> None:
        """Payment reconciliation and invoice expiry, under one lease: invoices expire
        only after the first reconciliation of the worker running them (a payment whose
        update was lost while it was down is delivered, not expired)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._reconcile_payments(), name="payment reconciliation")
            group.create_task(self._expire_invoices(), name="invoice expiry")

    # -- end of leases (issue 20) -----------------------------------------------------------

    async def _initial_sync(self) -> None:
        try:
            await self._sync(None)
        except Exception:
            logger.exception("initial catalogue sync failed; serving the stored catalogue")
        await self._warm_search()
        release_freed_memory()

    async def _warm_search(self) -> None:
        """The search index of the products just synced, built before a customer asks."""
        try:
            await self.catalogue.search.warm()
        except Exception:
            logger.exception("search index not built after the sync; the next search builds it")

    async def _sync(self, name: str | None) -> list[SyncReport]:
        """Sync supplier ``name`` (every one when ``None``), in a child process when
        :attr:`sync_in_child`."""
        if not self.sync_in_child:
            if name is None:
                return await self.catalogue.sync_all()
            return [await self.catalogue.sync(name)]
        # the shop's own sources (own stock) read this database only: synced here
        if name in SHOP_SOURCES:
            return [await self.catalogue.sync(name)]
        reports = await self.catalogue.sync_elsewhere(lambda: run_sync_child(name))
        if name is None:
            for source in self.suppliers:
                if source.name in SHOP_SOURCES:
                    reports.append(await self.catalogue.sync(source.name))
        return reports

    def _sync_minutes(self, name: str) -> float:
        return float(section_value(self.settings, name, "sync_interval_minutes", 60))

    def _balance_usd(self, info: Balance) -> Decimal:
        """A balance in USD at the configured rates (as it is, when its currency has none)."""
        try:
            return self.orders.pricing.book.usd(info.balance, info.currency)
        except UnknownCurrency:
            return info.balance

    async def _watch_supplier(self, name: str) -> None:
        """Every few minutes: alert admins when a prepaid balance runs low or the supplier
        has not answered for a while."""
        alerts = self.settings.alerts
        down_since: float | None = None
        supplier = self.suppliers.get(name)
        while True:
            try:
                info = await supplier.get_balance()
                down_since = None
                self.supplier_down_since.pop(name, None)
                if not info.is_postpaid and self._balance_usd(info) < alerts.balance_threshold_usd:
                    # one alert per supplier: a low balance elsewhere does not hide this one
                    await self.notifier.alert(
                        f"balance_low:{name}", "alert.balance_low", balance=info.balance,
                        currency=info.currency, supplier=name,
                        threshold=alerts.balance_threshold_usd,
                    )  # fmt: skip
            except SupplierError as exc:
                down_since = down_since or time.monotonic()
                self.supplier_down_since[name] = down_since
                if time.monotonic() - down_since >= alerts.unreachable_minutes * 60:
                    await self.notifier.alert(
                        "supplier_down", "alert.supplier_down", supplier=name, error=str(exc)
                    )
            except Exception:
                logger.exception("supplier watch failed")
            await asyncio.sleep(alerts.check_minutes * 60)

    async def _reconcile_payments(self) -> None:
        """At start and then every ``ORDERS__RECONCILE_MINUTES``: recover payments whose
        ``successful_payment`` update never reached the order log."""
        reconciler = PaymentReconciler(
            self.bot,
            self.orders,
            ShopSettingsRepository(self.db),
            on_error=lambda text: self.notifier.alert(
                "reconcile_failed", "alert.reconcile_failed", detail=text
            ),
        )
        while True:
            try:
                recovered = await reconciler.reconcile()
                if recovered:
                    await self.notifier.alert(
                        "payments_recovered", "alert.payments_recovered", count=recovered
                    )
            except Exception:
                logger.exception("payment reconciliation failed")
            self.reconciled.set()
            await asyncio.sleep(self.settings.orders.reconcile_minutes * 60)

    async def _heartbeat(self) -> None:
        """Touch ``heartbeat`` beside the database while the event loop is alive
        (read by ``python -m bot.healthcheck``)."""
        path = heartbeat_path(self.settings)
        while True:
            try:
                path.write_text(str(time.time()))
            except OSError:
                logger.exception("could not write the heartbeat file %s", path)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def _spawn(self, coroutine: object, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)  # type: ignore[arg-type]
        task.add_done_callback(self._task_done)
        self.tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def _scheduled_sync(self, name: str) -> None:
        interval = self._sync_minutes(name) * 60
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sync(name)
            except Exception:
                logger.exception("scheduled catalogue sync of %s failed", name)
            await self._warm_search()
            release_freed_memory()

    async def _expire_invoices(self) -> None:
        """Every minute: expire unpaid invoices, and forget conversations abandoned
        mid-step for :data:`CONVERSATION_TTL` (the FSM table holds only live ones)."""
        ttl = timedelta(minutes=self.settings.orders.invoice_ttl_minutes)
        await self.reconciled.wait()
        while True:
            try:
                cutoff = (datetime.now(UTC) - ttl).isoformat(timespec="milliseconds")
                await self.orders.orders.expire_unpaid(cutoff)
            except Exception:
                logger.exception("expiring unpaid invoices failed")
            storage = self.dispatcher.storage
            if isinstance(storage, SQLiteStorage):
                try:
                    stale = datetime.now(UTC) - CONVERSATION_TTL
                    await storage.purge(stale.isoformat(timespec="milliseconds"))
                except Exception:
                    logger.exception("forgetting abandoned conversations failed")
            await asyncio.sleep(60)

    async def run_polling(self, handle_signals: bool = False) -> None:
        """Long polling with every update type the routers use (pre_checkout_query included).
        ``handle_signals``: SIGTERM/SIGINT stop polling gracefully (the real process)."""
        await self.bot.delete_webhook(drop_pending_updates=False)
        health = None
        if self.settings.health.port is not None:
            from bot.health import serve

            health = await serve(self, self.settings.health.host, self.settings.health.port)
        try:
            await self.dispatcher.start_polling(
                self.bot,
                allowed_updates=self.dispatcher.resolve_used_update_types(),
                handle_signals=handle_signals,
                close_bot_session=False,
            )
        finally:
            if health is not None:
                await health.cleanup()

    async def run_webhook(
        self, *, sock: socket.socket | None = None, set_webhook: bool = True
    ) -> None:
        """aiohttp server receiving updates at ``webhook_path``, secret token checked, with
        ``/healthz``, ``/readyz`` and ``/metrics`` beside it (:mod:`bot.health`).

        ``sock``: a listening socket to serve on (a worker of ``--workers N`` inherits
        its parent's) instead of binding ``webhook_host``:``webhook_port``.
        ``set_webhook``: call ``setWebhook`` (one worker does; the others find it set).
        On cancellation the updates being handled are finished (up to
        :data:`STOP_GRACE` seconds) before the server goes."""
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
        from aiohttp import web

        from bot.health import HealthEndpoints

        telegram = self.settings.telegram
        secret = telegram.webhook_secret.get_secret_value() if telegram.webhook_secret else None
        app = web.Application()
        handler = SimpleRequestHandler(
            dispatcher=self.dispatcher, bot=self.bot, secret_token=secret
        )
        handler.register(app, path=telegram.webhook_path)
        HealthEndpoints(self).register(app)
        setup_application(app, self.dispatcher, bot=self.bot)
        if set_webhook:
            await self._set_webhook(str(telegram.webhook_url), secret)
        runner = web.AppRunner(app)
        await runner.setup()
        if sock is not None:
            site: web.BaseSite = web.SockSite(runner, sock)
        else:
            site = web.TCPSite(runner, telegram.webhook_host, telegram.webhook_port)
        await site.start()
        logger.info("webhook listening on %s%s", site.name, telegram.webhook_path)
        try:
            await asyncio.Event().wait()
        finally:
            await site.stop()  # no new connections; the updates in hand are finished
            # aiogram keeps the tasks of the updates it answered 200 early for here
            in_flight = set(getattr(handler, "_background_feed_update_tasks", ()))
            if in_flight:
                logger.info("finishing %d updates before stopping", len(in_flight))
                await asyncio.wait(in_flight, timeout=STOP_GRACE)
            await runner.cleanup()

    async def _set_webhook(self, url: str, secret: str | None) -> None:
        """``setWebhook``, waiting out a 429 (Telegram limits how often it may be set)."""
        for attempt in range(3):
            try:
                await self.bot.set_webhook(
                    url=url,
                    secret_token=secret,
                    allowed_updates=self.dispatcher.resolve_used_update_types(),
                )
                return
            except TelegramRetryAfter as exc:
                if attempt == 2:
                    raise
                logger.warning("setWebhook: 429, retrying in %s s", exc.retry_after)
                await asyncio.sleep(exc.retry_after)

    async def close(self) -> None:
        await self.broadcasts.stop()
        await self.campaigns.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        if self.leases is not None:  # leases (issue 20): released by the tasks just stopped
            await self.leases.stop()
        if self.own_stock is not None:
            await self.own_stock.close()
        await self.bot.session.close()
        await self.http.aclose()
        if self.shared is not None:
            await self.shared.close()
        await self.db.close()


def metrics_enabled(settings: Settings) -> bool:
    """Whether an endpoint serves ``/metrics``: webhook mode, or ``HEALTH__PORT`` in long
    polling, with ``HEALTH__METRICS`` on. Off: prometheus-client is never imported."""
    served = bool(settings.telegram.webhook_url) or settings.health.port is not None
    return settings.health.metrics and served


def build_metrics(
    settings: Settings, db: Database, dispatcher: Dispatcher, bot: Bot, suppliers: Suppliers
) -> Any:
    """The shop's :class:`bot.metrics.Metrics`, wired into the dispatcher (outermost update
    middleware), the bot's session and the suppliers; ``None`` when metrics are off."""
    if not metrics_enabled(settings):
        return None
    from bot.metrics import Metrics, install_metrics
    from storage.ops import OpsRepository

    metrics = Metrics(OpsRepository(db), settings.health.gauge_seconds)
    install_metrics(metrics, dispatcher, bot, suppliers)
    return metrics


def catalogue_service(settings: Settings, suppliers: Suppliers, db: Database) -> CatalogueService:
    """The catalogue service of the shop (also built by :mod:`bot.sync_child`)."""
    names = suppliers.names
    return CatalogueService(
        suppliers, CatalogueRepository(db),
        page_size={n: int(section_value(settings, n, "sync_page_size", 1000)) for n in names},
        max_shrink={n: Decimal(str(section_value(settings, n, "sync_max_shrink", "0.2"))) for n in names},
        offer_ids={n: [str(i) for i in section_value(settings, n, "offer_ids", [])] for n in names},
    )  # fmt: skip


async def create_shop(settings: Settings, *, timings: OrderTimings | None = None) -> Shop:
    """Build the shop from settings. Nothing runs until :meth:`Shop.start_background`."""
    i18n = create_i18n(settings.default_language)  # raises LocalesMissing before opening anything
    shared = connect_redis(settings)
    db = await Database.open(settings.database)
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=20, max_keepalive_connections=10))
    suppliers = build_suppliers(settings, http)
    own_stock = build_own_stock(settings, db)
    if own_stock is not None:
        suppliers = Suppliers([*suppliers, own_stock])
    marketplace = build_marketplace(settings, http, suppliers)
    if not len(suppliers):
        logger.warning("no supplier section is enabled: the shop has nothing to sell")
    bot = Bot(
        token=settings.telegram.token.get_secret_value(),
        session=ShopSession(api=telegram_server(settings)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    users = UsersRepository(db)
    pricing = PricingService(
        PriceBook(
            usd_rates={code.upper(): rate for code, rate in settings.pricing.usd_rates.items()},
            markup=settings.pricing.markup,
            star_usd=settings.pricing.star_usd,
        ),
        ShopSettingsRepository(db),
    )
    await pricing.load()
    catalogue = catalogue_service(settings, suppliers, db)
    # with own stock on, delivered keys are stored encrypted under the same secret: a
    # database dump reveals no key, sold or not
    stock_key = settings.stock.key
    seal = KeyBox(stock_key.get_secret_value(), "delivered") if own_stock and stock_key else None
    orders_repo = OrdersRepository(db, settings.orders.transaction_prefix, seal)
    deliveries = DeliveriesRepository(db)
    notifier = BotNotifier(bot, i18n, users, settings.admin_ids, orders_repo, deliveries)
    notifier.alerts = AlertService(
        notifier.alert_admins, min_interval=settings.alerts.min_interval_minutes * 60
    )
    flood = (
        FloodBudget()
        if shared is None
        else SharedFloodBudget(shared.client, settings.broadcast_rate)
    )
    outbox = DeliveryOutbox(bot, deliveries, users, notifier.render, flood, notifier.alert)
    notifier.wake_outbox = outbox.wake
    catalogue.alert = notifier.alert
    if own_stock is not None:
        own_stock.alert = notifier.alert
        own_stock.changed = lambda: catalogue.sync(own_stock.name)
    refunds = RefundService(bot, orders_repo, notifier)
    breaker = CircuitBreaker(
        settings.routing.breaker_failures, settings.routing.breaker_cooldown_minutes * 60
    )
    breaker.on_open = lambda name, failures: notifier.alert(
        f"{ALERT_BREAKER}:{name}", "alert.supplier_breaker", supplier=name, failures=failures,
        minutes=f"{settings.routing.breaker_cooldown_minutes:g}",
    )  # fmt: skip
    routing = RoutingService(
        suppliers, catalogue.repo, pricing.settings, lambda: pricing.book, breaker=breaker,
        find_timeout=settings.routing.quote_timeout,
    )  # fmt: skip
    await routing.load()
    order_service = OrderService(
        suppliers, orders_repo, catalogue, pricing, notifier,
        timings=timings or order_timings(settings), on_refund_queued=refunds.wake,
        routing=routing,
    )  # fmt: skip
    mass_repo = MassSendingRepository(db)
    broadcasts = BroadcastService(
        bot, mass_repo, users, notifier, rate=settings.broadcast_rate, flood=flood
    )
    lookups = suppliers.having(Capability.TELEGRAM_USERS)
    resolver = RecipientResolver(lookups[0] if lookups else None, users=users)
    campaigns = CampaignService(
        suppliers, mass_repo, catalogue.repo, pricing, resolver, notifier,
        transaction_prefix=settings.orders.transaction_prefix, supplier_rate=settings.supplier_rate,
    )  # fmt: skip
    loyalty = LoyaltyService(
        LoyaltyRepository(db), catalogue.repo, suppliers, pricing, notifier,
        loyalty_config(settings), transaction_prefix=settings.orders.transaction_prefix,
        supplier_rate=settings.supplier_rate, recheck=order_service.timings.first_check,
        stuck_after=order_service.timings.stuck_after,
    )  # fmt: skip
    notifier.wake_loyalty = loyalty.wake
    user_middleware = UserMiddleware(users, i18n)
    if shared is not None:  # other workers' admin changes reach this one's caches
        for service in (pricing, routing, catalogue, user_middleware):
            service.share_through(shared.bus)
        # work queued here wakes the job in whichever worker holds its lease
        wakes = shared_wake_ups(
            shared.bus,
            {"delivery outbox": outbox.wake, "refund worker": refunds.wake,
             "loyalty worker": loyalty.wake},
        )  # fmt: skip
        notifier.wake_outbox = wakes["delivery outbox"]
        notifier.wake_loyalty = wakes["loyalty worker"]
        order_service.on_refund_queued = wakes["refund worker"]
    dispatcher = Dispatcher(
        storage=SQLiteStorage(db) if shared is None else shared.storage,
        events_isolation=None if shared is None else shared.isolation,
        settings=settings,
        order_service=order_service,
        users=users,
        pricing=pricing,
        recipient_resolver=resolver,
        mass_sending_repo=mass_repo,
        broadcasts=broadcasts,
        campaigns=campaigns,
        loyalty=loyalty,
        user_middleware=user_middleware,
        admin_service=AdminService(db, order_service, users),
        own_stock=own_stock,
        marketplace=marketplace,
        notifier=notifier,
        i18n=i18n,
    )
    metrics = build_metrics(settings, db, dispatcher, bot, suppliers)  # before the others
    dispatcher.update.outer_middleware(
        ThrottlingMiddleware(
            settings.throttle_rate,
            settings.throttle_burst,
            shared=SharedUserLimit(shared.client, settings.throttle_rate, settings.throttle_burst)
            if shared is not None and settings.throttle_rate > 0
            else None,
        )
    )
    dispatcher.update.outer_middleware(user_middleware)
    UserLocaleMiddleware(i18n).setup(dispatcher)
    dispatcher.message.outer_middleware(
        StepCommandMiddleware((*COMMANDS, "catalog"), ADMIN_COMMANDS, settings.admin_ids)
    )
    dispatcher.include_routers(*get_routers())
    return Shop(
        leases=LeaseService(LeasesRepository(db), ttl=settings.leases.ttl_seconds),
        settings=settings, bot=bot, dispatcher=dispatcher, db=db, http=http, suppliers=suppliers,
        catalogue=catalogue, orders=order_service, refunds=refunds, outbox=outbox, notifier=notifier, users=users, i18n=i18n,
        broadcasts=broadcasts, campaigns=campaigns, own_stock=own_stock, loyalty=loyalty,
        shared=shared, metrics=metrics, breaker=breaker,
    )  # fmt: skip
